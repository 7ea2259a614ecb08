//! The one set of test secrets. Every test that needs a secret takes it from here; a test
//! of unfit or missing secrets replaces or drops one on purpose ([`secrets_with`]).

use std::collections::HashMap;

use otp_core::secrets as names;
use otp_core::secrets::env::EnvSecrets;

/// The code pepper (`OTP_CODE_PEPPER`): fit for use, 32 bytes or more.
pub const PEPPER: &str = "test-code-pepper-9c8b7a6f5e4d3c2b1a-0f1e2d3c4b5a6978";
/// The session secret (`OTP_SESSION_SECRET`): fit for use, and not the pepper.
pub const SESSION_SECRET: &str = "test-session-secret-1a2b3c4d5e6f7a8b-8796a5b4c3d2e1f0";
/// The Twilio account the fake Twilio serves (`TWILIO_ACCOUNT_SID`).
pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
/// Its auth token (`TWILIO_AUTH_TOKEN`): the only one the fake accepts.
pub const AUTH_TOKEN: &str = "tw-auth-token-5f1e2d3c4b5a";
/// The sending number (`TWILIO_FROM`), one of Twilio's test numbers.
pub const FROM: &str = "+15005550006";
/// The bot challenge's secret (`OTP_CAPTCHA_SECRET`), the one the fake siteverify expects.
pub const CAPTCHA_SECRET: &str = "captcha-secret-7d1f0a9b2c";
/// The Firestore credentials stored in SSM (`OTP_GCP_CREDENTIALS`): their shape only.
pub const GCP_CREDENTIALS: &str = "{\"type\": \"service_account\"}";

/// The session tokens' signing key (`OTP_TOKEN_SIGNING_KEYS`): a P-256 key made with
/// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`, as docs/DEPLOY.md does.
pub const TOKEN_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXUXzU13fAC68S7Wr
0ptKh5KXd1GckY+C16ki47GzIwehRANCAARBXsu8XpL3QuO9sh4UIQKT8IywPgut
1XKszXStfJaUP4hwutXigpON10frwmmIdFRHVVWJtugqy6EgKXWqqeeI
-----END PRIVATE KEY-----
";
/// A second key of the same kind, for the rotation tests.
pub const TOKEN_SIGNING_KEY_2: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgCGCDHnPOGD4T5qPf
VNlTQREgf3PTLUrFX3BNkXMPBIChRANCAARymqwJI7hvFB4Qsn/dX+TT5NJBaS/V
QsUDK4Ufb4JIXaxzpm0SEGyBGWNfOI7rmgLHpMgvGloW2mF+SbclS6IS
-----END PRIVATE KEY-----
";

/// The service's own secrets (the pepper, the session secret and the signing key) as the
/// environment gives them.
pub fn secrets() -> EnvSecrets {
    secrets_with(&[])
}

/// The service's own secrets with `extra` (variable, value) added, or replacing them; an
/// empty value leaves the variable out.
pub fn secrets_with(extra: &[(&str, &str)]) -> EnvSecrets {
    let mut values: HashMap<&str, &str> = HashMap::from([
        (names::CODE_PEPPER.env, PEPPER),
        (names::SESSION_SECRET.env, SESSION_SECRET),
        (names::TOKEN_SIGNING_KEYS.env, TOKEN_SIGNING_KEY),
    ]);
    values.extend(extra.iter().copied());
    EnvSecrets::from_lookup(|name| values.get(name).filter(|v| !v.is_empty()).map(|v| (*v).to_owned()))
}
