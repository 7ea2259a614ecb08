//! The bot challenge, checked server-side over the providers' siteverify protocol.
//! Cloudflare Turnstile, hCaptcha and Google reCAPTCHA v3 share one request (a form of
//! `secret`, `response`, `remoteip`) and nearly one answer; what each adds (the hostname,
//! reCAPTCHA's action and score) is checked here (docs/PROVIDERS.md).

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::time::Instant;

pub use crate::config::{CaptchaProvider, DEFAULT_ACTION, DEFAULT_MIN_SCORE};
use crate::config::{CaptchaSettings, EndpointUrl};
use crate::ports::{BotChallenge, ChallengeError};

/// Longest token sent on; longer ones are refused without a call. Turnstile's are at
/// most 2048 characters, reCAPTCHA's and hCaptcha's a few kilobytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest answer read; the providers' are a few hundred bytes.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bot challenge setting: {0}")]
pub struct CaptchaConfigError(String);

/// The hostnames of web origins (`https://app.example:8443` -> `app.example`), lowercase,
/// without duplicates: where the challenge may have been solved. Unparsable origins are
/// left out.
pub fn hostnames_of_origins<S: AsRef<str>>(origins: &[S]) -> Vec<String> {
    let mut hosts: Vec<String> = Vec::new();
    for origin in origins {
        let Ok(url) = reqwest::Url::parse(origin.as_ref().trim()) else { continue };
        let Some(host) = url.host_str().filter(|h| !h.is_empty()) else { continue };
        let host = host.to_ascii_lowercase();
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    hosts
}

/// What the check asks of the provider and of its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeConfig {
    pub provider: CaptchaProvider,
    pub verify_url: EndpointUrl,
    /// Where the challenge may have been solved: the hostnames of the CORS origins. The
    /// answer must name one of them: an answer without a `hostname` is refused.
    pub expected_hostnames: Vec<String>,
    /// The action the token must have been made for: reCAPTCHA always, Turnstile when
    /// configured (`OTP_CAPTCHA_ACTION`).
    pub expected_action: Option<String>,
    /// reCAPTCHA only: the lowest score accepted.
    pub min_score: f64,
    pub connect_timeout: Duration,
    /// Longest a whole check takes, its one retry included.
    pub timeout: Duration,
}

impl ChallengeConfig {
    /// The provider's production endpoint, the default action and score, and timeouts
    /// of 1 s to connect and 3 s in all: the send also waits for the store and for
    /// Twilio within the function's timeout, and a user rather retries than waits.
    pub fn new(provider: CaptchaProvider, expected_hostnames: Vec<String>) -> Self {
        Self::from_settings(&CaptchaSettings::new(provider), expected_hostnames)
    }

    /// The challenge the settings describe, expecting `expected_hostnames` (those of the
    /// CORS origins).
    pub fn from_settings(settings: &CaptchaSettings, expected_hostnames: Vec<String>) -> Self {
        Self {
            provider: settings.provider,
            verify_url: settings.verify_url.clone(),
            expected_hostnames,
            expected_action: settings.expected_action.clone(),
            min_score: settings.min_score.get(),
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(3),
        }
    }
}

/// The bot challenge checked with the provider's siteverify endpoint.
pub struct SiteVerify {
    client: reqwest::Client,
    config: ChallengeConfig,
    secret: SecretString,
}

impl fmt::Debug for SiteVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteVerify").field("config", &self.config).finish_non_exhaustive()
    }
}

