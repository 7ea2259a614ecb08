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

/// The URL the callback cases are signed over.
const STATUS_URL: &str = "https://api.example.com/prod/api/sms-status";

/// A status callback: Twilio's fields with any values, or any bytes; signed or not.
fn callback_strategy() -> impl Strategy<Value = (Vec<u8>, Option<String>, bool)> {
    let sid = prop_oneof![
        Just("SM0123456789abcdef0123456789abcdef".to_owned()),
        Just("CA0123456789abcdef0123456789abcdef".to_owned()),
        "[A-Z]{2}[0-9a-f]{30,34}",
        "\\PC{0,40}",
    ];
    let status = prop_oneof![
        Just("delivered".to_owned()),
        Just("undelivered".to_owned()),
        Just("completed".to_owned()),
        Just("received".to_owned()),
        "[a-z\\-]{0,12}",
        "\\PC{0,12}",
    ];
    let code = prop_oneof![Just(String::new()), Just("30003".to_owned()), "\\PC{0,8}"];
    let form = (sid, status, code, any::<bool>(), 0u8..3).prop_map(|(sid, status, code, call, signing)| {
        let (sid_name, status_name) = if call { ("CallSid", "CallStatus") } else { ("MessageSid", "MessageStatus") };
        let params: Vec<(String, String)> = vec![
            (sid_name.into(), sid.clone()),
            (status_name.into(), status.clone()),
            ("ErrorCode".into(), code.clone()),
            ("To".into(), "+14155550123".into()),
        ];
        let body = serde_urlencoded::to_string(&params).unwrap_or_default().into_bytes();
        let signature = match signing {
            0 => Some(fake_twilio::sign(otp_testkit::AUTH_TOKEN, STATUS_URL, &params)),
            1 => Some(fake_twilio::sign("another-token", STATUS_URL, &params)),
            _ => None,
        };
        let readable = otp_core::http::parse_status_callback(&params).is_ok();
        (body, signature, signing == 0 && readable)
    });
    prop_oneof![
        form,
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| (b, Some("x".repeat(28)), false)),
        "\\PC{0,200}".prop_map(|s| (s.into_bytes(), None, false)),
    ]
}

fn check_callback(
    method: &str,
    content_type: Option<&str>,
    (body, signature, taken): (Vec<u8>, Option<String>, bool),
) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (status, code, headers) = runtime.block_on(async {
        let app = TestApp::builder()
            .settings(&[("OTP_STATUS_CALLBACK_URL", STATUS_URL)])
            .secrets(otp_testkit::twilio::secrets(otp_testkit::AUTH_TOKEN, "TWILIO_FROM", otp_testkit::FROM))
            .start()
            .await;
        let mut request = http::Request::builder().method(method).uri("/api/sms-status");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if let Some(signature) = &signature {
            request = request.header("x-twilio-signature", signature.as_str());
        }
        let request = request.body(body).unwrap();
        let response = app.api.handle(Endpoint::SmsStatus, &request, None).await;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap_or(serde_json::Value::Null);
        (status, body["error"]["code"].as_str().unwrap_or("<none>").to_owned(), headers)
    });
    let form = content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    match method {
        "OPTIONS" => prop_assert_eq!(status, 204),
        "POST" if !form => prop_assert_eq!((status, code.as_str()), (415, "unsupported_media_type")),
        "POST" if taken => prop_assert_eq!(status, 204),
        "POST" => prop_assert!(
            [(400, "invalid_request"), (403, "forbidden")].contains(&(status, code.as_str())),
            "{} {}",
            status,
            code
        ),
        _ => prop_assert_eq!((status, code.as_str()), (405, "method_not_allowed")),
    }
    prop_assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
    Ok(())
}

fn callback_content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        Just(Some("application/x-www-form-urlencoded")),
        Just(Some("application/x-www-form-urlencoded; charset=utf-8")),
        Just(Some("application/json")),
        Just(None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]
    #[test]
    fn every_input_to_the_status_callback_gets_its_contract_answer(
        method in method_strategy(),
        content_type in callback_content_type(),
        callback in callback_strategy(),
    ) {
        check_callback(method, content_type, callback)?;
    }
}
