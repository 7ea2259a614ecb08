//! The service's secrets in one place: their names, where they come from (`env` for local
//! work, `ssm` in AWS), the checks that they are fit for use, and the cache every part
//! reads them through, so the secret store is read once per cold start and on refresh.

pub mod env;
pub mod ssm;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, RwLock};

use crate::config::TestNumbers;
use crate::domain::CodeLength;
use crate::domain::token::TokenKeys;
use crate::ports::{ProviderSecrets, SecretError, SecretSource, Secrets};

pub use crate::ports::SecretName;

pub const SESSION_SECRET: SecretName = SecretName { ssm: "session-secret", env: "OTP_SESSION_SECRET" };
pub const CODE_PEPPER: SecretName = SecretName { ssm: "code-pepper", env: "OTP_CODE_PEPPER" };
pub const TWILIO_ACCOUNT_SID: SecretName = SecretName { ssm: "twilio-account-sid", env: "TWILIO_ACCOUNT_SID" };
pub const TWILIO_AUTH_TOKEN: SecretName = SecretName { ssm: "twilio-auth-token", env: "TWILIO_AUTH_TOKEN" };
pub const TWILIO_FROM: SecretName = SecretName { ssm: "twilio-from", env: "TWILIO_FROM" };
pub const TWILIO_MESSAGING_SERVICE_SID: SecretName =
    SecretName { ssm: "twilio-messaging-service-sid", env: "TWILIO_MESSAGING_SERVICE_SID" };
pub const GCP_CREDENTIALS: SecretName = SecretName { ssm: "gcp-credentials", env: "OTP_GCP_CREDENTIALS" };
pub const CAPTCHA_SECRET: SecretName = SecretName { ssm: "captcha-secret", env: "OTP_CAPTCHA_SECRET" };
/// Optional, and read by both functions: a number and its fixed code sign in, so the list
/// is a secret, never a plain setting (in AWS, never an environment variable of the stack).
pub const TEST_NUMBERS: SecretName = SecretName { ssm: "test-numbers", env: "OTP_TEST_NUMBERS" };
/// The session tokens' ES256 keys (PKCS#8 PEM P-256, concatenated; the first signs): read
/// by verify-otp alone, which signs the tokens.
pub const TOKEN_SIGNING_KEYS: SecretName = SecretName { ssm: "token-signing-keys", env: "OTP_TOKEN_SIGNING_KEYS" };

/// Every secret, in the order they are asked for.
pub const ALL: [SecretName; 10] = [
    SESSION_SECRET,
    CODE_PEPPER,
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
    TWILIO_FROM,
    TWILIO_MESSAGING_SERVICE_SID,
    GCP_CREDENTIALS,
    CAPTCHA_SECRET,
    TEST_NUMBERS,
    TOKEN_SIGNING_KEYS,
];

/// The adapters' secrets: a source reads them into [`ProviderSecrets`] as they are, and
/// each adapter gives them its shape.
pub const PROVIDERS: [SecretName; 6] =
    [TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM, TWILIO_MESSAGING_SERVICE_SID, GCP_CREDENTIALS, CAPTCHA_SECRET];

/// Whether `providers` hold a whole set of Twilio credentials: the account SID, the auth
/// token, and a sender (a number or a Messaging Service).
pub fn has_twilio(providers: &ProviderSecrets) -> bool {
    providers.contains(TWILIO_ACCOUNT_SID)
        && providers.contains(TWILIO_AUTH_TOKEN)
        && (providers.contains(TWILIO_FROM) || providers.contains(TWILIO_MESSAGING_SERVICE_SID))
}

/// The shortest session secret and pepper: 32 bytes, the HMAC-SHA256 block's half and
/// the key size RFC 7518 requires of HS256.
pub const MIN_KEY_BYTES: usize = 32;