impl SiteVerify {
    /// Builds the one HTTP client of this cold start. Refuses an empty secret, no
    /// expected hostname, a score outside 0..=1 and a zero timeout.
    pub fn new(config: ChallengeConfig, secret: SecretString) -> Result<Self, CaptchaConfigError> {
        if secret.expose_secret().trim().is_empty() {
            return Err(CaptchaConfigError("the bot challenge secret is empty".into()));
        }
        if config.expected_hostnames.iter().all(|h| h.trim().is_empty()) {
            return Err(CaptchaConfigError(
                "no hostname to expect: the challenge's hostname is checked against the CORS origins' hosts".into(),
            ));
        }
        if !(0.0..=1.0).contains(&config.min_score) {
            return Err(CaptchaConfigError(format!(
                "the minimum score must be within 0 and 1, not {}",
                config.min_score
            )));
        }
        if config.timeout.is_zero() || config.connect_timeout.is_zero() {
            return Err(CaptchaConfigError("the bot challenge timeouts must be above zero".into()));
        }
        let config = ChallengeConfig {
            expected_hostnames: config.expected_hostnames.iter().map(|h| h.trim().to_ascii_lowercase()).collect(),
            ..config
        };
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("otp-service/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| CaptchaConfigError(format!("HTTP client: {error}")))?;
        Ok(Self { client, config, secret })
    }

    pub fn config(&self) -> &ChallengeConfig {
        &self.config
    }

    /// Calls siteverify, with at most one retry, and only when the connection failed:
    /// then the provider never saw the token, and a token is good for one call only.
    /// Everything within `timeout`.
    async fn call(&self, form: &[(&str, &str)]) -> Result<(reqwest::StatusCode, Vec<u8>), ChallengeError> {
        let deadline = Instant::now() + self.config.timeout;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let request = self.client.post(self.config.verify_url.as_str()).form(form).timeout(remaining);
            let failure = match tokio::time::timeout(remaining, send(request)).await {
                Ok(Ok(answer)) => return Ok(answer),
                Ok(Err(failure)) => failure,
                Err(_) => CallFailure::Other("no answer in time".into()),
            };
            match failure {
                CallFailure::Connect(reason)
                    if attempt == 1 && !deadline.saturating_duration_since(Instant::now()).is_zero() =>
                {
                    tracing::warn!(
                        event = "captcha_retry",
                        provider = self.config.provider.name(),
                        %reason,
                        "cannot connect to the challenge provider; retrying once"
                    );
                }
                CallFailure::Connect(reason) | CallFailure::Other(reason) => {
                    return Err(ChallengeError::Unavailable(reason));
                }
            }
        }
    }

