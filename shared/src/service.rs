//! The use cases: send a code, verify a code. Each takes parsed domain values, runs the
//! rules over the ports, and answers with a domain result or an `ApiError`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use crate::config::{ServiceSettings, TestNumbers};
use crate::domain::message::{render_sms, ttl_minutes, voice_script, whatsapp_template};
use crate::domain::token::JwkSet;
use crate::domain::{
    Channel, E164Phone, OtpCode, Pepper, SendDecision, SessionToken, SessionTokenIssuer, VerifyOutcome,
};
use crate::error::ApiError;
use crate::ports::{
    BotChallenge, ChallengeError, Clock, CodeContent, CodeMessage, CodeSender, DeliveryError, MetricEvent, Metrics,
    OtpStore, Secrets, SendSubjects, StoreError, VerifySubjects,
};
use crate::secrets::SecretCache;

mod delivery;

pub use delivery::{DeliveryTracking, NoMetrics, StatusCallback};

/// A send that went out.
#[derive(Debug, Clone)]
pub struct SendAccepted {
    pub to: E164Phone,
    pub channel: Channel,
    pub expires_at: DateTime<Utc>,
    pub resend_after_seconds: u64,
}

/// A verify that matched.
#[derive(Debug, Clone)]
pub struct Approval {
    pub to: E164Phone,
    pub token: SessionToken,
}

/// Who is asking, as the edge saw them.
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    /// The caller's bucket for the per-client limits (its IPv4 address or IPv6 /64).
    pub client: &'a str,
    /// Its address, for the bot challenge's check (never logged).
    pub ip: Option<std::net::IpAddr>,
}

impl std::fmt::Debug for Caller<'_> {
    // Debug output reaches logs: both fields are the caller's address.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller").finish_non_exhaustive()
    }
}

/// The service with its ports, built once per cold start.
#[derive(Clone)]
pub struct OtpService {
    settings: Arc<ServiceSettings>,
    store: Arc<dyn OtpStore>,
    sms: Arc<dyn CodeSender>,
    clock: Arc<dyn Clock>,
    secrets: Arc<SecretCache>,
    challenge: Option<Arc<dyn BotChallenge>>,
    /// The status callbacks' records, where they are on (`service/delivery.rs`).
    delivery: Option<DeliveryTracking>,
    metrics: Arc<dyn Metrics>,
}