/// Which optional secrets the configured adapters need, and what test numbers may be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Required {
    pub twilio: bool,
    pub captcha: bool,
    /// The session tokens' signing keys: where codes are verified.
    pub token_keys: bool,
    pub test_numbers: TestNumbersRule,
}

impl Required {
    /// Whether a function with these needs reads `name` at all. Each function's role may
    /// read only the parameters it uses (template.yaml; scripts/lib/check_template.py's
    /// SECRETS_READ), and SSM refuses a whole `GetParameters` call that names one more:
    /// send-otp never asks for the signing keys, verify-otp never for the Twilio
    /// credentials or the challenge's secret.
    pub fn reads(&self, name: SecretName) -> bool {
        if [TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM, TWILIO_MESSAGING_SERVICE_SID].contains(&name) {
            self.twilio
        } else if name == CAPTCHA_SECRET {
            self.captcha
        } else if name == TOKEN_SIGNING_KEYS {
            self.token_keys
        } else {
            true
        }
    }
}

/// A secret's value as every source reads it: without surrounding whitespace (a pasted
/// value's newline, a PEM block's last line), and none when blank. One rule for the
/// environment and SSM, so that a secret means the same bytes locally and in AWS (an HMAC
/// key with a trailing newline would sign differently).
pub fn secret_value(raw: &str) -> Option<String> {
    let value = raw.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The signing keys a source read (PEM text), parsed: a key that does not parse, is not
/// P-256 or repeats another makes the secrets unfit, with a reason that shows no key.
pub fn parse_token_keys(pem: Option<&str>) -> Result<Option<Arc<TokenKeys>>, SecretError> {
    let Some(pem) = pem else { return Ok(None) };
    TokenKeys::parse(pem).map(|keys| Some(Arc::new(keys))).map_err(|reason| {
        SecretError::Unfit(format!("{} ({}): {reason}", TOKEN_SIGNING_KEYS.ssm, TOKEN_SIGNING_KEYS.env))
    })
}

/// Whether the secrets may hold test numbers, and the code length their codes must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestNumbersRule {
    Allowed(CodeLength),
    /// Inside Lambda without `OTP_TEST_NUMBERS_IN_LAMBDA=true`: a list there is unfit, so
    /// that a stray parameter cannot open a production stack to a fixed code.
    Refused,
}

impl Default for TestNumbersRule {
    fn default() -> Self {
        Self::Allowed(CodeLength::default())
    }
}

/// Checks that `secrets` are fit for use: the session secret and the pepper are at least
/// [`MIN_KEY_BYTES`] long, not one repeated character (a placeholder such as 32 x "a",
/// which no generator makes), and differ (one key for two jobs would let a leak of either
/// forge both), and what the adapters need is there.
pub fn check_fit(secrets: &Secrets, required: Required) -> Result<(), SecretError> {
    let session = secrets.session_secret.expose_secret();
    let pepper = secrets.code_pepper.expose_secret();
    for (name, value) in [(SESSION_SECRET, session), (CODE_PEPPER, pepper)] {
        if value.len() < MIN_KEY_BYTES {
            return Err(SecretError::Unfit(format!(
                "{} ({}) must be at least {MIN_KEY_BYTES} bytes",
                name.ssm, name.env
            )));
        }
        if value.bytes().all(|b| Some(b) == value.bytes().next()) {
            return Err(SecretError::Unfit(format!("{} ({}) must not be one repeated character", name.ssm, name.env)));
        }
    }
    if session == pepper {
        return Err(SecretError::Unfit(format!("{} and {} must differ", SESSION_SECRET.ssm, CODE_PEPPER.ssm)));
    }
    if required.twilio && !has_twilio(&secrets.providers) {
        return Err(SecretError::Missing(format!(
            "{}, {} and {} or {}",
            TWILIO_ACCOUNT_SID.env, TWILIO_AUTH_TOKEN.env, TWILIO_FROM.env, TWILIO_MESSAGING_SERVICE_SID.env
        )));
    }
    if required.captcha && !secrets.providers.contains(CAPTCHA_SECRET) {
        return Err(SecretError::Missing(format!("{} (or {})", CAPTCHA_SECRET.ssm, CAPTCHA_SECRET.env)));
    }
    if required.token_keys && secrets.token_keys.is_none() {
        return Err(SecretError::Missing(format!("{} (or {})", TOKEN_SIGNING_KEYS.ssm, TOKEN_SIGNING_KEYS.env)));
    }
    if let Some(list) = &secrets.test_numbers {
        let unfit =
            |reason: String| SecretError::Unfit(format!("{} ({}): {reason}", TEST_NUMBERS.ssm, TEST_NUMBERS.env));
        match required.test_numbers {
            TestNumbersRule::Refused => {
                return Err(unfit(
                    "test numbers are refused inside Lambda unless OTP_TEST_NUMBERS_IN_LAMBDA=true".into(),
                ));
            }
            TestNumbersRule::Allowed(length) => {
                TestNumbers::parse(list.expose_secret(), length).map_err(unfit)?;
            }
        }
    }
    Ok(())
}

