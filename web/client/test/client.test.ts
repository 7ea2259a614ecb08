// The client against a real HTTP server on loopback that answers as the contract says.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import {
  ChannelNotAllowedError,
  CodeExpiredError,
  IncorrectCodeError,
  NetworkError,
  OtpApiError,
  RateLimitedError,
  ServiceUnavailableError,
  UnexpectedResponseError,
  apiErrorClasses,
  createOtpClient,
  errorCodes,
  isOtpError,
  parseRetryAfter,
  type ErrorCode,
} from '../src/index.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}
interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
  delayMs?: number;
}

let server: Server;
let baseUrl: string;
let answer: Answer;
let seen: Seen[];

beforeAll(async () => {
  server = createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    request.on('end', () => {
      seen.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: JSON.parse(raw) });
      const reply = () => {
        response.writeHead(answer.status, { 'Content-Type': 'application/json; charset=utf-8', ...answer.headers });
        response.end(answer.body);
      };
      if (answer.delayMs) setTimeout(reply, answer.delayMs);
      else reply();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  seen = [];
});

function answerWith(status: number, body: unknown, headers?: Record<string, string>) {
  answer = { status, body: JSON.stringify(body), ...(headers ? { headers } : {}) };
}
function errorBody(code: string, extra: Record<string, unknown> = {}) {
  return { error: { code, message: `message of ${code}`, ...extra } };
}

const accepted = {
  status: 'pending',
  to: '+14155550123',
  channel: 'sms',
  expiresAt: '2026-11-24T15:10:00Z',
  resendAfterSeconds: 60,
  channels: ['sms', 'voice'],
};
const approved = { status: 'approved', to: '+14155550123', token: 'a.b.c', tokenExpiresAt: '2026-11-24T16:00:00Z' };

describe('sendOtp', () => {
  it('posts the request as JSON with the API key and returns the accepted body', async () => {
    answerWith(202, accepted);
    const client = createOtpClient({ baseUrl: `${baseUrl}/prod/`, apiKey: 'key-123' });
    const result = await client.sendOtp({ phone: '+1 (415) 555-0123', defaultCountry: 'US', locale: 'en' });
    expect(result).toEqual(accepted);
    expect(seen).toHaveLength(1);
    expect(seen[0]?.method).toBe('POST');
    expect(seen[0]?.url).toBe('/prod/api/send-otp');
    expect(seen[0]?.headers['content-type']).toBe('application/json');
    expect(seen[0]?.headers['x-api-key']).toBe('key-123');
    expect(seen[0]?.body).toEqual({ phone: '+1 (415) 555-0123', defaultCountry: 'US', locale: 'en' });
  });

  it('sends the device token with the number', async () => {
    answerWith(202, accepted);
    await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123', deviceToken: 'dt.opaque-1' });
    expect(seen[0]?.body).toEqual({ phone: '+14155550123', deviceToken: 'dt.opaque-1' });
  });

  it('sends no x-api-key when none is configured', async () => {
    answerWith(202, accepted);
    await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' });
    expect(seen[0]?.headers['x-api-key']).toBeUndefined();
  });

  it('turns rate_limited into a RateLimitedError with the seconds to wait', async () => {
    answerWith(429, errorBody('rate_limited', { retryAfterSeconds: 42 }), { 'Retry-After': '42' });
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect(error).toMatchObject({ code: 'rate_limited', status: 429, retryAfterSeconds: 42, message: 'message of rate_limited' });
  });

  it('falls back to the Retry-After header when the body has no seconds', async () => {
    answerWith(429, errorBody('rate_limited'), { 'Retry-After': '17' });
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).retryAfterSeconds).toBe(17);
  });

  it('reads Retry-After on service_unavailable', async () => {
    answerWith(503, errorBody('service_unavailable'), { 'Retry-After': '5' });
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect((error as ServiceUnavailableError).retryAfterSeconds).toBe(5);
  });

  it('sends the channel asked for and reads the channels offered', async () => {
    answerWith(202, { ...accepted, channel: 'voice' });
    const result = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123', channel: 'voice' });
    expect(seen[0]?.body).toEqual({ phone: '+14155550123', channel: 'voice' });
    expect(result.channel).toBe('voice');
    expect(result.channels).toEqual(['sms', 'voice']);
  });

  it('turns channel_not_allowed into a ChannelNotAllowedError with the channels offered', async () => {
    answerWith(400, errorBody('channel_not_allowed', { channels: ['sms', 'fax', 'voice'] }));
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123', channel: 'whatsapp' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ChannelNotAllowedError);
    expect((error as ChannelNotAllowedError).channels).toEqual(['sms', 'voice']);
  });

  it('rejects an accepted body without the channels offered', async () => {
    answerWith(202, { ...accepted, channels: undefined });
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
  });

  it('rejects a success status whose body is not the contract one', async () => {
    answerWith(202, { status: 'pending' });
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
  });
});

