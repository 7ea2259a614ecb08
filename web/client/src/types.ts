// The API's shapes, taken from the generated `openapi.ts` (never restated by hand).
import type { components } from './openapi.js';

type Schemas = components['schemas'];

export type SendOtpRequest = Schemas['SendOtpRequest'];
export type SendOtpAccepted = Schemas['SendOtpAccepted'];
/** A way to the phone: `sms`, `whatsapp` or `voice` (a call). */
export type Channel = Schemas['Channel'];
export type VerifyOtpRequest = Schemas['VerifyOtpRequest'];
export type VerifyOtpApproved = Schemas['VerifyOtpApproved'];
/** Every `error.code` of the contract. */
export type ErrorCode = Schemas['ErrorCode'];
/** The body of every error answer. */
export type ErrorBody = Schemas['Error'];