/// Secrets loaded once per cold start and refreshed after `ttl`, so a rotation needs no
/// redeploy. While a refresh fails the last good secrets stay in use; with none, every
/// request answers `503`, and loading is retried at most once per `retry_interval`.
/// Secrets that are not fit for use count as not loaded.
pub struct SecretCache {
    source: Arc<dyn SecretSource>,
    required: Required,
    ttl: Duration,
    retry_interval: Duration,
    current: RwLock<Option<(Instant, Arc<Secrets>)>>,
    refresh: Mutex<Option<Instant>>,
    now: MonotonicNow,
}

/// Where the cache reads the time: `Instant::now` (monotonic: a wall-clock step changes
/// no TTL); a test steps its own, so what it asserts about the TTL needs no timing luck.
pub type MonotonicNow = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How long loaded secrets are used before they are read again.
pub const SECRET_TTL: Duration = Duration::from_secs(300);

impl SecretCache {
    pub fn new(source: Arc<dyn SecretSource>, required: Required, ttl: Duration) -> Self {
        Self {
            source,
            required,
            ttl,
            retry_interval: Duration::from_secs(5),
            current: RwLock::new(None),
            refresh: Mutex::new(None),
            now: Arc::new(Instant::now),
        }
    }

    /// The same cache, reading the time from `now`.
    pub fn with_clock(self, now: MonotonicNow) -> Self {
        Self { now, ..self }
    }

    /// Time since `at`, by the cache's clock.
    fn since(&self, at: Instant) -> Duration {
        (self.now)().saturating_duration_since(at)
    }

    async fn load_fit(&self) -> Result<Arc<Secrets>, SecretError> {
        let secrets = self.source.load().await?;
        check_fit(&secrets, self.required)?;
        Ok(secrets)
    }

    /// Loads now (at cold start), logging a failure once, clearly.
    pub async fn prime(&self) -> Result<(), SecretError> {
        let mut last_failure = self.refresh.lock().await;
        match self.load_fit().await {
            Ok(secrets) => {
                *self.current.write().await = Some(((self.now)(), secrets));
                Ok(())
            }
            Err(error) => {
                tracing::error!(
                    event = "secrets_unusable",
                    %error,
                    "secrets could not be loaded or are not fit for use; every request answers 503 until they are"
                );
                *last_failure = Some((self.now)());
                Err(error)
            }
        }
    }