impl OtpService {
    pub fn new(
        settings: ServiceSettings,
        store: Arc<dyn OtpStore>,
        sms: Arc<dyn CodeSender>,
        clock: Arc<dyn Clock>,
        secrets: Arc<SecretCache>,
        challenge: Option<Arc<dyn BotChallenge>>,
    ) -> Self {
        let (delivery, metrics) = (None, Arc::new(NoMetrics));
        Self { settings: Arc::new(settings), store, sms, clock, secrets, challenge, delivery, metrics }
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// Whether a send needs a bot challenge token.
    pub fn requires_challenge(&self) -> bool {
        self.challenge.is_some()
    }

    /// Sends a new code to `phone` on `channel`, if the channel is offered and the
    /// challenge and the limits allow it. Every channel runs the same checks and counts
    /// toward the same limits.
    pub async fn send(
        &self,
        phone: E164Phone,
        channel: Channel,
        locale: Option<&str>,
        caller: Caller<'_>,
        captcha_token: Option<&str>,
    ) -> Result<SendAccepted, ApiError> {
        self.check_channel(channel)?;
        if !self.settings.number_types.allows(&phone) {
            tracing::info!(
                event = "send_number_type_refused",
                phone = %phone.masked(),
                number_type = phone.number_type().name(),
                "send refused: number type not served"
            );
            return Err(ApiError::InvalidPhone);
        }
        if !self.settings.allowed_countries.allows(&phone) {
            tracing::info!(
                event = "send_country_refused",
                phone = %phone.masked(),
                country = phone.region(),
                "send refused: country not allowed"
            );
            return Err(ApiError::CountryNotAllowed);
        }
        self.check_challenge(caller, captcha_token).await?;
        let secrets = self.secrets.current().await.map_err(|_| ApiError::ServiceUnavailable)?;
        let pepper = Pepper::new(secrets.code_pepper.expose_secret().as_bytes());
        let test_numbers = self.test_numbers(&secrets)?;
        let test_code = test_numbers.code_for(&phone);
        let code = test_code.cloned().unwrap_or_else(|| OtpCode::generate(self.settings.code_length));
        let hash = pepper.hash_code(phone.as_str(), &code);
        let number_key = pepper.number_key(phone.as_str());
        let client_key = pepper.client_key(caller.client);
        // Only with the per-range limit on: off, the store reads and writes no range record.
        let range_key =
            self.settings.policy.per_range.map(|_| pepper.range_key(phone.as_str(), self.settings.range_digits));
        let subjects = SendSubjects {
            number: &number_key,
            client: &client_key,
            range: range_key.as_ref(),
            country: phone.region(),
        };
        let now = self.clock.now();

        let decision = self
            .store
            .record_send(&subjects, hash, channel, &self.settings.policy, now)
            .await
            .map_err(store_failure)?;
        let expires_at = match decision {
            SendDecision::Allowed { expires_at, .. } => expires_at,
            SendDecision::RateLimited { retry_after_seconds, scope, paused } => {
                if let Some(trip) = paused {
                    tracing::warn!(
                        event = "country_paused",
                        country = phone.region(),
                        sends = trip.sends,
                        approvals = trip.approvals,
                        until = %trip.until,
                        "conversion guard: too few of the country's codes are approved; sends to it are paused"
                    );
                }
                tracing::info!(
                    event = "send_rate_limited",
                    phone = %phone.masked(),
                    channel = channel.as_str(),
                    country = phone.region(),
                    scope = scope.as_str(),
                    retry_after_seconds,
                    "send refused: rate limited"
                );
                return Err(ApiError::RateLimited { retry_after_seconds });
            }
        };

        if test_code.is_some() {
            // Every limit applied above; the operator's test number is never texted.
            tracing::info!(
                event = "test_number",
                phone = %phone.masked(),
                channel = channel.as_str(),
                "test number: code set, nothing sent"
            );
            return Ok(self.accepted(phone, channel, expires_at));
        }
        let content = match channel {
            Channel::Sms => {
                let ttl_minutes = ttl_minutes(self.settings.policy.code_ttl);
                CodeContent::Sms {
                    body: render_sms(locale, &code, ttl_minutes, self.settings.webotp_domain.as_deref()),
                }
            }
            Channel::Voice => CodeContent::Voice(voice_script(locale, &code)),
            Channel::Whatsapp => CodeContent::Whatsapp(whatsapp_template(locale, &code)),
        };
        let message = CodeMessage { to: phone.as_str().to_owned(), content };
        let sent = self.sms.send(&message).await;
        if let Err(error) = &sent {
            // No usable code may outlive a failed SMS; the send still counts toward the limits.
            if let Err(store_error) = self.store.withdraw_code(&number_key, &hash, now).await {
                tracing::error!(phone = %phone.masked(), error = %store_error, "could not withdraw the code of a failed SMS");
            }
            // `sms_failed` (the provider failed us: the alarm counts these) is kept apart from
            // `sms_refused` (the provider refused this number for good), which any caller can
            // cause at will and which must not page anyone.
            if let DeliveryError::Failed(_) = error {
                tracing::warn!(
                    event = "sms_failed",
                    phone = %phone.masked(),
                    channel = channel.as_str(),
                    %error,
                    "code not sent"
                );
            } else {
                tracing::info!(
                    event = "sms_refused",
                    phone = %phone.masked(),
                    channel = channel.as_str(),
                    %error,
                    "code not sent"
                );
            }
            return Err(match error {
                DeliveryError::InvalidNumber => ApiError::InvalidPhone,
                DeliveryError::Unreachable => ApiError::PhoneUnreachable,
                DeliveryError::CountryBlocked => ApiError::CountryNotAllowed,
                DeliveryError::Failed(_) => ApiError::SmsFailed,
            });
        }
        if let Ok(receipt) = sent {
            self.track_sent(receipt, &phone, channel, now).await;
        }
        tracing::info!(
            event = "sms_sent",
            phone = %phone.masked(),
            channel = channel.as_str(),
            country = phone.region(),
            %expires_at,
            "code sent"
        );
        Ok(self.accepted(phone, channel, expires_at))
    }

    /// The operator's test number that `raw` names, if any (it may be fictional, no valid
    /// number). While the secrets cannot be read, none: the number is then answered as the
    /// invalid number it is, as it would be without test numbers.
    pub async fn find_test_number(&self, raw: &str) -> Option<E164Phone> {
        let secrets = self.secrets.current().await.ok()?;
        self.test_numbers(&secrets).ok()?.find(raw)
    }

    /// The test numbers the secrets hold. The cache already checked them with this code
    /// length when it loaded them, so a failure here is two lengths disagreeing: answered
    /// as unavailable rather than as a number without its fixed code.
    fn test_numbers(&self, secrets: &Secrets) -> Result<TestNumbers, ApiError> {
        let Some(list) = &secrets.test_numbers else { return Ok(TestNumbers::default()) };
        TestNumbers::parse(list.expose_secret(), self.settings.code_length).map_err(|reason| {
            tracing::error!(event = "secrets_unusable", %reason, "the test numbers do not parse");
            ApiError::ServiceUnavailable
        })
    }

    fn accepted(&self, to: E164Phone, channel: Channel, expires_at: DateTime<Utc>) -> SendAccepted {
        let resend_after_seconds = u64::try_from(self.settings.policy.resend_cooldown.num_seconds()).unwrap_or(0);
        SendAccepted { to, channel, expires_at, resend_after_seconds }
    }

    /// `channel` is one of those offered (`OTP_CHANNELS`).
    pub fn check_channel(&self, channel: Channel) -> Result<(), ApiError> {
        if self.settings.channels.contains(channel) {
            return Ok(());
        }
        tracing::info!(event = "send_channel_refused", channel = channel.as_str(), "send refused: channel not offered");
        Err(ApiError::ChannelNotAllowed { channels: self.settings.channels.clone() })
    }

    /// The bot challenge, before anything is recorded or sent.
    async fn check_challenge(&self, caller: Caller<'_>, token: Option<&str>) -> Result<(), ApiError> {
        let Some(challenge) = &self.challenge else { return Ok(()) };
        let token = token.map(str::trim).filter(|t| !t.is_empty()).ok_or(ApiError::CaptchaRequired)?;
        // Without a known address the provider gets none; API Gateway always gives one.
        let ip = caller.ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        match challenge.check(token, ip).await {
            Ok(()) => Ok(()),
            Err(ChallengeError::Rejected { reasons }) => {
                tracing::info!(event = "captcha_failed", ?reasons, "send refused: bot challenge failed");
                Err(ApiError::CaptchaFailed)
            }
            Err(ChallengeError::Unavailable(reason)) => {
                tracing::error!(event = "captcha_unavailable", %reason, "the bot challenge provider failed");
                Err(ApiError::ServiceUnavailable)
            }
        }
    }

    /// Judges `code` for `phone`; on a match, issues a session token.
    pub async fn verify(&self, phone: E164Phone, code: OtpCode, caller: Caller<'_>) -> Result<Approval, ApiError> {
        let secrets = self.secrets.current().await.map_err(|_| ApiError::ServiceUnavailable)?;
        // Before the code is judged, so that no approval is spent on a token that cannot be
        // signed. Where codes are verified the cache loads no secrets without the keys; a
        // process that only sends has none (it may read none).
        let Some(keys) = secrets.token_keys.clone() else {
            tracing::error!(event = "secrets_unusable", "no token signing keys loaded: this process signs no tokens");
            return Err(ApiError::ServiceUnavailable);
        };
        let pepper = Pepper::new(secrets.code_pepper.expose_secret().as_bytes());
        let hash = pepper.hash_code(phone.as_str(), &code);
        let number_key = pepper.number_key(phone.as_str());
        let client_key = pepper.client_key(caller.client);
        let subjects = VerifySubjects { number: &number_key, client: &client_key, country: phone.region() };
        let now = self.clock.now();
        let outcome = self
            .store
            .judge_attempt(&subjects, &hash, &self.settings.verify_policy, now)
            .await
            .map_err(store_failure)?;
        tracing::info!(event = "verify_judged", phone = %phone.masked(), ?outcome, "verify judged");
        match outcome {
            VerifyOutcome::Approved { channel } => {
                self.metrics.emit(&MetricEvent::Approved { country: phone.region(), channel });
                tracing::info!(
                    event = "verify_approved",
                    phone = %phone.masked(),
                    channel = channel.as_str(),
                    country = phone.region(),
                    "approved"
                );
                let issuer = SessionTokenIssuer::new(
                    keys,
                    self.settings.token_issuer.clone(),
                    self.settings.token_audience.clone(),
                    self.settings.token_ttl,
                );
                let token = issuer.issue(&phone, channel.auth_method(), now).map_err(|error| {
                    tracing::error!(%error, "session token not issued");
                    ApiError::Internal
                })?;
                Ok(Approval { to: phone, token })
            }
            VerifyOutcome::Incorrect { attempts_remaining } => Err(ApiError::IncorrectCode { attempts_remaining }),
            VerifyOutcome::AttemptsExhausted | VerifyOutcome::NumberLocked => Err(ApiError::TooManyAttempts),
            VerifyOutcome::NoPendingCode => Err(ApiError::CodeExpired),
            VerifyOutcome::RateLimited { retry_after_seconds } => {
                tracing::info!(
                    event = "verify_rate_limited",
                    scope = "client",
                    retry_after_seconds,
                    "verify refused: rate limited"
                );
                Err(ApiError::RateLimited { retry_after_seconds })
            }
        }
    }
}

impl OtpService {
    /// The public keys the session tokens may be signed with (every configured one).
    pub async fn jwk_set(&self) -> Result<JwkSet, ApiError> {
        let secrets = self.secrets.current().await.map_err(|_| ApiError::ServiceUnavailable)?;
        secrets.token_keys.as_ref().map(|keys| keys.jwk_set()).ok_or(ApiError::ServiceUnavailable)
    }
}

fn store_failure(error: StoreError) -> ApiError {
    tracing::error!(%error, "store failed");
    ApiError::ServiceUnavailable
}
