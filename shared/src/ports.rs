//! The service's ports: what it needs from the outside world, one small trait each.
//! Adapters in `adapters/` and `secrets/` implement them; the service uses only these.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::domain::delivery::{DeliveryRecord, DeliveryState, StatusApplied, StatusReport};
use crate::domain::message::{VoiceScript, WhatsappTemplate};
use crate::domain::token::TokenKeys;
use crate::domain::{Asker, Channel, CodeHash, SendDecision, SendPolicy, SubjectKey, VerifyOutcome, VerifyPolicy};

/// The store of pending codes and limit counters.
///
/// Each method is one atomic step: however concurrent calls interleave, a code is
/// approved at most once, every wrong attempt is counted, and no limit is exceeded.
#[async_trait]
pub trait OtpStore: Send + Sync {
    /// Applies `policy` to a send of `code` to `subjects.number` at `now`, and if it is
    /// allowed records it everywhere it counts and makes `code` the number's pending code.
    /// A refusal records nothing (but a pause of the country that the decision calls for).
    /// The code is kept with its `channel`, which an approval answers.
    async fn record_send(
        &self,
        subjects: &SendSubjects<'_>,
        code: CodeHash,
        channel: Channel,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> Result<SendDecision, StoreError>;

    /// Judges one verify attempt of `candidate` for `subjects.number` (in the lane of
    /// `subjects.device`) at `now`; an approval is counted for its prefix (the conversion
    /// guard's figures, once per number in a while) in the same step, without reading
    /// anything more.
    async fn judge_attempt(
        &self,
        subjects: &VerifySubjects<'_>,
        candidate: &CodeHash,
        policy: &VerifyPolicy,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError>;

    /// Counts one SMS sent at `sent_at` to a number of `prefix` as not reaching the phone
    /// for a carrier's reason, in the prefix's tally of that hour (blindly: no read, no
    /// conflict), so the conversion guard leaves it out of its sends. A send older than the
    /// tally's two hours changes nothing.
    async fn count_undelivered(
        &self,
        prefix: &str,
        sent_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Removes `number`'s pending code if it is still `code` created at `created_at` (its
    /// SMS failed). The send stays counted toward the limits.
    async fn withdraw_code(
        &self,
        number: &SubjectKey,
        code: &CodeHash,
        created_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Whom a send concerns: the keys of its records, the number's country and prefix, and
/// what the request carries that the rules tell apart.
#[derive(Debug, Clone, Copy)]
pub struct SendSubjects<'a> {
    pub number: &'a SubjectKey,
    pub client: &'a SubjectKey,
    /// The number's range, when the per-range limit is on.
    pub range: Option<&'a SubjectKey>,
    /// ISO 3166-1 alpha-2 region of the number, or `001` for non-geographic numbers.
    pub country: &'a str,
    /// The number's guard prefix (`E164Phone::prefix`).
    pub prefix: &'a str,
    /// The device a valid device token names, as its key.
    pub device: Option<&'a SubjectKey>,
    /// The request's bot challenge was solved.
    pub challenged: bool,
}

impl SendSubjects<'_> {
    pub fn asker(&self) -> Asker<'_> {
        Asker { country: self.country, prefix: self.prefix, device: self.device, challenged: self.challenged }
    }
}

/// Whom a verify concerns.
#[derive(Debug, Clone, Copy)]
pub struct VerifySubjects<'a> {
    pub number: &'a SubjectKey,
    pub client: &'a SubjectKey,
    pub country: &'a str,
    pub prefix: &'a str,
    pub device: Option<&'a SubjectKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Concurrent writers kept conflicting after the bounded retries.
    #[error("store contention persisted after retries")]
    Contention,
    #[error("store error: {0}")]
    Other(String),
}

/// One code to deliver: to whom, and what, on its channel.
#[derive(Clone)]
pub struct CodeMessage {
    /// E.164 destination.
    pub to: String,
    pub content: CodeContent,
}

/// What reaches the phone, per channel: the words are the domain's (`domain::message`),
/// the provider's shapes (TwiML, a Content template's variables) the adapter's.
#[derive(Clone, PartialEq, Eq)]
pub enum CodeContent {
    Sms {
        body: String,
    },
    /// A call reading out this script.
    Voice(VoiceScript),
    /// The approved WhatsApp authentication template, filled in.
    Whatsapp(WhatsappTemplate),
}

impl CodeMessage {
    pub fn channel(&self) -> Channel {
        match self.content {
            CodeContent::Sms { .. } => Channel::Sms,
            CodeContent::Voice(_) => Channel::Voice,
            CodeContent::Whatsapp(_) => Channel::Whatsapp,
        }
    }
}

impl std::fmt::Debug for CodeMessage {
    // The content holds the code, `to` the whole number: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeMessage").field("channel", &self.channel()).finish_non_exhaustive()
    }
}

/// Delivers codes: a text, a call or a WhatsApp message.
#[async_trait]
pub trait CodeSender: Send + Sync {
    async fn send(&self, message: &CodeMessage) -> Result<ProviderReceipt, DeliveryError>;
}

/// What the provider answered when it took a code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderReceipt {
    /// The message's or call's sid, which its status callbacks name (none: a sender
    /// without callbacks, such as the outbox, or an answer cut short).
    pub sid: Option<String>,
}