    /// The secrets in use: cached, or loaded again once `ttl` has passed.
    pub async fn current(&self) -> Result<Arc<Secrets>, SecretError> {
        if let Some((loaded, secrets)) = self.current.read().await.as_ref()
            && self.since(*loaded) < self.ttl
        {
            return Ok(secrets.clone());
        }
        let mut last_failure = self.refresh.lock().await;
        let stale = self.current.read().await.clone();
        if let Some((loaded, secrets)) = &stale
            && self.since(*loaded) < self.ttl
        {
            return Ok(secrets.clone()); // another request refreshed while we waited
        }
        let unavailable = || SecretError::Unreachable("secrets unavailable".into());
        if last_failure.is_some_and(|at| self.since(at) < self.retry_interval) {
            return stale.map(|(_, s)| s).ok_or_else(unavailable);
        }
        match self.load_fit().await {
            Ok(secrets) => {
                *self.current.write().await = Some(((self.now)(), secrets.clone()));
                *last_failure = None;
                Ok(secrets)
            }
            Err(error) => {
                *last_failure = Some((self.now)());
                match stale {
                    Some((_, secrets)) => {
                        tracing::warn!(%error, "secret refresh failed; keeping the last good secrets");
                        Ok(secrets)
                    }
                    None => {
                        tracing::error!(event = "secrets_unusable", %error, "secrets unavailable");
                        Err(error)
                    }
                }
            }
        }
    }
}

