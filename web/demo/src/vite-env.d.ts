/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Where the API is (a stack's invoke URL); empty: the page's own origin, as in the local run. */
  readonly VITE_OTP_API_URL?: string;
  /** The stack's API key, sent as `x-api-key`. */
  readonly VITE_OTP_API_KEY?: string;
}
