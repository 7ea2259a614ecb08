// The API's shapes, taken from the generated `openapi.ts` (never restated by hand).
import type { components } from './openapi.js';

type Schemas = components['schemas'];

export type SendOtpRequest = Schemas['SendOtpRequest'];
export type SendOtpAccepted = Schemas['SendOtpAccepted'];
/** A way to the phone: `sms`, `whatsapp` or `voice` (a call). */
export type Channel = Schemas['Channel'];
export type VerifyOtpRequest = Schemas['VerifyOtpRequest'];
/** The approval as the contract has it, device token fields included. */
export type VerifyOtpApprovedBody = Schemas['VerifyOtpApproved'];
/**
 * The approval `verifyOtp` returns. The contract puts `deviceToken` and
 * `deviceTokenExpiresAt` in every approval, but the client still returns an approval
 * that lacks them or has them out of shape (a service from before device tokens), with
 * both left out: by then the code is spent, and refusing the approval would lock the
 * person out for a field they can do without.
 */
export type VerifyOtpApproved = Omit<VerifyOtpApprovedBody, DeviceTokenFields> &
  Partial<Pick<VerifyOtpApprovedBody, DeviceTokenFields>>;
type DeviceTokenFields = 'deviceToken' | 'deviceTokenExpiresAt';
/** Every `error.code` of the contract. */
export type ErrorCode = Schemas['ErrorCode'];
/** The body of every error answer. */
export type ErrorBody = Schemas['Error'];
