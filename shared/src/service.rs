//! The use cases: send a code, verify a code. Each takes parsed domain values, runs the
//! rules over the ports, and answers with a domain result or an `ApiError`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use tokio::sync::{Mutex, RwLock};

use crate::config::Settings;
use crate::domain::message::render_sms;
use crate::domain::{E164Phone, OtpCode, Pepper, SendDecision, SessionToken, SessionTokenIssuer, VerifyOutcome};
use crate::error::ApiError;
use crate::ports::{Clock, OtpStore, SecretError, SecretSource, Secrets, SmsError, SmsMessage, SmsSender, StoreError};

/// A send that went out.
#[derive(Debug, Clone)]
pub struct SendAccepted {
    pub to: E164Phone,
    pub expires_at: DateTime<Utc>,
    pub resend_after_seconds: u64,
}

/// A verify that matched.
#[derive(Debug, Clone)]
pub struct Approval {
    pub to: E164Phone,
    pub token: SessionToken,
}

/// The service with its ports, built once per cold start.
#[derive(Clone)]
pub struct OtpService {
    settings: Arc<Settings>,
    store: Arc<dyn OtpStore>,
    sms: Arc<dyn SmsSender>,
    clock: Arc<dyn Clock>,
    secrets: Arc<SecretCache>,
}

impl OtpService {
    pub fn new(
        settings: Settings,
        store: Arc<dyn OtpStore>,
        sms: Arc<dyn SmsSender>,
        clock: Arc<dyn Clock>,
        secrets: Arc<SecretCache>,
    ) -> Self {
        Self { settings: Arc::new(settings), store, sms, clock, secrets }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Sends a new code to `phone`, if the limits allow it. `client` names the caller
    /// (its IP address) for the per-client limit.
    pub async fn send(&self, phone: E164Phone, locale: Option<&str>, client: &str) -> Result<SendAccepted, ApiError> {
        if !self.settings.allowed_countries.allows(&phone) {
            tracing::info!(
                event = "send_country_refused",
                phone = %phone.masked(),
                country = phone.country(),
                "send refused: country not allowed"
            );
            return Err(ApiError::CountryNotAllowed);
        }
        let secrets = self.secrets.current().await?;
        let pepper = Pepper::new(secrets.code_pepper.expose_secret().as_bytes());
        let code = OtpCode::generate(self.settings.code_length);
        let hash = pepper.hash_code(phone.as_str(), &code);
        let number_key = pepper.number_key(phone.as_str());
        let client_key = pepper.client_key(client);
        // Only with the per-range limit on: off, the store reads and writes no range record.
        let range_key =
            self.settings.policy.per_range.map(|_| pepper.range_key(phone.as_str(), self.settings.range_digits));
        let now = self.clock.now();

        let decision = self
            .store
            .record_send(&number_key, &client_key, range_key.as_ref(), hash, &self.settings.policy, now)
            .await
            .map_err(store_failure)?;
        let expires_at = match decision {
            SendDecision::Allowed { expires_at } => expires_at,
            SendDecision::RateLimited { retry_after_seconds, scope } => {
                tracing::info!(
                    event = "send_rate_limited",
                    phone = %phone.masked(),
                    ?scope,
                    retry_after_seconds,
                    "send refused: rate limited"
                );
                return Err(ApiError::RateLimited { retry_after_seconds });
            }
        };

        let ttl_minutes = (self.settings.policy.code_ttl.num_seconds() + 59) / 60;
        let body = render_sms(locale, &code, ttl_minutes, self.settings.webotp_domain.as_deref());
        let message = SmsMessage { to: phone.as_str().to_owned(), body };
        if let Err(error) = self.sms.send(&message).await {
            // No usable code may outlive a failed SMS; the send still counts toward the limits.
            if let Err(store_error) = self.store.withdraw_code(&number_key, &hash).await {
                tracing::error!(phone = %phone.masked(), error = %store_error, "could not withdraw the code of a failed SMS");
            }
            // `sms_failed` (the provider failed us: the alarm counts these) is kept apart from
            // `sms_refused` (the provider refused this number for good), which any caller can
            // cause at will and which must not page anyone.
            if let SmsError::Failed(_) = error {
                tracing::warn!(event = "sms_failed", phone = %phone.masked(), %error, "SMS not sent");
            } else {
                tracing::info!(event = "sms_refused", phone = %phone.masked(), %error, "SMS not sent");
            }
            return Err(match error {
                SmsError::InvalidNumber => ApiError::InvalidPhone,
                SmsError::Unreachable => ApiError::PhoneUnreachable,
                SmsError::CountryBlocked => ApiError::CountryNotAllowed,
                SmsError::Failed(_) => ApiError::SmsFailed,
            });
        }
        tracing::info!(event = "sms_sent", phone = %phone.masked(), %expires_at, "code sent");
        Ok(SendAccepted {
            to: phone,
            expires_at,
            resend_after_seconds: u64::try_from(self.settings.policy.resend_cooldown.num_seconds()).unwrap_or(0),
        })
    }

    /// Judges `code` for `phone`; on a match, issues a session token.
    pub async fn verify(&self, phone: E164Phone, code: OtpCode) -> Result<Approval, ApiError> {
        let secrets = self.secrets.current().await?;
        let pepper = Pepper::new(secrets.code_pepper.expose_secret().as_bytes());
        let hash = pepper.hash_code(phone.as_str(), &code);
        let now = self.clock.now();
        let outcome =
            self.store.judge_attempt(&pepper.number_key(phone.as_str()), &hash, now).await.map_err(store_failure)?;
        tracing::info!(event = "verify_judged", phone = %phone.masked(), ?outcome, "verify judged");
        match outcome {
            VerifyOutcome::Approved => {
                let issuer = SessionTokenIssuer::new(
                    secrets.session_secret.expose_secret().as_bytes(),
                    self.settings.token_issuer.clone(),
                    self.settings.token_ttl,
                );
                let token = issuer.issue(&phone, now).map_err(|error| {
                    tracing::error!(%error, "session token not issued");
                    ApiError::Internal
                })?;
                Ok(Approval { to: phone, token })
            }
            VerifyOutcome::Incorrect { attempts_remaining } => Err(ApiError::IncorrectCode { attempts_remaining }),
            VerifyOutcome::AttemptsExhausted => Err(ApiError::TooManyAttempts),
            VerifyOutcome::NoPendingCode => Err(ApiError::CodeExpired),
        }
    }
}

fn store_failure(error: StoreError) -> ApiError {
    tracing::error!(%error, "store failed");
    ApiError::ServiceUnavailable
}

/// Secrets loaded once per cold start and refreshed after `ttl`, so a rotation needs no
/// redeploy. While a refresh fails the last good secrets stay in use; with none, every
/// request answers `503`, and loading is retried at most once per `retry_interval`.
pub struct SecretCache {
    source: Arc<dyn SecretSource>,
    ttl: Duration,
    retry_interval: Duration,
    current: RwLock<Option<(Instant, Arc<Secrets>)>>,
    refresh: Mutex<Option<Instant>>,
}

impl SecretCache {
    pub fn new(source: Arc<dyn SecretSource>, ttl: Duration) -> Self {
        Self {
            source,
            ttl,
            retry_interval: Duration::from_secs(5),
            current: RwLock::new(None),
            refresh: Mutex::new(None),
        }
    }

