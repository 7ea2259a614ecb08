//! Spawns the service in-process with its local adapters (memory store, outbox, manual
//! clock, fixed secrets) and drives it through the same HTTP handler as Lambda.
#![allow(dead_code)] // each test file uses its own part of these helpers

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use otp_core::adapters::clock::ManualClock;
use otp_core::adapters::outbox::Outbox;
use otp_core::secrets::env::EnvSecrets;
use otp_core::wiring::Overrides;
use otp_core::{Api, Endpoint, Settings};
use serde_json::Value;

pub const PEPPER: &str = "test-pepper-0123456789-0123456789-0123456789";
pub const SESSION_SECRET: &str = "test-session-secret-0123456789-0123456789";
pub const ORIGIN: &str = "https://app.example.com";

pub struct TestApp {
    pub api: Api,
    pub outbox: Arc<Outbox>,
    pub clock: Arc<ManualClock>,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z").map(Into::into).unwrap()
}

pub fn settings(overrides: &[(&str, &str)]) -> Settings {
    let mut map: HashMap<String, String> = HashMap::from([("OTP_ALLOWED_ORIGINS".into(), ORIGIN.into())]);
    map.extend(overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Settings::from_lookup(|k| map.get(k).cloned()).expect("test settings are valid")
}

pub fn secrets() -> EnvSecrets {
    EnvSecrets::from_lookup(|name| match name {
        "OTP_CODE_PEPPER" => Some(PEPPER.into()),
        "OTP_SESSION_SECRET" => Some(SESSION_SECRET.into()),
        _ => None,
    })
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with(&[]).await
    }

    pub async fn with(overrides: &[(&str, &str)]) -> Self {
        Self::with_secrets(overrides, secrets()).await
    }

    pub async fn with_secrets(overrides: &[(&str, &str)], secrets: EnvSecrets) -> Self {
        let clock = Arc::new(ManualClock::new(start_time()));
        let parts = Overrides { clock: Some(clock.clone()), secrets: Some(Arc::new(secrets)), ..Default::default() };
        let app = otp_core::wiring::build(settings(overrides), parts).await;
        let outbox = app.outbox.expect("the outbox is the default SMS sender");
        Self { api: app.api, outbox, clock }
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(TimeDelta::seconds(seconds));
    }

    /// A raw request: any method, content type and body.
    pub async fn raw(
        &self,
        endpoint: Endpoint,
        method: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
        ip: &str,
    ) -> Reply {
        let mut builder = http::Request::builder().method(method).uri(endpoint.path()).header("origin", ORIGIN);
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let request = builder.body(body.into()).expect("valid test request");
        let ip: IpAddr = ip.parse().expect("valid test ip");
        let response = self.api.handle(endpoint, &request, Some(ip)).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.into_body();
        let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("body is JSON") };
        Reply { status, headers, body }
    }

    pub async fn post(&self, endpoint: Endpoint, body: Value, ip: &str) -> Reply {
        self.raw(endpoint, "POST", Some("application/json"), body.to_string(), ip).await
    }

    pub async fn send(&self, phone: &str) -> Reply {
        self.post(Endpoint::SendOtp, serde_json::json!({ "phone": phone }), "198.51.100.7").await
    }

    pub async fn verify(&self, phone: &str, code: &str) -> Reply {
        self.post(Endpoint::VerifyOtp, serde_json::json!({ "phone": phone, "code": code }), "198.51.100.7").await
    }

    /// The code in the newest SMS to `to`.
    pub fn last_code(&self, to: &str) -> String {
        let entry = self.outbox.list().into_iter().find(|m| m.to == to).expect("an SMS was sent to this number");
        entry
            .body
            .split(|c: char| !c.is_ascii_digit())
            .find(|word| word.len() >= 4)
            .expect("the SMS carries a code")
            .to_owned()
    }

    /// A wrong code of the right length for `right`.
    pub fn wrong_code(right: &str) -> String {
        right.chars().map(|c| if c == '0' { '1' } else { '0' }).collect()
    }
}
