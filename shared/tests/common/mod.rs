//! Test helpers: the service's HTTP handler wired to the in-memory store and the real
//! Twilio sender, which talks to the fake Twilio over HTTP.
#![allow(dead_code)] // each test binary uses its own part of these helpers

pub mod moto;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_twilio::FakeTwilio;
use otp_core::adapters::twilio::{RetryPolicy, TwilioConfig, TwilioSender};
use otp_core::secrets::env::EnvSecrets;
use otp_core::secrets::{Required, SecretCache};
use otp_core::wiring::Overrides;
use otp_core::{Api, Endpoint, Settings};
use serde_json::Value;

pub const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
pub const AUTH_TOKEN: &str = "tw-auth-token-5f1e2d3c4b5a";
pub const PEPPER: &str = "pepper-9c8b7a6f5e4d3c2b1a-0f1e2d3c4b5a6978";
pub const SESSION_SECRET: &str = "session-secret-1a2b3c4d5e6f7a8b-8796a5b4c3d2e1f0";
pub const FROM: &str = "+15005550006";

/// How a test wants the service and its Twilio sender.
pub struct Setup {
    /// Settings variables (API.md names); the rest keep their defaults.
    pub settings: Vec<(&'static str, &'static str)>,
    /// The auth token the service holds (the fake accepts only `AUTH_TOKEN`).
    pub auth_token: &'static str,
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
    /// Another Twilio than the fake (an address where nothing listens).
    pub api_base: Option<String>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            // Twilio's magic test numbers (+1 500 555 ...) are not mobile numbers.
            settings: vec![
                ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
                ("OTP_NUMBER_TYPES", "mobile,fixed_line_or_mobile,voip,personal,pager"),
            ],
            auth_token: AUTH_TOKEN,
            attempt_timeout: Duration::from_secs(2),
            // Short pauses keep the tests fast; the bounds are what they check.
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(80),
                budget: Duration::from_secs(5),
            },
            api_base: None,
        }
    }
}

pub struct Harness {
    pub api: Api,
    pub fake: FakeTwilio,
}

pub async fn harness(setup: Setup) -> Harness {
    let fake = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("fake Twilio starts");
    let secrets = twilio_secrets(setup.auth_token, "TWILIO_FROM", FROM);
    let cache = Arc::new(SecretCache::new(
        Arc::new(secrets),
        Required { twilio: true, captcha: false },
        Duration::from_secs(300),
    ));
    cache.prime().await.expect("secrets load");
    let config = TwilioConfig {
        api_base: setup.api_base.unwrap_or_else(|| fake.url()),
        connect_timeout: Duration::from_secs(1),
        attempt_timeout: setup.attempt_timeout,
        retry: setup.retry,
    };
    let sender = TwilioSender::new(config, cache.clone()).expect("client builds");
    let map: HashMap<&str, &str> = setup.settings.into_iter().collect();
    let settings = Settings::from_lookup(|name| map.get(name).map(|v| v.to_string())).expect("valid settings");
    let overrides = Overrides { secrets: Some(cache), sms: Some(Arc::new(sender)), ..Default::default() };
    let app = otp_core::wiring::build(settings, overrides).await;
    assert_eq!(app.problems, Vec::<String>::new(), "the harness starts cleanly");
    Harness { api: app.api, fake }
}

/// The service's secrets with Twilio credentials: `auth_token`, and the sender given as
/// `sender_variable` (`TWILIO_FROM` or `TWILIO_MESSAGING_SERVICE_SID`) = `sender`.
pub fn twilio_secrets(auth_token: &'static str, sender_variable: &'static str, sender: &'static str) -> EnvSecrets {
    EnvSecrets::from_lookup(move |name| {
        Some(
            match name {
                "OTP_SESSION_SECRET" => SESSION_SECRET,
                "OTP_CODE_PEPPER" => PEPPER,
                "TWILIO_ACCOUNT_SID" => ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN" => auth_token,
                n if n == sender_variable => sender,
                _ => return None,
            }
            .to_owned(),
        )
    })
}

/// One POST through the HTTP handler, as API Gateway or the local run would make it.
pub async fn post(api: &Api, endpoint: Endpoint, body: Value) -> (u16, Value) {
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(endpoint.path())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .expect("request builds");
    let ip: IpAddr = [203, 0, 113, 7].into();
    let response = api.handle(endpoint, &request, Some(ip)).await;
    let status = response.status().as_u16();
    let json = serde_json::from_str(response.body()).unwrap_or(Value::Null);
    (status, json)
}

pub async fn send(api: &Api, phone: &str) -> (u16, Value) {
    post(api, Endpoint::SendOtp, serde_json::json!({ "phone": phone, "locale": "en" })).await
}

pub async fn verify(api: &Api, phone: &str, code: &str) -> (u16, Value) {
    post(api, Endpoint::VerifyOtp, serde_json::json!({ "phone": phone, "code": code })).await
}

/// The error code of an error answer.
pub fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// The six-digit code in an SMS body.
pub fn code_in(body: &str) -> String {
    body.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() == 6).expect("an SMS carries a code").to_owned()
}

/// A writer that keeps everything logged, for tests that read the logs.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'w self) -> Self::Writer {
        self.clone()
    }
}

/// Captures what this thread logs (in the Lambda JSON format) until the guard drops.
pub fn capture_logs(filter: &str) -> (LogBuffer, tracing::subscriber::DefaultGuard) {
    let buffer = LogBuffer::default();
    let subscriber = otp_core::telemetry::json_subscriber(tracing_subscriber::EnvFilter::new(filter), buffer.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    (buffer, guard)
}
