//! The production sender: Twilio's Messages API (SMS, and WhatsApp with an approved
//! Content template) and its Calls API (a call reading the code out, TwiML inline) over
//! HTTPS (reqwest, rustls). A call to Twilio is retried only where Twilio certainly created no message (the connection
//! failed before the request went out, or Twilio's 429 rate-limit refusal), with capped
//! exponential backoff and jitter, bounded in count and in total time. Any call that may
//! have created one (a 5xx, a timeout or a cut connection after the request went out) is
//! the send's last: the send counted one unit of the SMS budgets, so it may cost Twilio
//! one message, never two. Twilio's refusals map to `DeliveryError` at once (docs/PROVIDERS.md
//! has the table and the reasons).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::{EndpointUrl, WhatsappSender};
use crate::domain::message::VoiceScript;
use crate::ports::{
    CodeContent, CodeMessage, CodeSender, DeliveryError, ProviderReceipt, ProviderSecrets, SecretSource, Secrets,
};
use crate::secrets::{TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM, TWILIO_MESSAGING_SERVICE_SID};

/// Twilio's production API.
pub const DEFAULT_API_BASE: &str = "https://api.twilio.com";

/// How transient failures are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in all, the first included.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// Largest backoff between two calls.
    pub max_delay: Duration,
    /// Time from the first call after which no new call starts, and which no call
    /// outlives: the send answers within it whatever Twilio does.
    pub budget: Duration,
}

impl RetryPolicy {
    /// The shortest and the longest pause before call `attempt + 1`: `base * 2^(attempt-1)`,
    /// capped at `max_delay`, of which a random part up to half is dropped ("equal
    /// jitter"), so that many functions failing together do not retry in step.
    pub fn delay_bounds(&self, attempt: u32) -> (Duration, Duration) {
        let exponent = attempt.saturating_sub(1).min(16);
        let full = self.base_delay.saturating_mul(1 << exponent).min(self.max_delay);
        (full / 2, full)
    }

    /// The most calls one send can make, whatever the jitter draws and however fast Twilio
    /// answers: call `n + 1` starts only if the pauses before it, each at least its lower
    /// bound, end inside the budget.
    pub fn max_calls(&self) -> u32 {
        let mut calls = 1;
        let mut least_elapsed = Duration::ZERO;
        while calls < self.max_attempts {
            least_elapsed += self.delay_bounds(calls).0;
            if least_elapsed >= self.budget {
                break;
            }
            calls += 1;
        }
        calls
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Three calls within 8 s: well inside API Gateway's 29 s and a 10 s function
        // timeout, and a user waiting for an SMS rather gets an error than a hang.
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(2),
            budget: Duration::from_secs(8),
        }
    }
}

/// Where and how the sender calls Twilio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioConfig {
    /// `https://api.twilio.com`, or a fake's base URL (`TWILIO_API_BASE`).
    pub api_base: String,
    pub connect_timeout: Duration,
    /// Longest single call.
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
    /// The WhatsApp sender and template, where WhatsApp is offered.
    pub whatsapp: Option<WhatsappSender>,
    /// The `StatusCallback` URL every message and call names (`OTP_STATUS_CALLBACK_URL`).
    pub status_callback: Option<String>,
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            api_base: DEFAULT_API_BASE.into(),
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(4),
            retry: RetryPolicy::default(),
            whatsapp: None,
            status_callback: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Twilio setting: {0}")]
pub struct TwilioConfigError(String);

impl TwilioConfig {
    /// Twilio at `api_base` (`TWILIO_API_BASE`, parsed with the settings: `https://`, or
    /// `http://` to this machine, as the auth token travels in every call), or Twilio's
    /// own API when `None`.
    pub fn new(api_base: Option<&EndpointUrl>) -> Self {
        let api_base = api_base.map_or_else(|| DEFAULT_API_BASE.to_owned(), |base| base.base().to_owned());
        Self { api_base, ..Self::default() }
    }

    /// With the WhatsApp sender of the settings (`TWILIO_WHATSAPP_FROM`, `TWILIO_WHATSAPP_CONTENT_SID`).
    pub fn with_whatsapp(self, whatsapp: Option<WhatsappSender>) -> Self {
        Self { whatsapp, ..self }
    }