describe('verifyOtp', () => {
  it('returns the approval', async () => {
    answerWith(200, approved);
    const result = await createOtpClient({ baseUrl }).verifyOtp({ phone: '+14155550123', code: '123456' });
    expect(result).toEqual(approved);
    expect(seen[0]?.url).toBe('/api/verify-otp');
    expect(seen[0]?.body).toEqual({ phone: '+14155550123', code: '123456' });
  });

  it('sends the device token and returns the one the approval carries', async () => {
    const device = { deviceToken: 'dt.opaque-1', deviceTokenExpiresAt: '2027-02-22T15:00:00Z' };
    answerWith(200, { ...approved, ...device });
    const result = await createOtpClient({ baseUrl }).verifyOtp({ phone: '+14155550123', code: '123456', deviceToken: 'dt.old' });
    expect(seen[0]?.body).toEqual({ phone: '+14155550123', code: '123456', deviceToken: 'dt.old' });
    expect(result).toEqual({ ...approved, ...device });
  });

  it('still returns an approval without device token fields, or with them out of shape, leaving both out', async () => {
    const client = createOtpClient({ baseUrl });
    for (const device of [
      {},
      { deviceToken: 'dt.only-the-token' },
      { deviceToken: 42, deviceTokenExpiresAt: '2027-02-22T15:00:00Z' },
      { deviceToken: '', deviceTokenExpiresAt: '2027-02-22T15:00:00Z' },
      { deviceToken: 'x'.repeat(513), deviceTokenExpiresAt: '2027-02-22T15:00:00Z' },
      { deviceToken: 'dt.ok', deviceTokenExpiresAt: 'next spring' },
    ]) {
      answerWith(200, { ...approved, ...device });
      const result = await client.verifyOtp({ phone: '+14155550123', code: '123456' });
      expect(result, JSON.stringify(device).slice(0, 80)).toEqual(approved);
    }
  });

  it('turns incorrect_code into an IncorrectCodeError with the attempts left', async () => {
    answerWith(401, errorBody('incorrect_code', { attemptsRemaining: 3 }));
    const error = await createOtpClient({ baseUrl }).verifyOtp({ phone: '+1', code: '000000' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncorrectCodeError);
    expect(error).toBeInstanceOf(OtpApiError);
    expect((error as IncorrectCodeError).attemptsRemaining).toBe(3);
  });

  it('turns code_expired into a CodeExpiredError', async () => {
    answerWith(410, errorBody('code_expired'));
    const error = await createOtpClient({ baseUrl }).verifyOtp({ phone: '+1', code: '000000' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CodeExpiredError);
    expect(isOtpError(error)).toBe(true);
  });
});

describe('every contract error code', () => {
  it.each(errorCodes.map((code) => [code]))('%s becomes its own error class', async (code: ErrorCode) => {
    answerWith(400, errorBody(code, { attemptsRemaining: 1, retryAfterSeconds: 1 }));
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(apiErrorClasses[code]);
    expect((error as OtpApiError).code).toBe(code);
    expect((error as OtpApiError).name).toBe(apiErrorClasses[code].name);
  });

  it('has one distinct class per code', () => {
    expect(errorCodes).toHaveLength(20);
    expect(new Set(Object.values(apiErrorClasses)).size).toBe(errorCodes.length);
  });

  it('an unknown code is not taken for a contract answer', async () => {
    answerWith(418, errorBody('teapot'));
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
    expect((error as UnexpectedResponseError).status).toBe(418);
  });

  it('a non-JSON answer (a proxy page) is an UnexpectedResponseError', async () => {
    answer = { status: 502, body: '<html>Bad Gateway</html>', headers: { 'Content-Type': 'text/html' } };
    const error = await createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
    expect((error as UnexpectedResponseError).status).toBe(502);
  });
});

describe('failures without an answer', () => {
  it('a closed port is a NetworkError', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await createOtpClient({ baseUrl: `http://127.0.0.1:${port}` })
      .sendOtp({ phone: '+14155550123' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).status).toBe(0);
  });

  it('a slow answer times out as a NetworkError', async () => {
    answer = { status: 202, body: JSON.stringify(accepted), delayMs: 500 };
    const error = await createOtpClient({ baseUrl, timeoutMs: 50 })
      .sendOtp({ phone: '+14155550123' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NetworkError);
    expect((error as NetworkError).message).toContain('50 ms');
  });

  it('an aborted call is a NetworkError', async () => {
    answer = { status: 202, body: JSON.stringify(accepted), delayMs: 500 };
    const controller = new AbortController();
    const pending = createOtpClient({ baseUrl }).sendOtp({ phone: '+14155550123' }, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(NetworkError);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('120')).toBe(120);
    expect(parseRetryAfter(' 7 ')).toBe(7);
    const now = Date.parse('2026-11-24T15:00:00Z');
    expect(parseRetryAfter('Tue, 24 Nov 2026 15:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Tue, 24 Nov 2026 14:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});
