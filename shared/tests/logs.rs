//! Log hygiene: the logs of real traffic (a send with a Twilio failure and a retry, a
//! refused number, a wrong verify, a right verify) are JSON lines carrying the Lambda
//! request id, and hold no code, no secret and no whole phone number.
//! Its own test binary: the capturing subscriber sees only this test's logs.

mod common;

use common::*;
use fake_twilio::Fault;
use serde_json::Value;
use tracing::Instrument;

const PHONE: &str = "+16505550100";
const REFUSED: &str = "+16505550177";

#[tokio::test]
async fn logs_carry_the_request_id_and_no_code_secret_or_number() {
    // Debug: stricter than production's info, so a leak at a lower level is caught too.
    let (logs, _guard) = capture_logs("debug");
    let h = harness(Setup::default()).await;
    h.fake.fail_number(REFUSED, 21614);
    h.fake.push_faults([Fault::Status { status: 503 }]);

    // The span lambda_runtime opens around each invocation (`Lambda runtime invoke`).
    let invoke = |id: &str| tracing::info_span!("Lambda runtime invoke", requestId = id);

    let (status, body) = send(&h.api, "(650) 555-0100").instrument(invoke("req-send-1")).await;
    // Without `defaultCountry` a national number is refused; with it, it is read as US.
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &h.api,
        otp_core::Endpoint::SendOtp,
        serde_json::json!({ "phone": "(650) 555-0100", "defaultCountry": "US", "locale": "de" }),
    )
    .instrument(invoke("req-send-2"))
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = send(&h.api, REFUSED).instrument(invoke("req-send-3")).await;
    assert_eq!(status, 422, "{body}");

    let messages = h.fake.messages();
    assert_eq!(messages.len(), 1);
    let code = code_in(&messages[0].body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, _) = verify(&h.api, PHONE, wrong).instrument(invoke("req-verify-1")).await;
    assert_eq!(status, 401);
    let (status, body) = verify(&h.api, PHONE, &code).instrument(invoke("req-verify-2")).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("a session token").to_owned();
    assert_eq!(h.fake.attempts().iter().map(|a| a.status).collect::<Vec<_>>(), [503, 201, 400]);

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