    /// With the status callback URL of the settings (`OTP_STATUS_CALLBACK_URL`).
    pub fn with_status_callback(self, url: Option<&EndpointUrl>) -> Self {
        Self { status_callback: url.map(|url| url.as_str().to_owned()), ..self }
    }
}

/// Sends SMS through Twilio with the credentials `secrets` give at each send (the secret
/// cache), so a rotated auth token is picked up without a redeploy.
pub struct TwilioSender {
    client: reqwest::Client,
    config: TwilioConfig,
    secrets: Arc<dyn SecretSource>,
}

impl TwilioSender {
    /// Builds the one HTTP client of this cold start.
    pub fn new(config: TwilioConfig, secrets: Arc<dyn SecretSource>) -> Result<Self, TwilioConfigError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.attempt_timeout)
            .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| TwilioConfigError(format!("HTTP client: {error}")))?;
        Ok(Self { client, config, secrets })
    }

    /// Opens the connection to Twilio now (DNS, TCP, TLS) into the client's pool and
    /// checks the credentials, with one cheap authenticated call that sends nothing
    /// (`GET /2010-04-01/Accounts/{AccountSid}.json`): done at start-up, so that the first
    /// send does not pay the handshake at an invocation's CPU share. Never retried and
    /// never fatal: the outcome is logged, and a failure leaves the first send to connect.
    pub async fn warm(&self) -> Result<(), DeliveryError> {
        let secrets = self.secrets.load().await.map_err(|_| DeliveryError::Failed("secrets unavailable".into()))?;
        let twilio = credentials(&secrets)?;
        let account_sid = twilio.account_sid.expose_secret();
        let url = format!("{}/2010-04-01/Accounts/{account_sid}.json", self.config.api_base);
        let request = self.client.get(&url).basic_auth(account_sid, Some(twilio.auth_token.expose_secret()));
        let outcome = match request.send().await {
            Err(error) => Err(DeliveryError::Failed(format!("no connection: {}", error.without_url()))),
            Ok(response) if response.status().is_success() => {
                // Read to the end, so the connection goes back to the pool.
                let _ = response.bytes().await;
                Ok(())
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                Err(DeliveryError::Failed(answer_text(status, error_code(&body))))
            }
        };
        match &outcome {
            Ok(()) => tracing::debug!(event = "twilio_warmed", "connected to Twilio; the credentials are accepted"),
            Err(error) => tracing::warn!(
                event = "twilio_warm_failed",
                %error,
                "could not reach Twilio or have the credentials accepted at start-up; sends will try"
            ),
        }
        outcome
    }
}

/// Twilio's credentials, as this adapter reads them from the service's secrets.
#[derive(Clone)]
pub struct TwilioSecrets {
    pub account_sid: SecretString,
    pub auth_token: SecretString,
    /// Who SMS come from; calls come from its number (`From` only: a Messaging Service
    /// places no calls).
    pub sender: TwilioSenderId,
}

/// Who the SMS comes from: a number (`From`) or a Messaging Service (`MessagingServiceSid`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TwilioSenderId {
    From(String),
    MessagingService(String),
}

impl std::fmt::Debug for TwilioSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSecrets").field("sender", &self.sender).finish_non_exhaustive()
    }
}

impl TwilioSecrets {
    /// The credentials `providers` hold, if whole: the account SID, the auth token and a
    /// sender (both senders given: the Messaging Service wins).
    pub fn from_providers(providers: &ProviderSecrets) -> Option<Self> {
        let value = |name| providers.get(name).map(|value: &SecretString| value.expose_secret().to_owned());
        let sender = value(TWILIO_MESSAGING_SERVICE_SID)
            .map(TwilioSenderId::MessagingService)
            .or_else(|| value(TWILIO_FROM).map(TwilioSenderId::From))?;
        Some(Self {
            account_sid: providers.get(TWILIO_ACCOUNT_SID)?.clone(),
            auth_token: providers.get(TWILIO_AUTH_TOKEN)?.clone(),
            sender,
        })
    }
}

/// The Twilio credentials of `secrets`, with the account SID checked for use in a URL.
fn credentials(secrets: &Secrets) -> Result<TwilioSecrets, DeliveryError> {
    let Some(twilio) = TwilioSecrets::from_providers(&secrets.providers) else {
        tracing::error!(
            event = "twilio_credentials_missing",
            "OTP_SMS=twilio but no Twilio credentials were loaded (account SID, auth token, sender)"
        );
        return Err(DeliveryError::Failed("no Twilio credentials".into()));
    };
    let account_sid = twilio.account_sid.expose_secret();
    // The SID goes into the URL path: refuse anything that could change the path.
    if account_sid.is_empty() || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        tracing::error!(event = "twilio_credentials_invalid", "the Twilio account SID is not alphanumeric");
        return Err(DeliveryError::Failed("malformed account SID".into()));
    }
    Ok(twilio)
}

