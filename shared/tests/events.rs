//! Every API Gateway event in `events/` goes through the Lambda handler path (the event
//! deserialised by `lambda_http`, then `http::lambda::handle`) and must get its API.md
//! answer. The same files feed `cargo lambda invoke` and `sam local invoke`, so this
//! keeps them from rotting: a fixture this test does not list fails it too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lambda_http::{Body, RequestExt};
use otp_core::adapters::memory::MemoryStore;
use otp_core::adapters::memory_delivery::MemoryDeliveryLog;
use otp_core::domain::delivery::{DeliveryRecord, DeliveryState, StatusApplied, StatusReport};
use otp_core::domain::{Channel, OtpCode, Pepper, SendDecision, SubjectKey};
use otp_core::ports::{Clock, DeliveryLog, OtpStore, SendSubjects};
use otp_core::{Endpoint, Settings};
use otp_testkit::{AUTH_TOKEN, FROM, ORIGIN, PEPPER, TestApp};
use serde_json::Value;

/// The number every verify fixture uses.
const PHONE: &str = "+14155550123";

/// What the store holds before a fixture is handled.
#[derive(Debug, Clone, Copy)]
enum Seed {
    Nothing,
    /// A pending code for `PHONE`.
    PendingCode(&'static str),
    /// The delivery record of the message [`MESSAGE_SID`], just sent.
    SentMessage,
}

/// The message the status callback fixtures report on.
const MESSAGE_SID: &str = "SM0123456789abcdef0123456789abcdef";
/// The URL the status callback fixtures are signed over (the stage's, as template.yaml sets it).
const STATUS_URL: &str = "https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/prod/api/sms-status";

struct Fixture {
    file: &'static str,
    endpoint: Endpoint,
    seed: Seed,
    status: u16,
    /// `error.code` of the answer; `None` for a success.
    error: Option<&'static str>,
}

const FIXTURES: &[Fixture] = &[
    Fixture { file: "send-ok.json", endpoint: Endpoint::SendOtp, seed: Seed::Nothing, status: 202, error: None },
    Fixture {
        file: "verify-ok.json",
        endpoint: Endpoint::VerifyOtp,
        seed: Seed::PendingCode("123456"),
        status: 200,
        error: None,
    },
    Fixture {
        file: "verify-wrong-code.json",
        endpoint: Endpoint::VerifyOtp,
        seed: Seed::PendingCode("123456"),
        status: 401,
        error: Some("incorrect_code"),
    },
    Fixture {
        file: "send-invalid-json.json",
        endpoint: Endpoint::SendOtp,
        seed: Seed::Nothing,
        status: 400,
        error: Some("invalid_request"),
    },
    Fixture {
        file: "send-wrong-content-type.json",
        endpoint: Endpoint::SendOtp,
        seed: Seed::Nothing,
        status: 415,
        error: Some("unsupported_media_type"),
    },
    Fixture {
        file: "send-wrong-method.json",
        endpoint: Endpoint::SendOtp,
        seed: Seed::Nothing,
        status: 405,
        error: Some("method_not_allowed"),
    },
    Fixture {
        file: "send-options-preflight.json",
        endpoint: Endpoint::SendOtp,
        seed: Seed::Nothing,
        status: 204,
        error: None,
    },
    Fixture {
        file: "verify-options-preflight.json",
        endpoint: Endpoint::VerifyOtp,
        seed: Seed::Nothing,
        status: 204,
        error: None,
    },
    Fixture {
        file: "sms-status-signed.json",
        endpoint: Endpoint::SmsStatus,
        seed: Seed::SentMessage,
        status: 204,
        error: None,
    },
    Fixture {
        file: "sms-status-forged.json",
        endpoint: Endpoint::SmsStatus,
        seed: Seed::SentMessage,
        status: 403,
        error: Some("forbidden"),
    },
    Fixture {
        file: "send-oversized-body.json",
        endpoint: Endpoint::SendOtp,
        seed: Seed::Nothing,
        status: 413,
        error: Some("payload_too_large"),
    },
];

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// A fresh service per fixture, so no fixture depends on another's state, on a memory
/// store the test seeds.
struct Harness {
    app: TestApp,
    store: Arc<MemoryStore>,
    deliveries: Arc<MemoryDeliveryLog>,
}

/// The callback fixtures' app holds the Twilio auth token and the status callback URL.
async fn harness(endpoint: Endpoint) -> Harness {
    let store = Arc::new(MemoryStore::new());
    let deliveries = Arc::new(MemoryDeliveryLog::new());
    let mut builder = TestApp::builder().store(store.clone()).delivery(deliveries.clone());
    if endpoint == Endpoint::SmsStatus {
        builder = builder.settings(&[("OTP_STATUS_CALLBACK_URL", STATUS_URL)]).secrets(otp_testkit::twilio::secrets(
            AUTH_TOKEN,
            "TWILIO_FROM",
            FROM,
        ));
    }
    let app = builder.start().await;
    Harness { app, store, deliveries }
}

fn message_key() -> SubjectKey {
    Pepper::new(PEPPER.as_bytes()).message_key(MESSAGE_SID)
}

/// Whether the fixture's `undelivered` report was taken: a second one then changes nothing.
async fn undelivered_was_recorded(h: &Harness) -> bool {
    let report = StatusReport { state: DeliveryState::Undelivered, error_code: Some(30003) };
    let again = h.deliveries.apply_status(&message_key(), &report, h.app.clock.now()).await;
    again.expect("memory never fails") == StatusApplied::Unchanged
}

/// Records a send of `code` to `PHONE`, exactly as the service stores it.
async fn seed_pending_code(h: &Harness, code: &str) {
    let settings = Settings::default().service;
    let pepper = Pepper::new(PEPPER.as_bytes());
    let code = OtpCode::parse(code, settings.code_length).expect("seed code has the default length");
    let (number, client) = (pepper.number_key(PHONE), pepper.client_key("192.0.2.1"));
    let subjects = SendSubjects {
        number: &number,
        client: &client,
        range: None,
        country: "US",
        prefix: "1-415",
        device: None,
        challenged: false,
    };
    let decision = h
        .store
        .record_send(&subjects, pepper.hash_code(PHONE, &code), Channel::Sms, &settings.policy, h.app.clock.now())
        .await
        .expect("memory store never fails");
    assert!(matches!(decision, SendDecision::Allowed { .. }), "seeding was refused: {decision:?}");
}

fn body_json(body: &Body) -> Value {
    let bytes: &[u8] = body.as_ref();
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

async fn check(fixture: &Fixture) {
    let path = events_dir().join(fixture.file);
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let request = lambda_http::request::from_str(&raw)
        .unwrap_or_else(|e| panic!("{} is not an API Gateway REST event: {e}", fixture.file));
    assert!(
        otp_core::http::lambda::source_ip(&request).is_some(),
        "{}: requestContext.identity.sourceIp must be a valid address",
        fixture.file
    );
    // The URI carries the stage (`/prod/api/...`); the raw path is the API's own resource path.
    let path_endpoint = Endpoint::from_path(request.raw_http_path());
    assert_eq!(path_endpoint, Some(fixture.endpoint), "{}: path does not match its function", fixture.file);

    let h = harness(fixture.endpoint).await;
    match fixture.seed {
        Seed::Nothing => {}
        Seed::PendingCode(code) => seed_pending_code(&h, code).await,
        Seed::SentMessage => {
            let record = DeliveryRecord::sent("US", "1-415", Channel::Sms, h.app.clock.now());
            h.deliveries.record_sent(&message_key(), &record).await.expect("memory never fails");
        }
    }
    let response = otp_core::http::lambda::handle(&h.app.api, &[fixture.endpoint], request).await;
    let json = body_json(response.body());
    assert_eq!(response.status().as_u16(), fixture.status, "{}: body {json}", fixture.file);
    assert_eq!(json["error"]["code"].as_str(), fixture.error, "{}: body {json}", fixture.file);
    // Every answer, errors and preflights included, lets the configured frontend read it
    // (Twilio's callbacks come from no browser, and carry no Origin).
    if fixture.endpoint != Endpoint::SmsStatus {
        assert_eq!(
            response.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
            Some(ORIGIN),
            "{}",
            fixture.file
        );
    }

    match fixture.file {
        "send-ok.json" => {
            assert_eq!(json["to"], PHONE);
            let sent = h.app.outbox().list();
            assert_eq!(sent.len(), 1, "one SMS goes out");
            assert_eq!(sent[0].to, PHONE);
        }
        "verify-ok.json" => {
            assert_eq!(json["status"], "approved");
            assert!(json["token"].as_str().is_some_and(|t| t.split('.').count() == 3), "a JWT: {json}");
        }
        "verify-wrong-code.json" => assert_eq!(json["error"]["attemptsRemaining"], 4),
        "sms-status-signed.json" => assert!(undelivered_was_recorded(&h).await, "the callback moved the record"),
        "sms-status-forged.json" => assert!(!undelivered_was_recorded(&h).await, "a forgery changes nothing"),
        // Nothing rejected at the edge may reach the SMS provider.
        _ => assert!(h.app.outbox().list().is_empty(), "{}: no SMS expected", fixture.file),
    }
}

#[tokio::test]
async fn every_fixture_gets_its_contract_answer() {
    for fixture in FIXTURES {
        check(fixture).await;
    }
}

#[test]
fn every_fixture_file_is_listed_here() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(events_dir())
        .expect("events/ exists")
        .map(|entry| entry.expect("readable entry").file_name().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = FIXTURES.iter().map(|f| f.file.to_owned()).collect();
    assert_eq!(on_disk, listed, "events/ and FIXTURES must name the same files");
}

#[test]
fn the_oversized_fixture_is_over_the_limit() {
    // Guards the fixture itself: trimmed below the limit it would test nothing.
    let raw = std::fs::read_to_string(events_dir().join("send-oversized-body.json")).expect("fixture exists");
    let event: Value = serde_json::from_str(&raw).expect("valid JSON");
    let body = event["body"].as_str().expect("a string body");
    assert!(body.len() > otp_core::http::MAX_BODY_BYTES);
}

/// An SMS provider that never answers.
struct Hanging;

#[async_trait::async_trait]
impl otp_core::ports::CodeSender for Hanging {
    async fn send(
        &self,
        _: &otp_core::ports::CodeMessage,
    ) -> Result<otp_core::ports::ProviderReceipt, otp_core::ports::DeliveryError> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_backend_that_outlasts_the_deadline_gets_503_in_time() {
    let app = TestApp::builder().sms(Arc::new(Hanging)).start().await;
    let now_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    let mut context = lambda_http::Context::default();
    context.deadline = now_ms + 800;
    let request = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"phone":"+14155550123"}"#))
        .unwrap_or_default()
        .with_lambda_context(context);
    let started = std::time::Instant::now();
    let response = otp_core::http::lambda::handle(&app.api, otp_core::http::SEND_OTP_FUNCTION, request).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(started.elapsed() < std::time::Duration::from_millis(800), "answered before the deadline");
}
