//! The use cases: send a code, verify a code. Each takes parsed domain values, runs the
//! rules over the ports, and answers with a domain result or its own error: what happened,
//! in the use case's words (`SendError`, `VerifyError`). The edge maps each to the
//! contract's status and code in one place (`error.rs`, `From<SendError> for ApiError`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use crate::config::{ChallengeWhen, ServiceSettings, TestNumbers};
use crate::domain::device::{DeviceTokens, IssuedDeviceToken};
use crate::domain::message::{render_sms, ttl_minutes, voice_script, whatsapp_template};
use crate::domain::token::JwkSet;
use crate::domain::{
    Channel, ChannelSet, E164Phone, OtpCode, Pepper, SendDecision, SessionToken, SessionTokenIssuer, VerifyOutcome,
};
use crate::ports::{
    BotChallenge, ChallengeError, Clock, CodeContent, CodeMessage, CodeSender, DeliveryError, MetricEvent, Metrics,
    OtpStore, SecretSource, Secrets, SendSubjects, StoreError, VerifySubjects,
};

mod delivery;

pub use delivery::{DeliveryTracking, NoMetrics, StatusCallback, StatusError};

/// Why a send did not go out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The channel is not among those offered (`OTP_CHANNELS`).
    #[error("channel not offered")]
    ChannelNotOffered { offered: ChannelSet },
    /// The number is valid, but of a type not served (`OTP_NUMBER_TYPES`).
    #[error("number type not served")]
    NumberTypeNotServed,
    /// The number's country is not served (`OTP_ALLOWED_COUNTRIES`), or the provider does
    /// not send there.
    #[error("country not served")]
    CountryNotServed,
    /// The send needs a solved bot challenge.
    #[error("bot challenge required")]
    ChallengeRequired,
    /// The bot challenge's provider did not vouch for the token.
    #[error("bot challenge rejected")]
    ChallengeRejected,
    /// A limit refused it; nothing was recorded.
    #[error("rate limited for {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    /// The provider says the number is not valid.
    #[error("the provider refused the number")]
    InvalidNumber,
    /// The provider will not reach the number on this channel.
    #[error("the number cannot be reached on this channel")]
    Unreachable,
    /// The provider failed us; the code was withdrawn.
    #[error("delivery failed")]
    DeliveryFailed,
    /// A dependency (the secrets, the store, the challenge's provider) failed.
    #[error("unavailable")]
    Unavailable,
}

/// Why a verify approved nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("incorrect code, {attempts_remaining} attempts left")]
    Incorrect { attempts_remaining: u32 },
    /// The code's tries or the lane's failed-attempt cap are spent.
    #[error("too many attempts")]
    TooManyAttempts,
    /// No code is pending: never sent, expired, used or voided.
    #[error("no pending code")]
    NoPendingCode,
    #[error("rate limited for {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
    #[error("unavailable")]
    Unavailable,
    /// The session token could not be signed.
    #[error("internal error")]
    Internal,
}

/// A dependency failed (logged where it failed): the use case answers it as unavailable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unavailable")]
pub struct Unavailable;

impl From<Unavailable> for SendError {
    fn from(_: Unavailable) -> Self {
        Self::Unavailable
    }
}