/// The cache as a source: what the service and the adapters that read secrets (Twilio's
/// credentials, the Firestore key, the challenge secret) hold, so the secret store is read
/// once for all.
#[async_trait]
impl SecretSource for SecretCache {
    async fn load(&self) -> Result<Arc<Secrets>, SecretError> {
        self.current().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn secrets(session: &str, pepper: &str) -> Secrets {
        Secrets {
            session_secret: SecretString::from(session.to_owned()),
            code_pepper: SecretString::from(pepper.to_owned()),
            test_numbers: None,
            token_keys: None,
            providers: ProviderSecrets::default(),
        }
    }

    #[test]
    fn short_or_equal_keys_are_unfit() {
        let long_a = "session-0123456789abcdefghijklmnop".to_owned();
        let long_b = "pepper-0123456789abcdefghijklmnopq".to_owned();
        assert!(long_a.len() >= 32 && long_b.len() >= 32);
        assert!(check_fit(&secrets(&long_a, &long_b), Required::default()).is_ok());
        let short = "s3".repeat(15) + "s";
        let repeated = "a".repeat(32);
        for (session, pepper) in
            [(&short, &long_b), (&long_a, &short), (&long_a, &long_a), (&repeated, &long_b), (&long_a, &repeated)]
        {
            match check_fit(&secrets(session, pepper), Required::default()) {
                Err(SecretError::Unfit(reason)) => assert!(!reason.contains(session.as_str()), "never the value"),
                other => panic!("{other:?}"),
            }
        }
        let missing = check_fit(&secrets(&long_a, &long_b), Required { captcha: true, ..Required::default() });
        assert!(matches!(missing, Err(SecretError::Missing(name)) if name.contains("captcha-secret")));
        let missing = check_fit(&secrets(&long_a, &long_b), Required { twilio: true, ..Required::default() });
        assert!(matches!(missing, Err(SecretError::Missing(name)) if name.contains("TWILIO_ACCOUNT_SID")));
        // Twilio's credentials are whole with a sender of either kind, and not without one.
        let mut fit = secrets(&long_a, &long_b);
        for name in [TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN] {
            fit.providers.insert(name, SecretString::from("x".to_owned()));
        }
        let twilio = Required { twilio: true, ..Required::default() };
        assert!(check_fit(&fit, twilio).is_err(), "no sender");
        for sender in [TWILIO_FROM, TWILIO_MESSAGING_SERVICE_SID] {
            let mut with_sender = fit.clone();
            with_sender.providers.insert(sender, SecretString::from("x".to_owned()));
            assert!(check_fit(&with_sender, twilio).is_ok(), "{}", sender.env);
        }
        let missing = check_fit(&secrets(&long_a, &long_b), Required { token_keys: true, ..Required::default() });
        assert!(matches!(missing, Err(SecretError::Missing(name)) if name.contains("token-signing-keys")));
    }

    #[test]
    fn a_secret_is_its_value_without_surrounding_whitespace() {
        assert_eq!(secret_value("  key-0123\n").as_deref(), Some("key-0123"));
        assert_eq!(secret_value("a b").as_deref(), Some("a b"), "inner whitespace is the value's own");
        assert_eq!(secret_value(" \n\t"), None);
    }

    #[test]
    fn each_function_reads_only_its_own_secrets() {
        let sends = Required { twilio: true, captcha: true, ..Required::default() };
        let verifies = Required { token_keys: true, ..Required::default() };
        let read = |required: Required| ALL.iter().filter(|n| required.reads(**n)).map(|n| n.ssm).collect::<Vec<_>>();
        assert!(!read(sends).contains(&"token-signing-keys"));
        assert!(read(sends).contains(&"twilio-auth-token") && read(sends).contains(&"captcha-secret"));
        assert_eq!(
            read(verifies),
            ["session-secret", "code-pepper", "gcp-credentials", "test-numbers", "token-signing-keys"]
        );
    }

    #[test]
    fn signing_keys_that_do_not_parse_are_unfit_and_named() {
        assert!(parse_token_keys(None).is_ok_and(|keys| keys.is_none()));
        let pem = TokenKeys::generate_pem();
        let keys = parse_token_keys(Some(&pem)).ok().flatten().expect("a generated key parses");
        assert_eq!(keys.kids().len(), 1);
        match parse_token_keys(Some(&format!("{pem}{pem}"))) {
            Err(SecretError::Unfit(reason)) => {
                assert!(reason.contains("token-signing-keys") && reason.contains("OTP_TOKEN_SIGNING_KEYS"), "{reason}");
                assert!(reason.contains("repeats"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_numbers_must_parse_and_are_refused_where_the_rule_says() {
        let with = |list: &str| Secrets {
            test_numbers: Some(SecretString::from(list.to_owned())),
            ..secrets("session-0123456789abcdefghijklmnop", "pepper-0123456789abcdefghijklmnopq")
        };
        let six = Required::default();
        assert!(check_fit(&with("+15555550100=424242"), six).is_ok());
        for bad in ["+15555550100", "+15555550100=4242", "not-a-number=424242"] {
            match check_fit(&with(bad), six) {
                Err(SecretError::Unfit(reason)) => {
                    assert!(reason.contains("test-numbers") && reason.contains("OTP_TEST_NUMBERS"), "{reason}");
                    assert!(!reason.contains("5555550100") && !reason.contains("4242"), "never the values: {reason}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
        let eight = Required { test_numbers: TestNumbersRule::Allowed(CodeLength::new(8).unwrap()), ..six };
        assert!(check_fit(&with("+15555550100=424242"), eight).is_err(), "the codes take the configured length");
        assert!(check_fit(&with("+15555550100=42424242"), eight).is_ok());
        let refused = Required { test_numbers: TestNumbersRule::Refused, ..six };
        match check_fit(&with("+15555550100=424242"), refused) {
            Err(SecretError::Unfit(reason)) => assert!(reason.contains("OTP_TEST_NUMBERS_IN_LAMBDA"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let no_list = secrets("session-0123456789abcdefghijklmnop", "pepper-0123456789abcdefghijklmnopq");
        assert!(check_fit(&no_list, refused).is_ok(), "no list, nothing refused");
    }

    #[test]
    fn every_name_is_spelled_once() {
        let mut ssm: Vec<_> = ALL.iter().map(|n| n.ssm).collect();
        let mut env: Vec<_> = ALL.iter().map(|n| n.env).collect();
        ssm.sort();
        ssm.dedup();
        env.sort();
        env.dedup();
        assert_eq!((ssm.len(), env.len()), (ALL.len(), ALL.len()));
        assert!(PROVIDERS.iter().all(|name| ALL.contains(name)));
    }
}