/// The delivery records: what became of each message or call sent, by the keyed hash of
/// its sid (`Pepper::message_key`). Each method is one atomic step.
#[async_trait]
pub trait DeliveryLog: Send + Sync {
    /// Records a message or call the provider took. A record already held is kept.
    async fn record_sent(&self, key: &SubjectKey, record: &DeliveryRecord) -> Result<(), StoreError>;

    /// Applies one status callback to `key`'s record at `now`: the state moves only
    /// forward, however callbacks repeat, race or arrive out of order; an unknown key
    /// changes nothing.
    async fn apply_status(
        &self,
        key: &SubjectKey,
        report: &StatusReport,
        now: DateTime<Utc>,
    ) -> Result<StatusApplied, StoreError>;
}

/// What happened, for the per-country metrics (CloudWatch's embedded metric format in
/// Lambda): the service says what, one adapter writes them.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricEvent<'a> {
    /// The provider took a code.
    Sent { country: &'a str, channel: Channel },
    /// A code was approved.
    Approved { country: &'a str, channel: Channel },
    /// A status callback moved a message to a final state (`latency`: send to delivery).
    Final { country: &'a str, channel: Channel, state: DeliveryState, latency: Option<chrono::TimeDelta> },
}

/// Where the metrics go.
pub trait Metrics: Send + Sync {
    fn emit(&self, event: &MetricEvent<'_>);
}

/// Why a code was not delivered, whatever the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The provider says this is not a valid number.
    #[error("the provider refused the number as invalid")]
    InvalidNumber,
    /// The provider will not deliver to this number on this channel (landline,
    /// unsubscribed, blocked, not on WhatsApp).
    #[error("the provider refused the number for good")]
    Unreachable,
    /// The provider does not send to this number's country (geo permissions).
    #[error("the provider does not send to this country")]
    CountryBlocked,
    /// Anything else, after any retries.
    #[error("provider failure: {0}")]
    Failed(String),
}

/// The time now. Injected everywhere, so limits and expiry are testable.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The service's secrets, whatever holds them: its own keys, and each adapter's values by
/// name ([`ProviderSecrets`]), which the adapter gives its own shape (Twilio's credentials
/// are `adapters::twilio::TwilioSecrets`), so a new provider adds no field here.
#[derive(Clone)]
pub struct Secrets {
    /// HMAC key of the device tokens (the session tokens are signed with `token_keys`).
    pub session_secret: SecretString,
    /// HMAC key of stored code hashes and store keys.
    pub code_pepper: SecretString,
    /// Test numbers and their fixed codes (`+E164=code`, comma-separated), as stored: a
    /// number and its code sign in, so the list is kept with the secrets, not the settings.
    pub test_numbers: Option<SecretString>,
    /// The session tokens' ES256 keys, parsed when the secrets are loaded (the first
    /// signs); verify-otp's alone.
    pub token_keys: Option<Arc<TokenKeys>>,
    /// The adapters' secrets as the source read them (Twilio's credentials, the bot
    /// challenge's secret, Firestore's service-account key).
    pub providers: ProviderSecrets,
}

/// A secret's name: under the secret store's prefix, and as the environment variable that
/// gives it locally (and overrides the store for a single value). `secrets::ALL` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretName {
    pub ssm: &'static str,
    pub env: &'static str,
}

/// The adapters' secret values, each under its [`SecretName`], as a source read them
/// (trimmed, none when blank): what each value means is its adapter's business.
#[derive(Clone, Default)]
pub struct ProviderSecrets(BTreeMap<SecretName, SecretString>);

impl ProviderSecrets {
    pub fn get(&self, name: SecretName) -> Option<&SecretString> {
        self.0.get(&name)
    }

    pub fn contains(&self, name: SecretName) -> bool {
        self.0.contains_key(&name)
    }

    pub fn insert(&mut self, name: SecretName, value: SecretString) {
        self.0.insert(name, value);
    }
}

impl std::fmt::Debug for ProviderSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys().map(|name| name.env)).finish()
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// Where secrets come from (SSM in AWS, the environment locally), and how every part
/// reads them: the service and the adapters hold the `secrets::SecretCache`, a source
/// whose load answers the secrets in use (read once per cold start and on refresh).
#[async_trait]
pub trait SecretSource: Send + Sync {
    async fn load(&self) -> Result<Arc<Secrets>, SecretError>;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    #[error("secret {0} is missing")]
    Missing(String),
    #[error("secret store unreachable: {0}")]
    Unreachable(String),
    /// Loaded, but not fit for use (too short, or two secrets that must differ are equal).
    #[error("secret not fit for use: {0}")]
    Unfit(String),
}

/// Checks the token of a bot challenge (Turnstile, hCaptcha, reCAPTCHA) with its
/// provider, server-side, before a send records or texts anything.
#[async_trait]
pub trait BotChallenge: Send + Sync {
    /// `Ok` when the provider vouches for `token`, solved by the client at `client_ip`
    /// on one of our hostnames (and, where the provider scores it, well enough).
    async fn check(&self, token: &str, client_ip: std::net::IpAddr) -> Result<(), ChallengeError>;
}

/// Why a challenge token was not accepted. Neither variant ever holds the token or
/// the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The provider said no, or its answer failed our checks (hostname, action,
    /// score): the client's fault, `403 captcha_failed`.
    #[error("bot challenge rejected: {}", reasons.join(", "))]
    Rejected { reasons: Vec<String> },
    /// No usable answer: unreachable, timed out, 5xx, unreadable, or our own
    /// configuration refused (a wrong secret): not the client's fault, `503`.
    #[error("bot challenge provider unavailable: {0}")]
    Unavailable(String),
}
