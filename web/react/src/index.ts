// The public surface of @otp-service/react.
export { OtpSignIn } from './OtpSignIn.js';
export type { ChallengeProps, MessageOverrides, OtpSignInProps, OtpSignInTheme, SignedIn } from './OtpSignIn.js';
export { catalogs, languageOf } from './messages.js';
export type { ErrorDetail, FailureCode, Language, Messages } from './messages.js';
export { countryOfLocale, countryOptions } from './countries.js';
export type { CountryOption } from './countries.js';
