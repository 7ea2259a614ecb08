//! Log hygiene: the logs of real traffic (a send with a Twilio failure and a retry, a
//! refused number, a wrong verify, a right verify) are JSON lines carrying the Lambda
//! request id, and hold no code, no secret and no whole phone number.
//! Its own test binary: the capturing subscriber sees only this test's logs.

use fake_twilio::Fault;
use otp_testkit::twilio::TwilioSetup;
use otp_testkit::{AUTH_TOKEN, CLIENT_IP, PEPPER, SESSION_SECRET, TestApp, capture_logs, code_in};
use serde_json::Value;
use tracing::Instrument;

const PHONE: &str = "+16505550100";
const REFUSED: &str = "+16505550177";

#[tokio::test]
async fn logs_carry_the_request_id_and_no_code_secret_or_number() {
    // Debug: stricter than production's info, so a leak at a lower level is caught too.
    let (logs, _guard) = capture_logs("debug");
    let app = TestApp::builder().twilio(TwilioSetup::default()).start().await;
    app.fake_twilio().fail_number(REFUSED, 21614);
    app.fake_twilio().push_faults([Fault::Status { status: 429 }]);

    // The span lambda_runtime opens around each invocation (`Lambda runtime invoke`).
    let invoke = |id: &str| tracing::info_span!("Lambda runtime invoke", requestId = id);

    let reply = app.send("(650) 555-0100").instrument(invoke("req-send-1")).await;
    // Without `defaultCountry` a national number is refused; with it, it is read as US.
    assert_eq!(reply.status, 400, "{}", reply.body);
    let reply = app
        .post(
            otp_core::Endpoint::SendOtp,
            serde_json::json!({ "phone": "(650) 555-0100", "defaultCountry": "US", "locale": "de" }),
            CLIENT_IP,
        )
        .instrument(invoke("req-send-2"))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let reply = app.send(REFUSED).instrument(invoke("req-send-3")).await;
    assert_eq!(reply.status, 422, "{}", reply.body);

    let messages = app.fake_twilio().messages();
    assert_eq!(messages.len(), 1);
    let code = code_in(&messages[0].body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let reply = app.verify(PHONE, wrong).instrument(invoke("req-verify-1")).await;
    assert_eq!(reply.status, 401);
    let reply = app.verify(PHONE, &code).instrument(invoke("req-verify-2")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["token"].as_str().expect("a session token").to_owned();
    assert_eq!(app.fake_twilio().attempts().iter().map(|a| a.status).collect::<Vec<_>>(), [429, 201, 400]);

    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    let event = |name: &str| lines.iter().filter(|l| l["fields"]["event"] == name).cloned().collect::<Vec<_>>();
    // The events that tell the story are there, each under its invocation's request id.
    for (name, request_id) in [
        ("twilio_retry", "req-send-2"),
        ("twilio_accepted", "req-send-2"),
        ("sms_sent", "req-send-2"),
        ("sms_refused", "req-send-3"),
        ("verify_judged", "req-verify-1"),
        ("verify_judged", "req-verify-2"),
    ] {
        let found = event(name);
        assert!(found.iter().any(|l| l["span"]["requestId"] == request_id), "{name} under {request_id} in:\n{text}");
    }
    assert!(text.contains("+1********00"), "numbers appear masked to their country code and last two digits:\n{text}");

    // Twilio's message SIDs are hex: their digits may happen to spell the code.
    let mut scrubbed = text.clone();
    for message in &messages {
        scrubbed = scrubbed.replace(&message.sid, "SM<sid>");
    }
    let forbidden = [
        ("the code", code.as_str()),
        ("the session token", token.as_str()),
        ("the Twilio auth token", AUTH_TOKEN),
        ("the code pepper", PEPPER),
        ("the session secret", SESSION_SECRET),
        ("the number in E.164", PHONE),
        ("the number's digits", "16505550100"),
        ("the national number", "6505550100"),
        ("the national number as typed", "(650) 555-0100"),
        ("the refused number", "6505550177"),
    ];
    for (what, value) in forbidden {
        assert!(!scrubbed.contains(value), "{what} ({value}) is in the logs:\n{text}");
    }
}

const API_KEY: &str = "EXAMPLE-not-a-real-api-key-000000000000";
const SOURCE_IP: &str = "203.0.113.7";

/// An API Gateway REST event (the `events/` fixture's shape) for `endpoint` with `body`,
/// as the Lambda runtime hands it to the function.
fn event(endpoint: otp_core::Endpoint, body: &serde_json::Value) -> lambda_http::Request {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events/send-ok.json");
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    event["path"] = endpoint.path().into();
    event["resource"] = endpoint.path().into();
    event["requestContext"]["resourcePath"] = endpoint.path().into();
    event["body"] = body.to_string().into();
    event["headers"]["Content-Length"] = body.to_string().len().to_string().into();
    lambda_http::request::from_str(&event.to_string()).expect("an API Gateway REST event")
}

/// At `RUST_LOG=trace`, through the Lambda path (event in, response out), nothing that
/// identifies the caller or grants access reaches the log: not the code, the token, the
/// secrets, the number, the client's address, the API key, or the raw event (which the
/// Lambda runtime logs at trace: its target is capped at info).
#[tokio::test]
async fn at_trace_the_lambda_path_logs_no_code_secret_number_address_key_or_event() {
    let (logs, _guard) = capture_logs("trace");
    let app = TestApp::builder().twilio(TwilioSetup::default()).start().await;
    let invoke = |id: &str| tracing::info_span!("Lambda runtime invoke", requestId = id);
    let send_body = serde_json::json!({ "phone": PHONE, "locale": "en" });
    let raw_event = event(otp_core::Endpoint::SendOtp, &send_body);
    // What lambda_runtime logs at trace and debug: the whole event, body and headers.
    tracing::trace!(target: "lambda_runtime::layers::api_client", event = ?raw_event, "raw invocation event");
    tracing::debug!(target: "lambda_http", headers = ?raw_event.headers(), "request");
    let response = otp_core::http::lambda::handle(&app.api, otp_core::http::SEND_OTP_FUNCTION, raw_event)
        .instrument(invoke("req-trace-send"))
        .await;
    assert_eq!(response.status(), 202);
    let code = code_in(&app.fake_twilio().messages()[0].body);
    let verify_body = serde_json::json!({ "phone": PHONE, "code": code });
    let response = otp_core::http::lambda::handle(
        &app.api,
        otp_core::http::VERIFY_OTP_FUNCTION,
        event(otp_core::Endpoint::VerifyOtp, &verify_body),
    )
    .instrument(invoke("req-trace-verify"))
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(response.body().as_ref()).expect("JSON");
    let token = body["token"].as_str().expect("a token").to_owned();

    let text = logs.text();
    assert!(text.contains("\"sms_sent\"") && text.contains("req-trace-verify"), "the story is logged:\n{text}");
    let mut scrubbed = text.clone();
    for message in app.fake_twilio().messages() {
        scrubbed = scrubbed.replace(&message.sid, "SM<sid>");
    }
    for (what, value) in [
        ("the code", code.as_str()),
        ("the session token", token.as_str()),
        ("the Twilio auth token", AUTH_TOKEN),
        ("the code pepper", PEPPER),
        ("the session secret", SESSION_SECRET),
        ("the number", "6505550100"),
        ("the client's address", SOURCE_IP),
        ("the API key", API_KEY),
        ("the raw event", "CloudFront-Viewer-Country"),
    ] {
        assert!(!scrubbed.contains(value), "{what} ({value}) is in the logs:\n{text}");
    }
}
