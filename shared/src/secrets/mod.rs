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

use crate::ports::{SecretError, SecretSource, Secrets};

/// A secret's name under the SSM prefix, and the environment variable that gives it
/// locally (and overrides SSM for a single value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretName {
    pub ssm: &'static str,
    pub env: &'static str,
}

pub const SESSION_SECRET: SecretName = SecretName { ssm: "session-secret", env: "OTP_SESSION_SECRET" };
pub const CODE_PEPPER: SecretName = SecretName { ssm: "code-pepper", env: "OTP_CODE_PEPPER" };
pub const TWILIO_ACCOUNT_SID: SecretName = SecretName { ssm: "twilio-account-sid", env: "TWILIO_ACCOUNT_SID" };
pub const TWILIO_AUTH_TOKEN: SecretName = SecretName { ssm: "twilio-auth-token", env: "TWILIO_AUTH_TOKEN" };
pub const TWILIO_FROM: SecretName = SecretName { ssm: "twilio-from", env: "TWILIO_FROM" };
pub const TWILIO_MESSAGING_SERVICE_SID: SecretName =
    SecretName { ssm: "twilio-messaging-service-sid", env: "TWILIO_MESSAGING_SERVICE_SID" };
pub const GCP_CREDENTIALS: SecretName = SecretName { ssm: "gcp-credentials", env: "OTP_GCP_CREDENTIALS" };
pub const CAPTCHA_SECRET: SecretName = SecretName { ssm: "captcha-secret", env: "OTP_CAPTCHA_SECRET" };

/// Every secret, in the order they are asked for.
pub const ALL: [SecretName; 8] = [
    SESSION_SECRET,
    CODE_PEPPER,
    TWILIO_ACCOUNT_SID,
    TWILIO_AUTH_TOKEN,
    TWILIO_FROM,
    TWILIO_MESSAGING_SERVICE_SID,
    GCP_CREDENTIALS,
    CAPTCHA_SECRET,
];

/// The shortest session secret and pepper: 32 bytes, the HMAC-SHA256 block's half and
/// the key size RFC 7518 requires of HS256.
pub const MIN_KEY_BYTES: usize = 32;

/// Which optional secrets the configured adapters need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Required {
    pub twilio: bool,
    pub captcha: bool,
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
    if required.twilio && secrets.twilio.is_none() {
        return Err(SecretError::Missing(format!(
            "{}, {} and {} or {}",
            TWILIO_ACCOUNT_SID.env, TWILIO_AUTH_TOKEN.env, TWILIO_FROM.env, TWILIO_MESSAGING_SERVICE_SID.env
        )));
    }
    if required.captcha && secrets.captcha_secret.is_none() {
        return Err(SecretError::Missing(format!("{} (or {})", CAPTCHA_SECRET.ssm, CAPTCHA_SECRET.env)));
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

    async fn load_fit(&self) -> Result<Secrets, SecretError> {
        let secrets = self.source.load().await?;
        check_fit(&secrets, self.required)?;
        Ok(secrets)
    }

    /// Loads now (at cold start), logging a failure once, clearly.
    pub async fn prime(&self) -> Result<(), SecretError> {
        let mut last_failure = self.refresh.lock().await;
        match self.load_fit().await {
            Ok(secrets) => {
                *self.current.write().await = Some(((self.now)(), Arc::new(secrets)));
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
                let secrets = Arc::new(secrets);
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

/// The cache as a source, for adapters that read secrets themselves (Twilio's credentials,
/// the Firestore key, the challenge secret): they get the cached secrets, so the secret
/// store is read once for all.
#[async_trait]
impl SecretSource for SecretCache {
    async fn load(&self) -> Result<Secrets, SecretError> {
        self.current().await.map(|secrets| Secrets::clone(&secrets))
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
            twilio: None,
            gcp_credentials: None,
            captcha_secret: None,
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
        let missing = check_fit(&secrets(&long_a, &long_b), Required { twilio: false, captcha: true });
        assert!(matches!(missing, Err(SecretError::Missing(name)) if name.contains("captcha-secret")));
        let missing = check_fit(&secrets(&long_a, &long_b), Required { twilio: true, captcha: false });
        assert!(matches!(missing, Err(SecretError::Missing(name)) if name.contains("TWILIO_ACCOUNT_SID")));
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
    }
}
