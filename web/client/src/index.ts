// The public surface of @otp-service/client.
export { createOtpClient, isDeviceToken, isOtpError } from './client.js';
export { keepDeviceToken, localStorageDeviceTokens, readDeviceToken } from './deviceTokens.js';
export type { DeviceTokenStore, LocalStorageDeviceTokenOptions } from './deviceTokens.js';
export type { CallOptions, OtpClient, OtpClientOptions } from './client.js';
export * from './errors.js';
export type * from './types.js';
export type { components, paths } from './openapi.js';