    /// Loads now (at cold start), logging a failure once, clearly.
    pub async fn prime(&self) -> Result<(), SecretError> {
        let mut last_failure = self.refresh.lock().await;
        match self.source.load().await {
            Ok(secrets) => {
                *self.current.write().await = Some((Instant::now(), Arc::new(secrets)));
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "secrets could not be loaded; every request answers 503 until they can");
                *last_failure = Some(Instant::now());
                Err(error)
            }
        }
    }

    pub async fn current(&self) -> Result<Arc<Secrets>, ApiError> {
        if let Some((loaded, secrets)) = self.current.read().await.as_ref()
            && loaded.elapsed() < self.ttl
        {
            return Ok(secrets.clone());
        }
        let mut last_failure = self.refresh.lock().await;
        let stale = self.current.read().await.clone();
        if let Some((loaded, secrets)) = &stale
            && loaded.elapsed() < self.ttl
        {
            return Ok(secrets.clone()); // another request refreshed while we waited
        }
        if last_failure.is_some_and(|at| at.elapsed() < self.retry_interval) {
            return stale.map(|(_, s)| s).ok_or(ApiError::ServiceUnavailable);
        }
        match self.source.load().await {
            Ok(secrets) => {
                let secrets = Arc::new(secrets);
                *self.current.write().await = Some((Instant::now(), secrets.clone()));
                *last_failure = None;
                Ok(secrets)
            }
            Err(error) => {
                *last_failure = Some(Instant::now());
                match stale {
                    Some((_, secrets)) => {
                        tracing::warn!(%error, "secret refresh failed; keeping the last good secrets");
                        Ok(secrets)
                    }
                    None => {
                        tracing::error!(%error, "secrets unavailable");
                        Err(ApiError::ServiceUnavailable)
                    }
                }
            }
        }
    }
}

/// The cache as a source, for parts that read secrets themselves (the Firestore store's
/// credentials): they get the cached secrets, so the secret store is read once for all.
#[async_trait::async_trait]
impl SecretSource for SecretCache {
    async fn load(&self) -> Result<Secrets, SecretError> {
        match self.current().await {
            Ok(secrets) => Ok(Secrets::clone(&secrets)),
            // The cause was logged when loading failed.
            Err(_) => Err(SecretError::Unreachable("secrets unavailable".into())),
        }
    }
}