    /// Judges the provider's answer.
    fn judge(&self, status: reqwest::StatusCode, body: &[u8]) -> Result<(), ChallengeError> {
        let provider = self.config.provider.name();
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT
        {
            return Err(ChallengeError::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
            return Err(ChallengeError::Unavailable(format!("unreadable answer (HTTP {})", status.as_u16())));
        };
        let codes: Vec<String> = answer.error_codes.unwrap_or_default().iter().take(8).map(|c| clean_code(c)).collect();
        if !answer.success {
            if codes.iter().any(|c| is_our_fault(c)) {
                tracing::error!(
                    event = "captcha_misconfigured",
                    provider,
                    error_codes = ?codes,
                    "the challenge provider refused our request: check the bot challenge secret (captcha-secret / OTP_CAPTCHA_SECRET) and OTP_CAPTCHA"
                );
                return Err(ChallengeError::Unavailable(format!(
                    "the provider refused our request: {}",
                    codes.join(", ")
                )));
            }
            if codes.iter().any(|c| c == "internal-error") {
                return Err(ChallengeError::Unavailable("the provider's internal error".into()));
            }
            let reasons = if codes.is_empty() { vec!["no-error-code".to_owned()] } else { codes };
            return Err(ChallengeError::Rejected { reasons });
        }
        if !status.is_success() {
            return Err(ChallengeError::Unavailable(format!("success with HTTP {}", status.as_u16())));
        }

        let mut reasons = Vec::new();
        match answer.hostname.as_deref().filter(|h| !h.is_empty()) {
            // A token from a key that reports no hostname cannot show where it was solved.
            None => reasons.push("hostname-missing".to_owned()),
            Some(hostname) if !self.config.expected_hostnames.iter().any(|h| h.eq_ignore_ascii_case(hostname)) => {
                tracing::info!(event = "captcha_hostname_mismatch", provider, hostname, "solved on another site");
                reasons.push("hostname-mismatch".to_owned());
            }
            Some(_) => {}
        }
        if self.config.provider == CaptchaProvider::Recaptcha {
            let Some(score) = answer.score else {
                tracing::error!(
                    event = "captcha_misconfigured",
                    provider,
                    "reCAPTCHA answered without a score: the secret is not a reCAPTCHA v3 key"
                );
                return Err(ChallengeError::Unavailable("reCAPTCHA answered without a score".into()));
            };
            // NaN is never enough.
            if score.is_nan() || score < self.config.min_score {
                reasons.push("score-too-low".to_owned());
            }
        }
        if let Some(expected) = &self.config.expected_action
            && answer.action.as_deref() != Some(expected.as_str())
        {
            reasons.push("action-mismatch".to_owned());
        }
        if reasons.is_empty() { Ok(()) } else { Err(ChallengeError::Rejected { reasons }) }
    }
}

#[async_trait]
impl BotChallenge for SiteVerify {
    async fn check(&self, token: &str, client_ip: IpAddr) -> Result<(), ChallengeError> {
        let provider = self.config.provider.name();
        let started = Instant::now();
        let outcome = if token.is_empty() {
            Err(ChallengeError::Rejected { reasons: vec!["missing-input-response".into()] })
        } else if token.len() > MAX_TOKEN_BYTES {
            Err(ChallengeError::Rejected { reasons: vec!["token-too-long".into()] })
        } else {
            // `::ffff:a.b.c.d` is the IPv4 client it stands for.
            let remoteip = client_ip.to_canonical().to_string();
            let form = [("secret", self.secret.expose_secret()), ("response", token), ("remoteip", remoteip.as_str())];
            match self.call(&form).await {
                Ok((status, body)) => self.judge(status, &body),
                Err(error) => Err(error),
            }
        };
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        // Never the token, the secret or the client's address.
        match &outcome {
            Ok(()) => tracing::info!(event = "captcha_passed", provider, elapsed_ms, "bot challenge passed"),
            Err(ChallengeError::Rejected { reasons }) => {
                tracing::info!(event = "captcha_rejected", provider, elapsed_ms, ?reasons, "bot challenge rejected")
            }
            Err(ChallengeError::Unavailable(reason)) => tracing::warn!(
                event = "captcha_unavailable",
                provider,
                elapsed_ms,
                %reason,
                "bot challenge provider unavailable"
            ),
        }
        outcome
    }
}

/// The fields of the three providers' answers that are checked.
#[derive(Debug, Deserialize)]
struct Answer {
    success: bool,
    #[serde(rename = "error-codes")]
    error_codes: Option<Vec<String>>,
    hostname: Option<String>,
    /// reCAPTCHA v3 and Turnstile.
    action: Option<String>,
    /// reCAPTCHA v3.
    score: Option<f64>,
}

/// Error codes that say our request was wrong (the secret, the key pair, the form):
/// no token could pass, and the client is not at fault.
fn is_our_fault(code: &str) -> bool {
    matches!(
        code,
        "missing-input-secret"
            | "invalid-input-secret"
            | "sitekey-secret-mismatch"
            | "invalid-sitekey"
            | "bad-request"
            | "missing-remoteip"
            | "invalid-remoteip"
    )
}

/// A provider's error code as logged and returned: short, and only the characters
/// codes are made of.
fn clean_code(code: &str) -> String {
    let fits = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if fits { code.to_ascii_lowercase() } else { "unrecognised-code".into() }
}

enum CallFailure {
    /// The connection was never made: the provider did not see the token.
    Connect(String),
    Other(String),
}

/// One POST, its status and at most `MAX_ANSWER_BYTES` of its body.
async fn send(request: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Vec<u8>), CallFailure> {
    let mut response = request.send().await.map_err(|error| {
        let reason = describe(&error);
        if error.is_connect() { CallFailure::Connect(reason) } else { CallFailure::Other(reason) }
    })?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| CallFailure::Other(describe(&error)))? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(CallFailure::Other(format!("answer longer than {MAX_ANSWER_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// The error and its causes, without the URL (only the form carries the token and
/// the secret, and no error quotes it).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A [`SiteVerify`] whose secret comes from the secret cache at each check, so a rotated
/// `captcha-secret` is picked up without a redeploy (the checker is rebuilt when the secret
/// it was built with changes).
pub struct CachedSecretSiteVerify {
    config: ChallengeConfig,
    secrets: std::sync::Arc<dyn crate::ports::SecretSource>,
    current: tokio::sync::Mutex<Option<(SecretString, std::sync::Arc<SiteVerify>)>>,
}

impl CachedSecretSiteVerify {
    pub fn new(config: ChallengeConfig, secrets: std::sync::Arc<dyn crate::ports::SecretSource>) -> Self {
        Self { config, secrets, current: tokio::sync::Mutex::new(None) }
    }

    async fn checker(&self) -> Result<std::sync::Arc<SiteVerify>, ChallengeError> {
        let secrets = self.secrets.load().await.map_err(|e| ChallengeError::Unavailable(e.to_string()))?;
        let secret = secrets
            .providers
            .get(crate::secrets::CAPTCHA_SECRET)
            .cloned()
            .ok_or_else(|| ChallengeError::Unavailable("no captcha secret".into()))?;
        let mut current = self.current.lock().await;
        if let Some((built_with, checker)) = current.as_ref()
            && built_with.expose_secret() == secret.expose_secret()
        {
            return Ok(checker.clone());
        }
        let checker = std::sync::Arc::new(
            SiteVerify::new(self.config.clone(), secret.clone())
                .map_err(|e| ChallengeError::Unavailable(e.to_string()))?,
        );
        *current = Some((secret, checker.clone()));
        Ok(checker)
    }
}

#[async_trait]
impl BotChallenge for CachedSecretSiteVerify {
    async fn check(&self, token: &str, client_ip: IpAddr) -> Result<(), ChallengeError> {
        self.checker().await?.check(token, client_ip).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_come_from_the_origins() {
        let origins = ["https://App.Example:8443", "http://localhost:5173", "https://app.example/", "not a url"];
        assert_eq!(hostnames_of_origins(&origins), ["app.example", "localhost"]);
        assert!(hostnames_of_origins::<&str>(&[]).is_empty());
    }

    #[test]
    fn the_config_takes_the_settings() {
        let settings = CaptchaSettings::new(CaptchaProvider::Recaptcha);
        let config = ChallengeConfig::from_settings(&settings, vec!["app.example".into()]);
        assert_eq!(config.provider, CaptchaProvider::Recaptcha);
        assert_eq!(config.verify_url.as_str(), CaptchaProvider::Recaptcha.default_verify_url());
        assert_eq!((config.expected_action.as_deref(), config.min_score), (Some("send_otp"), 0.5));
        assert!(config.timeout <= Duration::from_secs(3) && config.connect_timeout <= config.timeout);
        let settings = CaptchaSettings {
            expected_action: Some("login".into()),
            min_score: crate::config::MinScore::new(0.8).unwrap(),
            ..CaptchaSettings::new(CaptchaProvider::Turnstile)
        };
        let config = ChallengeConfig::from_settings(&settings, vec![]);
        assert_eq!((config.expected_action.as_deref(), config.min_score), (Some("login"), 0.8));
    }

    #[test]
    fn the_adapter_refuses_an_unfit_config() {
        let config = ChallengeConfig::new(CaptchaProvider::Turnstile, vec!["app.example".into()]);
        let secret = || SecretString::from("0x4AAAAAAA-secret");
        assert!(SiteVerify::new(config.clone(), secret()).is_ok());
        assert!(SiteVerify::new(config.clone(), SecretString::from(" ")).is_err());
        assert!(SiteVerify::new(ChallengeConfig { expected_hostnames: vec![], ..config.clone() }, secret()).is_err());
        assert!(SiteVerify::new(ChallengeConfig { min_score: 1.5, ..config.clone() }, secret()).is_err());
        assert!(SiteVerify::new(ChallengeConfig { timeout: Duration::ZERO, ..config.clone() }, secret()).is_err());
        let debug = format!("{:?}", SiteVerify::new(config, secret()).unwrap());
        assert!(!debug.contains("0x4AAAAAAA-secret"), "{debug}");
    }

    #[test]
    fn error_codes_are_classified_and_cleaned() {
        for ours in ["invalid-input-secret", "missing-input-secret", "sitekey-secret-mismatch", "bad-request"] {
            assert!(is_our_fault(ours), "{ours}");
        }
        for theirs in ["invalid-input-response", "timeout-or-duplicate", "already-seen-response", "internal-error"] {
            assert!(!is_our_fault(theirs), "{theirs}");
        }
        assert_eq!(clean_code("Timeout-Or-Duplicate"), "timeout-or-duplicate");
        assert_eq!(clean_code("a b\nc"), "unrecognised-code");
        assert_eq!(clean_code(&"x".repeat(65)), "unrecognised-code");
        assert_eq!(clean_code(""), "unrecognised-code");
    }
}
