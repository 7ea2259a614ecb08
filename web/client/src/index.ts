// The public surface of @otp-service/client.
export { createOtpClient, isOtpError } from './client.js';
export type { CallOptions, OtpClient, OtpClientOptions } from './client.js';
export * from './errors.js';
export type * from './types.js';
export type { components, paths } from './openapi.js';
