// The public surface of @otp-service/react.
export { OtpSignIn } from './OtpSignIn.js';
export type { ChallengeProps, MessageOverrides, OtpSignInProps, OtpSignInTheme, SignedIn } from './OtpSignIn.js';
export { catalogs, duration, languageOf } from './messages.js';
export type { ErrorDetail, FailureCode, Language, Messages, PerChannel } from './messages.js';
export { countryOfLocale, countryOptions } from './countries.js';
export type { CountryOption } from './countries.js';
