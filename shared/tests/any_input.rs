//! Whatever arrives, each handler answers with one of API.md's responses: a status from
//! the contract and a JSON body of the success or error shape. Never a panic.

use otp_core::Endpoint;
use otp_testkit::{TestApp, request};
use proptest::prelude::*;

const CONTRACT_ERRORS: &[(u16, &str)] = &[
    (400, "invalid_request"),
    (400, "invalid_phone"),
    (400, "invalid_code_format"),
    (400, "captcha_required"),
    (403, "captcha_failed"),
    (401, "incorrect_code"),
    (403, "country_not_allowed"),
    (405, "method_not_allowed"),
    (410, "code_expired"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
    (422, "phone_unreachable"),
    (429, "rate_limited"),
    (429, "too_many_attempts"),
    (502, "sms_failed"),
    (503, "service_unavailable"),
    (500, "internal_error"),
];

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    let phone = prop_oneof![
        Just("+14155550123".to_owned()),
        Just("00 44 7400 123456".to_owned()),
        "[+0-9 ()\\-.]{0,20}",
        "\\PC{0,30}",
    ];
    let code = prop_oneof![Just("123456".to_owned()), "[0-9]{0,12}", "\\PC{0,12}"];
    let country = prop_oneof![Just("US".to_owned()), Just("gb".to_owned()), "[A-Za-z]{0,3}"];
    let json_body = (phone, code, country, any::<bool>(), any::<u8>()).prop_map(|(p, c, cc, numeric, n)| {
        let code = if numeric { serde_json::json!(n) } else { serde_json::json!(c) };
        serde_json::json!({ "phone": p, "code": code, "defaultCountry": cc, "locale": "de" }).to_string().into_bytes()
    });
    prop_oneof![json_body, proptest::collection::vec(any::<u8>(), 0..300), "\\PC{0,200}".prop_map(String::into_bytes)]
}

/// Cases per handler: 300 by default; `scripts/test` runs 10,000 (`OTP_PROPTEST_CASES`),
/// and a longer run is `OTP_PROPTEST_CASES=200000 cargo test -p otp-core --test main any_input::`.
fn cases() -> u32 {
    std::env::var("OTP_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300)
}

/// One request to `endpoint` on a fresh service, and a check of its answer: always one of
/// the contract's, and the one the input alone decides where it decides one.
fn check(endpoint: Endpoint, method: &str, content_type: Option<&str>, body: Vec<u8>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let json_object = serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v.is_object());
    let reply = runtime.block_on(async {
        let app = TestApp::new().await;
        request(&app.api, endpoint, method, content_type, body, otp_testkit::CLIENT_IP).await
    });
    let code = reply.error_code().to_owned();
    match (method, content_type) {
        ("OPTIONS", _) => prop_assert_eq!(reply.status, 204),
        (m, _) if m != "POST" => prop_assert_eq!((reply.status, code.as_str()), (405, "method_not_allowed")),
        (_, None | Some("text/plain")) => {
            prop_assert_eq!((reply.status, code.as_str()), (415, "unsupported_media_type"))
        }
        _ if !json_object => prop_assert_eq!((reply.status, code.as_str()), (400, "invalid_request")),
        _ => match reply.status {
            202 => {
                prop_assert_eq!(endpoint, Endpoint::SendOtp);
                prop_assert_eq!(&reply.body["status"], "pending");
            }
            200 => prop_assert_eq!(&reply.body["status"], "approved"),
            status => {
                prop_assert!(CONTRACT_ERRORS.contains(&(status, code.as_str())), "{} {}", status, code);
                prop_assert!(reply.body["error"]["message"].is_string());
            }
        },
    }
    prop_assert_eq!(reply.header("cache-control"), Some("no-store"), "every answer");
    Ok(())
}

fn method_strategy() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("POST"), Just("POST"), Just("GET"), Just("OPTIONS"), Just("PUT"), Just("DELETE")]
}

fn content_type_strategy() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(Some("application/json")),
        Just(None),
        Just(Some("text/plain")),
        Just(Some("application/json; charset=utf-8"))
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]
    #[test]
    fn every_input_to_send_gets_its_contract_answer(
        method in method_strategy(),
        content_type in content_type_strategy(),
        body in body_strategy(),
    ) {
        check(Endpoint::SendOtp, method, content_type, body)?;
    }

    #[test]
    fn every_input_to_verify_gets_its_contract_answer(
        method in method_strategy(),
        content_type in content_type_strategy(),
        body in body_strategy(),
    ) {
        check(Endpoint::VerifyOtp, method, content_type, body)?;
    }
}
