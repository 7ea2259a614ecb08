// `createOtpClient`: the two calls of the contract over `fetch`, answers checked and
// failures turned into the typed errors of `errors.ts`.
import {
  NetworkError,
  UnexpectedResponseError,
  apiError,
  isChannel,
  isErrorCode,
  parseRetryAfter,
  OtpError,
} from './errors.js';
import type { ErrorBody, SendOtpAccepted, SendOtpRequest, VerifyOtpApproved, VerifyOtpRequest } from './types.js';

export interface OtpClientOptions {
  /**
   * Where the API is: the stack's invoke URL (`https://abc.execute-api.eu-west-1.amazonaws.com/prod`),
   * or `''` for the page's own origin. Paths `/api/send-otp` and `/api/verify-otp` are added to it.
   */
  baseUrl: string;
  /** The API Gateway key, sent as `x-api-key`; the local run needs none. */
  apiKey?: string | undefined;
  /** Give up on a call after this long (default 15 s), with a `NetworkError`. */
  timeoutMs?: number | undefined;
  /** A `fetch` to use instead of the global one (tests, server-side rendering). */
  fetch?: typeof fetch | undefined;
}

export interface CallOptions {
  /** Aborts the call (a `NetworkError` is thrown). */
  signal?: AbortSignal | undefined;
}

export interface OtpClient {
  /** `POST /api/send-otp`: sends a code (by SMS, or on `request.channel`). Throws an `OtpError` subclass on failure. */
  sendOtp(request: SendOtpRequest, options?: CallOptions): Promise<SendOtpAccepted>;
  /**
   * `POST /api/verify-otp`: checks a code; `phone` should be the `to` of the send. The
   * approval's `token` is an ES256 JWT for your backend, which checks it against the
   * public keys at `<baseUrl>/.well-known/jwks.json` (README, "Checking a session token
   * in your backend"). This client holds no key and checks no token: in the browser a
   * check proves nothing.
   */
  verifyOtp(request: VerifyOtpRequest, options?: CallOptions): Promise<VerifyOtpApproved>;
}

export function createOtpClient(options: OtpClientOptions): OtpClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 15_000;

  async function post(path: string, body: object, expected: number, call: CallOptions | undefined): Promise<unknown> {
    const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const headers: Record<string, string> = { 'Content-Type': 'application/json', Accept: 'application/json' };
    if (options.apiKey) headers['x-api-key'] = options.apiKey;
    const signals = [AbortSignal.timeout(timeoutMs)];
    if (call?.signal) signals.push(call.signal);
    let response: Response;
    try {
      response = await doFetch(`${base}${path}`, {
        method: 'POST',
        headers,
        body: JSON.stringify(body),
        signal: AbortSignal.any(signals),
        credentials: 'omit',
      });
    } catch (cause) {
      throw new NetworkError(cause instanceof Error && cause.name === 'TimeoutError'
        ? `no answer within ${timeoutMs} ms`
        : 'the request could not be sent', { cause });
    }
    let parsed: unknown;
    try {
      parsed = await response.json();
    } catch {
      throw new UnexpectedResponseError(`HTTP ${response.status} without a JSON body`, response.status);
    }
    if (response.status === expected) return parsed;
    if (isErrorBody(parsed)) {
      throw apiError({
        status: response.status,
        body: parsed,
        retryAfterHeader: parseRetryAfter(response.headers.get('Retry-After')),
      });
    }
    throw new UnexpectedResponseError(`HTTP ${response.status} without the contract's error shape`, response.status);
  }

  return {
    async sendOtp(request, call) {
      const body = await post('/api/send-otp', request, 202, call);
      if (!isSendAccepted(body)) throw new UnexpectedResponseError('send-otp: unexpected success body', 202);
      return body;
    },
    async verifyOtp(request, call) {
      const body = await post('/api/verify-otp', request, 200, call);
      if (!isVerifyApproved(body)) throw new UnexpectedResponseError('verify-otp: unexpected success body', 200);
      return withDeviceToken(body);
    },
  };
}

/** Narrows a caught value to the client's errors. */
export function isOtpError(error: unknown): error is OtpError {
  return error instanceof OtpError;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isErrorBody(value: unknown): value is ErrorBody {
  return isRecord(value) && isRecord(value.error) && isErrorCode(value.error.code) && typeof value.error.message === 'string';
}

function isSendAccepted(value: unknown): value is SendOtpAccepted {
  return (
    isRecord(value) &&
    value.status === 'pending' &&
    typeof value.to === 'string' &&
    typeof value.expiresAt === 'string' &&
    typeof value.resendAfterSeconds === 'number' &&
    isChannel(value.channel) &&
    Array.isArray(value.channels) &&
    value.channels.every(isChannel)
  );
}

/** The approval with its device token fields kept only when both are in shape (types.ts says why). */
function withDeviceToken(body: VerifyOtpApproved): VerifyOtpApproved {
  const { deviceToken, deviceTokenExpiresAt, ...approval } = body as VerifyOtpApproved & Record<string, unknown>;
  return isDeviceToken(deviceToken) && isTimestamp(deviceTokenExpiresAt)
    ? { ...approval, deviceToken, deviceTokenExpiresAt }
    : approval;
}

/** A device token as the contract bounds it: 1 to 512 characters. */
export function isDeviceToken(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 512;
}

function isTimestamp(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

function isVerifyApproved(value: unknown): value is VerifyOtpApproved {
  return (
    isRecord(value) &&
    value.status === 'approved' &&
    typeof value.to === 'string' &&
    typeof value.token === 'string' &&
    typeof value.tokenExpiresAt === 'string'
  );
}