impl From<Unavailable> for VerifyError {
    fn from(_: Unavailable) -> Self {
        Self::Unavailable
    }
}

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
    /// The device's token: renewed for the device that verified with one, new otherwise.
    pub device_token: IssuedDeviceToken,
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
    /// The secrets in use, read through the `secrets::SecretCache`.
    secrets: Arc<dyn SecretSource>,
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
        secrets: Arc<dyn SecretSource>,
        challenge: Option<Arc<dyn BotChallenge>>,
    ) -> Self {
        let (delivery, metrics) = (None, Arc::new(NoMetrics));
        Self { settings: Arc::new(settings), store, sms, clock, secrets, challenge, delivery, metrics }
    }

    pub fn settings(&self) -> &ServiceSettings {
        &self.settings
    }

    /// Whether every send needs a bot challenge token (`OTP_CAPTCHA_WHEN=always`); under
    /// attack only, the store's step asks for it.
    pub fn requires_challenge(&self) -> bool {
        self.challenge.is_some() && self.settings.captcha_when == ChallengeWhen::Always
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
        device_token: Option<&str>,
    ) -> Result<SendAccepted, SendError> {
        self.check_channel(channel)?;
        if !self.settings.number_types.allows(&phone) {
            tracing::info!(
                event = "send_number_type_refused",
                phone = %phone.masked(),
                number_type = phone.number_type().name(),
                "send refused: number type not served"
            );
            return Err(SendError::NumberTypeNotServed);
        }
        if !self.settings.allowed_countries.allows(&phone) {
            tracing::info!(
                event = "send_country_refused",
                phone = %phone.masked(),
                country = phone.region(),
                "send refused: country not allowed"
            );
            return Err(SendError::CountryNotServed);
        }
        let challenged = self.check_challenge(caller, captcha_token).await?;
        let secrets = self.secrets.load().await.map_err(|_| Unavailable)?;
        let pepper = Pepper::new(secrets.code_pepper.expose_secret().as_bytes());
        let now = self.clock.now();
        let device_key = device_tokens(&secrets).read(&phone, device_token, now).map(|id| pepper.device_key(&id));
        let prefix = phone.prefix(self.settings.guard_prefix_digits);
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
            prefix: &prefix,
            device: device_key.as_ref(),
            challenged,
        };

        let decision = self
            .store
            .record_send(&subjects, hash, channel, &self.settings.policy, now)
            .await
            .map_err(store_failure)?;
        let paused = match &decision {
            SendDecision::Allowed { .. } => None,
            SendDecision::RateLimited { paused, .. } | SendDecision::ChallengeRequired { paused } => *paused,
        };
        if let Some(trip) = paused {
            tracing::warn!(
                event = "prefix_paused",
                country = phone.region(),
                prefix = %prefix,
                sends = trip.sends,
                approvals = trip.approvals,
                until = %trip.until,
                "conversion guard: too few of the prefix's codes are approved; sends to its new numbers are paused"
            );
        }
        let expires_at = match decision {
            SendDecision::Allowed { expires_at, .. } => expires_at,
            SendDecision::ChallengeRequired { .. } => {
                tracing::info!(
                    event = "send_challenge_required",
                    phone = %phone.masked(),
                    channel = channel.as_str(),
                    country = phone.region(),
                    "send refused until the bot challenge is solved: the number is new and its prefix or a cap is under attack"
                );
                return Err(SendError::ChallengeRequired);
            }
            SendDecision::RateLimited { retry_after_seconds, scope, .. } => {
                tracing::info!(
                    event = "send_rate_limited",
                    phone = %phone.masked(),
                    channel = channel.as_str(),
                    country = phone.region(),
                    scope = scope.as_str(),
                    retry_after_seconds,
                    "send refused: rate limited"
                );
                return Err(SendError::RateLimited { retry_after_seconds });
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
                DeliveryError::InvalidNumber => SendError::InvalidNumber,
                DeliveryError::Unreachable => SendError::Unreachable,
                DeliveryError::CountryBlocked => SendError::CountryNotServed,
                DeliveryError::Failed(_) => SendError::DeliveryFailed,
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
        let secrets = self.secrets.load().await.ok()?;
        self.test_numbers(&secrets).ok()?.find(raw)
    }

    /// The test numbers the secrets hold. The cache already checked them with this code
    /// length when it loaded them, so a failure here is two lengths disagreeing: answered
    /// as unavailable rather than as a number without its fixed code.
    fn test_numbers(&self, secrets: &Secrets) -> Result<TestNumbers, Unavailable> {
        let Some(list) = &secrets.test_numbers else { return Ok(TestNumbers::default()) };
        TestNumbers::parse(list.expose_secret(), self.settings.code_length).map_err(|reason| {
            tracing::error!(event = "secrets_unusable", %reason, "the test numbers do not parse");
            Unavailable
        })
    }

    fn accepted(&self, to: E164Phone, channel: Channel, expires_at: DateTime<Utc>) -> SendAccepted {
        let resend_after_seconds = u64::try_from(self.settings.policy.resend_cooldown.num_seconds()).unwrap_or(0);
        SendAccepted { to, channel, expires_at, resend_after_seconds }
    }

    /// `channel` is one of those offered (`OTP_CHANNELS`).
    pub fn check_channel(&self, channel: Channel) -> Result<(), SendError> {
        if self.settings.channels.contains(channel) {
            return Ok(());
        }
        tracing::info!(event = "send_channel_refused", channel = channel.as_str(), "send refused: channel not offered");
        Err(SendError::ChannelNotOffered { offered: self.settings.channels.clone() })
    }

    /// The bot challenge, before anything is recorded or sent: whether the request solved
    /// one. Always asked for, a missing token is `captcha_required`; under attack only, a
    /// missing token is no challenge solved (the store's step tells whether one is needed),
    /// and a given one is checked.
    async fn check_challenge(&self, caller: Caller<'_>, token: Option<&str>) -> Result<bool, SendError> {
        let Some(challenge) = &self.challenge else { return Ok(false) };
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        let token = match (token, self.settings.captcha_when) {
            (Some(token), _) => token,
            (None, ChallengeWhen::Always) => return Err(SendError::ChallengeRequired),
            (None, ChallengeWhen::UnderAttack) => return Ok(false),
        };
        // Without a known address the provider gets none; API Gateway always gives one.
        let ip = caller.ip.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        match challenge.check(token, ip).await {
            Ok(()) => Ok(true),
            Err(ChallengeError::Rejected { reasons }) => {
                tracing::info!(event = "captcha_failed", ?reasons, "send refused: bot challenge failed");
                Err(SendError::ChallengeRejected)
            }
            Err(ChallengeError::Unavailable(reason)) => {
                tracing::error!(event = "captcha_unavailable", %reason, "the bot challenge provider failed");
                Err(SendError::Unavailable)
            }
        }
    }

    /// Judges `code` for `phone`, in the lane of the device `device_token` names (if it is
    /// valid for the number); on a match, issues a session token and the device's token.
    pub async fn verify(
        &self,
        phone: E164Phone,
        code: OtpCode,
        caller: Caller<'_>,
        device_token: Option<&str>,
    ) -> Result<Approval, VerifyError> {
        let secrets = self.secrets.load().await.map_err(|_| Unavailable)?;
        // Before the code is judged, so that no approval is spent on a token that cannot be
        // signed. Where codes are verified the cache loads no secrets without the keys; a
        // process that only sends has none (it may read none).
        let Some(keys) = secrets.token_keys.clone() else {
            tracing::error!(event = "secrets_unusable", "no token signing keys loaded: this process signs no tokens");
            return Err(VerifyError::Unavailable);
        };
        let pepper = Pepper::new(secrets.code_pepper.expose_secret().as_bytes());
        let hash = pepper.hash_code(phone.as_str(), &code);
        let number_key = pepper.number_key(phone.as_str());
        let client_key = pepper.client_key(caller.client);
        let now = self.clock.now();
        let tokens = device_tokens(&secrets);
        // A token that expired less than a code's life ago may still hold, in its lane, the
        // code sent while it was valid: that code is judged there. Where its lane holds no
        // code, the token is ignored as any expired one, and the verify judged token-less.
        let read = tokens
            .read_signed(&phone, device_token)
            .filter(|read| read.is_valid_at(now - self.settings.policy.code_ttl));
        let lingering = read.as_ref().is_some_and(|read| !read.is_valid_at(now));
        let mut device = read.map(|read| read.device);
        let prefix = phone.prefix(self.settings.guard_prefix_digits);
        let device_key = device.as_ref().map(|id| pepper.device_key(id));
        let mut subjects = VerifySubjects {
            number: &number_key,
            client: &client_key,
            country: phone.region(),
            prefix: &prefix,
            device: device_key.as_ref(),
        };
        let policy = &self.settings.verify_policy;
        let mut outcome = self.store.judge_attempt(&subjects, &hash, policy, now).await.map_err(store_failure)?;
        if lingering && outcome == VerifyOutcome::NoPendingCode {
            (device, subjects.device) = (None, None);
            outcome = self.store.judge_attempt(&subjects, &hash, policy, now).await.map_err(store_failure)?;
        }
        tracing::info!(event = "verify_judged", phone = %phone.masked(), ?outcome, "verify judged");
        match outcome {
            VerifyOutcome::Approved { channel } => {
                self.metrics.emit(&MetricEvent::Approved { country: phone.region(), channel });
                tracing::info!(
                    event = "verify_approved",
                    phone = %phone.masked(),
                    channel = channel.as_str(),
                    country = phone.region(),
                    device_token = device.is_some(),
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
                    VerifyError::Internal
                })?;
                let expires = now + self.settings.device_token_ttl;
                let device_token = match device {
                    Some(device) => tokens.issue_for(&phone, device, expires),
                    None => tokens.issue(&phone, expires),
                };
                Ok(Approval { to: phone, token, device_token })
            }
            VerifyOutcome::Incorrect { attempts_remaining } => Err(VerifyError::Incorrect { attempts_remaining }),
            VerifyOutcome::AttemptsExhausted | VerifyOutcome::NumberLocked => Err(VerifyError::TooManyAttempts),
            VerifyOutcome::NoPendingCode => Err(VerifyError::NoPendingCode),
            VerifyOutcome::RateLimited { retry_after_seconds } => {
                tracing::info!(
                    event = "verify_rate_limited",
                    scope = "client",
                    retry_after_seconds,
                    "verify refused: rate limited"
                );
                Err(VerifyError::RateLimited { retry_after_seconds })
            }
        }
    }
}

impl OtpService {
    /// The public keys the session tokens may be signed with (every configured one).
    pub async fn jwk_set(&self) -> Result<JwkSet, Unavailable> {
        let secrets = self.secrets.load().await.map_err(|_| Unavailable)?;
        secrets.token_keys.as_ref().map(|keys| keys.jwk_set()).ok_or(Unavailable)
    }
}

/// The device tokens' issuer and reader, keyed with the session secret.
fn device_tokens(secrets: &Secrets) -> DeviceTokens {
    DeviceTokens::new(secrets.session_secret.expose_secret().as_bytes())
}

fn store_failure(error: StoreError) -> Unavailable {
    tracing::error!(%error, "store failed");
    Unavailable
}
