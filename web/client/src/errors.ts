// One error class per contract error code, each with its extra fields, plus the two
// failures that never reach the API's answer (network, and an answer outside the contract).
import type { Channel, ErrorBody, ErrorCode } from './types.js';

/** What every failure of a call has: a machine-readable `code` and the HTTP status (0 without an answer). */
export abstract class OtpError extends Error {
  abstract readonly code: ErrorCode | 'network_error' | 'unexpected_response';
  readonly status: number;

  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.status = status;
  }
}

/** The request never got an answer (offline, DNS, CORS refused, aborted or timed out). */
export class NetworkError extends OtpError {
  readonly code = 'network_error' as const;
  constructor(message: string, options?: ErrorOptions) {
    super(message, 0, options);
  }
}

/** An answer that is not the contract's (a proxy's HTML page, a body of the wrong shape). */
export class UnexpectedResponseError extends OtpError {
  readonly code = 'unexpected_response' as const;
}

/** What the client read from an error answer. */
export interface ErrorAnswer {
  status: number;
  body: ErrorBody;
  /** The `Retry-After` header in seconds, where there was one. */
  retryAfterHeader: number | undefined;
}

/** An error answer of the contract: `code` is its `error.code`, `message` its `error.message`. */
export abstract class OtpApiError extends OtpError {
  abstract override readonly code: ErrorCode;
  readonly body: ErrorBody;

  constructor(answer: ErrorAnswer) {
    super(answer.body.error.message, answer.status);
    this.body = answer.body;
  }
}

export class InvalidRequestError extends OtpApiError {
  readonly code = 'invalid_request' as const;
}
export class InvalidPhoneError extends OtpApiError {
  readonly code = 'invalid_phone' as const;
}
export class InvalidCodeFormatError extends OtpApiError {
  readonly code = 'invalid_code_format' as const;
}
export class CaptchaRequiredError extends OtpApiError {
  readonly code = 'captcha_required' as const;
}
export class ChannelNotAllowedError extends OtpApiError {
  readonly code = 'channel_not_allowed' as const;
  /** The channels the service offers (the body's `channels`). */
  readonly channels: readonly Channel[];
  constructor(answer: ErrorAnswer) {
    super(answer);
    const offered = answer.body.error.channels;
    this.channels = Array.isArray(offered) ? offered.filter(isChannel) : [];
  }
}
export class CaptchaFailedError extends OtpApiError {
  readonly code = 'captcha_failed' as const;
}
export class ForbiddenError extends OtpApiError {
  readonly code = 'forbidden' as const;
}
export class NotFoundError extends OtpApiError {
  readonly code = 'not_found' as const;
}
export class IncorrectCodeError extends OtpApiError {
  readonly code = 'incorrect_code' as const;
  /** Wrong tries left on the pending code. */
  readonly attemptsRemaining: number;
  constructor(answer: ErrorAnswer) {
    super(answer);
    this.attemptsRemaining = wholeSeconds(answer.body.error.attemptsRemaining) ?? 0;
  }
}
export class CountryNotAllowedError extends OtpApiError {
  readonly code = 'country_not_allowed' as const;
}
export class MethodNotAllowedError extends OtpApiError {
  readonly code = 'method_not_allowed' as const;
}
export class CodeExpiredError extends OtpApiError {
  readonly code = 'code_expired' as const;
}
export class PayloadTooLargeError extends OtpApiError {
  readonly code = 'payload_too_large' as const;
}
export class UnsupportedMediaTypeError extends OtpApiError {
  readonly code = 'unsupported_media_type' as const;
}
export class PhoneUnreachableError extends OtpApiError {
  readonly code = 'phone_unreachable' as const;
}
export class RateLimitedError extends OtpApiError {
  readonly code = 'rate_limited' as const;
  /** Seconds to wait: the body's `retryAfterSeconds`, else the `Retry-After` header, else 60. */
  readonly retryAfterSeconds: number;
  constructor(answer: ErrorAnswer) {
    super(answer);
    this.retryAfterSeconds = wholeSeconds(answer.body.error.retryAfterSeconds) ?? answer.retryAfterHeader ?? 60;
  }
}
export class TooManyAttemptsError extends OtpApiError {
  readonly code = 'too_many_attempts' as const;
}
export class SmsFailedError extends OtpApiError {
  readonly code = 'sms_failed' as const;
}
export class ServiceUnavailableError extends OtpApiError {
  readonly code = 'service_unavailable' as const;
  /** Seconds to wait, from the `Retry-After` header, where there was one. */
  readonly retryAfterSeconds: number | undefined;
  constructor(answer: ErrorAnswer) {
    super(answer);
    this.retryAfterSeconds = answer.retryAfterHeader;
  }
}
export class InternalError extends OtpApiError {
  readonly code = 'internal_error' as const;
}

type ApiErrorClass<C extends ErrorCode> = new (answer: ErrorAnswer) => OtpApiError & { readonly code: C };

/** The class of each code: a code added to the spec fails the type check here until it has one. */
export const apiErrorClasses: { readonly [C in ErrorCode]: ApiErrorClass<C> } = {
  invalid_request: InvalidRequestError,
  invalid_phone: InvalidPhoneError,
  invalid_code_format: InvalidCodeFormatError,
  captcha_required: CaptchaRequiredError,
  channel_not_allowed: ChannelNotAllowedError,
  captcha_failed: CaptchaFailedError,
  forbidden: ForbiddenError,
  not_found: NotFoundError,
  incorrect_code: IncorrectCodeError,
  country_not_allowed: CountryNotAllowedError,
  method_not_allowed: MethodNotAllowedError,
  code_expired: CodeExpiredError,
  payload_too_large: PayloadTooLargeError,
  unsupported_media_type: UnsupportedMediaTypeError,
  phone_unreachable: PhoneUnreachableError,
  rate_limited: RateLimitedError,
  too_many_attempts: TooManyAttemptsError,
  sms_failed: SmsFailedError,
  service_unavailable: ServiceUnavailableError,
  internal_error: InternalError,
};

/** Every code of the contract, in the spec's order. */
export const errorCodes = Object.keys(apiErrorClasses) as readonly ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(apiErrorClasses, value);
}

/** The typed error for a contract error answer. */
export function apiError(answer: ErrorAnswer): OtpApiError {
  const ErrorClass: ApiErrorClass<ErrorCode> = apiErrorClasses[answer.body.error.code];
  return new ErrorClass(answer);
}

/** Every channel of the contract. */
export const channels: readonly Channel[] = ['sms', 'whatsapp', 'voice'];

export function isChannel(value: unknown): value is Channel {
  return typeof value === 'string' && (channels as readonly string[]).includes(value);
}

/** `Retry-After` is either whole seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

function wholeSeconds(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : undefined;
}