/// Twilio's error body: `{"code": 21211, "message": "...", "more_info": "...", "status": 400}`.
#[derive(Debug, Deserialize)]
struct TwilioErrorBody {
    code: Option<u32>,
}

/// The part of the Message or Call resource worth logging (its SID names it in Twilio's console).
#[derive(Debug, Deserialize)]
struct CreatedMessage {
    sid: Option<String>,
    status: Option<String>,
}

/// What one call came to.
#[derive(Debug)]
enum CallOutcome {
    /// Accepted, with the sid of the message or call (none: its answer was unreadable).
    Sent(Option<String>),
    /// Worth another try, because Twilio certainly created no message: its 429 (code 20429),
    /// or no connection before the request went out. `retry_after` is Twilio's
    /// `Retry-After`, if it sent one.
    Transient { reason: String, retry_after: Option<Duration> },
    /// Final: no further call could succeed, or one might text a second time.
    Permanent(DeliveryError),
}

#[async_trait]
impl CodeSender for TwilioSender {
    async fn send(&self, message: &CodeMessage) -> Result<ProviderReceipt, DeliveryError> {
        let secrets = self.secrets.load().await.map_err(|_| DeliveryError::Failed("secrets unavailable".into()))?;
        let twilio = credentials(&secrets)?;
        let account_sid = twilio.account_sid.expose_secret();
        let (resource, mut form) = self.request_form(&twilio, message)?;
        if let Some(url) = &self.config.status_callback {
            form.push(("StatusCallback", url.clone()));
        }
        let url = format!("{}/2010-04-01/Accounts/{account_sid}/{resource}", self.config.api_base);
        let channel = message.channel().as_str();

        let policy = &self.config.retry;
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = policy.budget.saturating_sub(started.elapsed());
            let request = self
                .client
                .post(&url)
                .basic_auth(account_sid, Some(twilio.auth_token.expose_secret()))
                .form(&form)
                .timeout(remaining.min(self.config.attempt_timeout));
            let (reason, retry_after) = match call(request, channel).await {
                CallOutcome::Sent(sid) => return Ok(ProviderReceipt { sid }),
                CallOutcome::Permanent(error) => return Err(error),
                CallOutcome::Transient { reason, retry_after } => (reason, retry_after),
            };
            let delay = backoff(policy, attempt).max(retry_after.unwrap_or_default());
            let out_of_time = started.elapsed() + delay >= policy.budget;
            if attempt >= policy.max_attempts || out_of_time {
                tracing::error!(
                    event = "twilio_gave_up",
                    attempt,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    %reason,
                    "Twilio kept failing; giving up"
                );
                return Err(DeliveryError::Failed(format!("gave up after {attempt} calls: {reason}")));
            }
            tracing::warn!(
                event = "twilio_retry",
                attempt,
                delay_ms = delay.as_millis() as u64,
                %reason,
                "transient Twilio failure; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// A create call's form parameters, in order.
type Form = Vec<(&'static str, String)>;

impl TwilioSender {
    /// The resource and form of the create call for `message`: Twilio's shapes, as its
    /// OpenAPI description names them (checked by `shared/tests/twilio_openapi.rs`).
    fn request_form(
        &self,
        twilio: &TwilioSecrets,
        message: &CodeMessage,
    ) -> Result<(&'static str, Form), DeliveryError> {
        let to = message.to.clone();
        match &message.content {
            CodeContent::Sms { body } => {
                let sender = match &twilio.sender {
                    TwilioSenderId::From(from) => ("From", from.clone()),
                    TwilioSenderId::MessagingService(sid) => ("MessagingServiceSid", sid.clone()),
                };
                Ok(("Messages.json", vec![("To", to), sender, ("Body", body.clone())]))
            }
            CodeContent::Voice(script) => {
                // A Messaging Service places no calls: a call comes from a number of ours.
                let TwilioSenderId::From(from) = &twilio.sender else {
                    tracing::error!(
                        event = "twilio_voice_needs_from",
                        "voice is offered but the Twilio sender is a Messaging Service: set TWILIO_FROM to a voice-capable number instead"
                    );
                    return Err(DeliveryError::Failed("no number to call from".into()));
                };
                Ok(("Calls.json", vec![("To", to), ("From", from.clone()), ("Twiml", twiml(script))]))
            }
            CodeContent::Whatsapp(template) => {
                let Some(whatsapp) = &self.config.whatsapp else {
                    tracing::error!(
                        event = "twilio_whatsapp_unconfigured",
                        "whatsapp is offered but TWILIO_WHATSAPP_FROM / TWILIO_WHATSAPP_CONTENT_SID are not set"
                    );
                    return Err(DeliveryError::Failed("no WhatsApp sender".into()));
                };
                let variables: serde_json::Map<String, serde_json::Value> =
                    template.variables.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
                Ok((
                    "Messages.json",
                    vec![
                        ("To", format!("whatsapp:{to}")),
                        ("From", whatsapp.from.clone()),
                        ("ContentSid", whatsapp.content_sid.clone()),
                        ("ContentVariables", serde_json::Value::Object(variables).to_string()),
                    ],
                ))
            }
        }
    }
}

/// The TwiML of a call that says `script`: one `<Say>` per line in the script's language and
/// voice, a pause between lines. The words are ours, but escaped all the same.
pub fn twiml(script: &VoiceScript) -> String {
    let (voice, language) = (xml_escape(script.voice), xml_escape(script.language));
    let says: Vec<String> = script
        .lines
        .iter()
        .map(|line| format!("<Say voice=\"{voice}\" language=\"{language}\">{}</Say>", xml_escape(line)))
        .collect();
    format!("<Response>{}</Response>", says.join("<Pause length=\"1\"/>"))
}

fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// One call to Twilio, judged.
async fn call(request: reqwest::RequestBuilder, channel: &'static str) -> CallOutcome {
    let response = match request.send().await {
        Ok(response) => response,
        // No connection: the request never reached Twilio. (The URL holds the account SID:
        // keep it out of the log.)
        Err(error) if error.is_connect() => {
            return CallOutcome::Transient { reason: error.without_url().to_string(), retry_after: None };
        }
        // The request may have reached Twilio (a timeout waiting for the answer, a
        // connection cut after sending): it may have been accepted, so no second call.
        Err(error) => {
            let timeout = error.is_timeout();
            let error = error.without_url();
            tracing::warn!(
                event = "twilio_no_answer",
                timeout,
                %error,
                "no answer from Twilio after sending; not retried, as it may have been accepted"
            );
            return CallOutcome::Permanent(DeliveryError::Failed(format!("no answer: {error}")));
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = match response.bytes().await {
        Ok(body) => body,
        Err(error) if status.is_success() => {
            // Twilio accepted the message; only its answer was cut short. Resending
            // would send a second SMS.
            tracing::warn!(event = "twilio_answer_unread", error = %error.without_url(), "Twilio accepted; answer unread");
            return CallOutcome::Sent(None);
        }
        // An error answer cut short: judged by its status alone.
        Err(_) => return judge_error(status.as_u16(), None, retry_after),
    };
    if status.is_success() {
        let created = serde_json::from_slice::<CreatedMessage>(&body).ok();
        let sid = created.as_ref().and_then(|m| m.sid.as_deref()).unwrap_or("?");
        let twilio_status = created.as_ref().and_then(|m| m.status.as_deref()).unwrap_or("?");
        tracing::info!(event = "twilio_accepted", sid, twilio_status, channel, "Twilio accepted the message or call");
        return CallOutcome::Sent(created.and_then(|m| m.sid));
    }
    // Twilio's message text can quote the number: log only its code.
    judge_error(status.as_u16(), error_code(&body), retry_after)
}

/// The code of Twilio's error body, if it has one.
fn error_code(body: &[u8]) -> Option<u32> {
    serde_json::from_slice::<TwilioErrorBody>(body).ok().and_then(|e| e.code)
}

/// An error answer as logs and errors name it: `HTTP 400, Twilio code 21211`.
fn answer_text(status: u16, code: Option<u32>) -> String {
    format!("HTTP {status}, Twilio code {}", code.map_or_else(|| "none".to_owned(), |c| c.to_string()))
}

/// Maps Twilio's answer to what the service does with it (docs/PROVIDERS.md).
fn judge_error(status: u16, code: Option<u32>, retry_after: Option<Duration>) -> CallOutcome {
    match (status, code) {
        // Twilio's rate limit refused the call before acting on it (error 20429).
        (429, _) | (_, Some(20429)) => CallOutcome::Transient { reason: answer_text(status, code), retry_after },
        // A server error may come after the message was created (Twilio's Messages API
        // takes no idempotency key): a retry could text twice for one counted send.
        (500..=599, _) => {
            tracing::error!(
                event = "twilio_server_error",
                status,
                twilio_code = code,
                "Twilio answered a server error; not retried, as it may have created the message"
            );
            CallOutcome::Permanent(DeliveryError::Failed(answer_text(status, code)))
        }
        // Every refusal that the submitted number can cause: any caller can set these off
        // at will, so they are the caller's answer (`sms_refused`), never an alarm.
        // 21211/21217/21401/21421: not a valid number; 21265: a short code; 21266: To
        // equals From; 13223/13224 (calls): not a valid number to dial; 63024 (WhatsApp):
        // not a valid recipient.
        (_, Some(21211 | 21217 | 21401 | 21421 | 21265 | 21266 | 13223 | 13224 | 63024)) => {
            permanent(code, DeliveryError::InvalidNumber)
        }
        // 21610: unsubscribed (STOP); 21612: no route; 21614/21407: not SMS-capable;
        // 21216: blocked (for a call: a number the account may not call); 21608/21219: not
        // verified (trial accounts); 21214 (calls): the number cannot be reached; 13225
        // (calls): a forbidden, high-risk number; 63003 (WhatsApp): the number is not on
        // WhatsApp; 63032: WhatsApp will not deliver to this user.
        (_, Some(21610 | 21612 | 21614 | 21407 | 21216 | 21608 | 21219 | 21214 | 13225 | 63003 | 63032)) => {
            permanent(code, DeliveryError::Unreachable)
        }
        // 21408: no SMS geo permission for the number's region; 21215 and 13227: no voice
        // geo permission for it.
        (_, Some(21408 | 21215 | 13227)) => permanent(code, DeliveryError::CountryBlocked),
        (401, _) | (_, Some(20003)) => {
            tracing::error!(
                event = "twilio_auth_failed",
                status,
                twilio_code = code,
                "Twilio refused the credentials (20003): check the account SID and auth token secrets"
            );
            CallOutcome::Permanent(DeliveryError::Failed(format!("Twilio refused the credentials (HTTP {status})")))
        }
        _ => {
            tracing::error!(event = "twilio_refused", status, twilio_code = code, "Twilio refused the message or call");
            CallOutcome::Permanent(DeliveryError::Failed(answer_text(status, code)))
        }
    }
}

fn permanent(code: Option<u32>, error: DeliveryError) -> CallOutcome {
    tracing::info!(event = "twilio_refused_number", twilio_code = code, %error, "Twilio refused the destination");
    CallOutcome::Permanent(error)
}

/// The pause before call `attempt + 1`, drawn evenly from [`RetryPolicy::delay_bounds`].
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let (least, most) = policy.delay_bounds(attempt);
    let jitter_ms = u64::try_from((most - least).as_millis()).unwrap_or(u64::MAX);
    least + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(700),
            budget: Duration::from_secs(60),
        };
        for _ in 0..200 {
            for attempt in [1, 2, 3, 4, 40] {
                let (least, most) = policy.delay_bounds(attempt);
                let drawn = backoff(&policy, attempt);
                assert!(least <= drawn && drawn <= most, "{attempt}: {drawn:?}");
            }
            let first = backoff(&policy, 1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let third = backoff(&policy, 3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400), "{third:?}");
            let late = backoff(&policy, 40);
            assert!(late >= Duration::from_millis(350) && late <= Duration::from_millis(700), "{late:?}");
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| backoff(&policy, 3)).collect();
        assert!(spread.len() > 1, "backoff must be jittered");
    }

    #[test]
    fn the_most_calls_follow_from_the_least_pauses() {
        let policy = |max_attempts, base_ms, max_ms, budget_ms| RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
            budget: Duration::from_millis(budget_ms),
        };
        let tight = policy(10, 200, 400, 900);
        assert_eq!(tight.delay_bounds(1), (Duration::from_millis(100), Duration::from_millis(200)));
        assert_eq!(tight.delay_bounds(2), (Duration::from_millis(200), Duration::from_millis(400)));
        assert_eq!(tight.delay_bounds(9), (Duration::from_millis(200), Duration::from_millis(400)));
        // Pauses of at least 100, 200, 200, 200 ms end at 700 ms, inside 900: five calls can
        // fit (what a fresh machine saw), a sixth cannot (900 is not inside 900).
        assert_eq!(tight.max_calls(), 5);
        assert_eq!(policy(3, 250, 2_000, 8_000).max_calls(), 3, "the defaults: max_attempts bounds");
        assert_eq!(RetryPolicy::default().max_calls(), 3);
        assert_eq!(policy(10, 2_000, 2_000, 900).max_calls(), 1, "no pause fits: one call");
    }

    #[test]
    fn only_transient_answers_are_retried() {
        for (status, code) in [(429, Some(20429)), (429, None), (400, Some(20429))] {
            assert!(matches!(judge_error(status, code, None), CallOutcome::Transient { .. }), "{status} {code:?}");
        }
        // A server error may follow the message's creation: never retried.
        for (status, code) in [(500, Some(20500)), (503, None), (502, None), (504, Some(20504))] {
            let outcome = judge_error(status, code, None);
            assert!(
                matches!(outcome, CallOutcome::Permanent(DeliveryError::Failed(_))),
                "{status} {code:?}: {outcome:?}"
            );
        }
        let permanent = |status, code| match judge_error(status, Some(code), None) {
            CallOutcome::Permanent(error) => error,
            other => panic!("{status} {code}: {other:?}"),
        };
        assert_eq!(permanent(400, 21211), DeliveryError::InvalidNumber);
        assert_eq!(permanent(400, 21614), DeliveryError::Unreachable);
        assert_eq!(permanent(400, 21610), DeliveryError::Unreachable);
        assert_eq!(permanent(400, 21612), DeliveryError::Unreachable);
        assert_eq!(permanent(400, 21408), DeliveryError::CountryBlocked);
        for code in [21217, 21401, 21421, 21265, 21266] {
            assert_eq!(permanent(400, code), DeliveryError::InvalidNumber, "{code}");
        }
        for code in [21407, 21216, 21608, 21219] {
            assert_eq!(permanent(400, code), DeliveryError::Unreachable, "{code}");
        }
        for code in [13223, 13224, 63024] {
            assert_eq!(permanent(400, code), DeliveryError::InvalidNumber, "{code}");
        }
        for code in [21214, 13225, 63003, 63032] {
            assert_eq!(permanent(400, code), DeliveryError::Unreachable, "{code}");
        }
        for code in [21215, 13227] {
            assert_eq!(permanent(400, code), DeliveryError::CountryBlocked, "{code}");
        }
        // Our own configuration's faults: the alarm's, never the caller's.
        for code in [21210, 21212, 63007, 21910, 21655, 21656] {
            assert!(matches!(permanent(400, code), DeliveryError::Failed(_)), "{code}");
        }
        assert!(matches!(permanent(401, 20003), DeliveryError::Failed(_)));
        assert!(matches!(permanent(400, 21602), DeliveryError::Failed(_)));
    }

    #[test]
    fn the_twiml_says_each_line_in_its_language_with_pauses_and_escapes() {
        let script = VoiceScript {
            language: "pt-BR",
            voice: "Polly.Camila",
            lines: vec!["um, dois.".into(), "a < b & \"c\"".into()],
        };
        assert_eq!(
            twiml(&script),
            "<Response><Say voice=\"Polly.Camila\" language=\"pt-BR\">um, dois.</Say><Pause length=\"1\"/>\
             <Say voice=\"Polly.Camila\" language=\"pt-BR\">a &lt; b &amp; &quot;c&quot;</Say></Response>"
        );
    }

    #[test]
    fn the_api_base_is_the_settings_url_without_its_slash() {
        let with = |base: &str| TwilioConfig::new(Some(&EndpointUrl::parse(base).unwrap())).api_base;
        assert_eq!(TwilioConfig::new(None).api_base, DEFAULT_API_BASE);
        assert_eq!(with("https://api.twilio.com/"), "https://api.twilio.com");
        assert_eq!(with("http://127.0.0.1:3002"), "http://127.0.0.1:3002");
        assert_eq!(with("http://localhost:3002/"), "http://localhost:3002");
    }
}
