//! Black-box tests of both handlers: every row of API.md's error table, both success
//! shapes, CORS, and the edge checks, through `Api::handle` as Lambda and the local run call it.

use otp_core::Endpoint;
use otp_core::domain::phone::compiled_patterns;
use otp_testkit::{ORIGIN, TestApp, request, t0, tokens, wrong_code};
use rusty_fork::rusty_fork_test;
use serde_json::json;

const PHONE: &str = "+14155550123";

#[tokio::test]
async fn send_answers_202_with_the_contract_shape() {
    let app = TestApp::new().await;
    let reply =
        app.post(Endpoint::SendOtp, json!({ "phone": "+1 (415) 555-0123", "locale": "en" }), "198.51.100.7").await;
    assert_eq!(reply.status, 202);
    assert_eq!(
        reply.body,
        json!({
            "status": "pending",
            "to": PHONE,
            "channel": "sms",
            "expiresAt": "2026-11-24T15:10:00Z",
            "resendAfterSeconds": 60,
            "channels": ["sms"]
        })
    );
    assert_eq!(reply.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let sms = app.outbox().list();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].to, PHONE);
    assert_eq!(app.last_code(PHONE).len(), 6);
}

#[tokio::test]
async fn send_reads_every_listed_format() {
    let cases = [
        (json!({ "phone": "+14155550123" }), PHONE),
        (json!({ "phone": "+1-415-555-0123" }), PHONE),
        (json!({ "phone": "00 44 7400 123456" }), "+447400123456"),
        (json!({ "phone": "(415) 555-0123", "defaultCountry": "US" }), PHONE),
        (json!({ "phone": "07400 123456", "defaultCountry": "gb", "locale": "fr" }), "+447400123456"),
    ];
    for (i, (body, expected)) in cases.into_iter().enumerate() {
        let app = TestApp::new().await;
        let reply = app.post(Endpoint::SendOtp, body.clone(), &format!("198.51.100.{i}")).await;
        assert_eq!(reply.status, 202, "{body}: {:?}", reply.body);
        assert_eq!(reply.body["to"], expected, "{body}");
    }
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_locale_picks_the_template() {
    let app = TestApp::new().await;
    let reply = app
        .post(Endpoint::SendOtp, json!({ "phone": PHONE, "locale": "es-MX", "extra": [1, 2] }), "198.51.100.7")
        .await;
    assert_eq!(reply.status, 202);
    assert!(app.outbox().list()[0].body.starts_with("Tu clave es "));
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let app = TestApp::new().await;
    let bodies: [&[u8]; 12] = [
        b"",
        b"not json",
        b"{\"phone\": ",
        b"[]",
        b"\"+14155550123\"",
        b"null",
        b"{}",
        b"{\"phone\": 14155550123}",
        b"{\"phone\": null}",
        b"{\"phone\": \"+14155550123\", \"defaultCountry\": 1}",
        b"{\"phone\": \"+14155550123\", \"locale\": {}}",
        b"{\"phone\": \"4155550123\", \"defaultCountry\": \"Narnia\"}",
    ];
    for body in bodies {
        let reply = request(&app.api, Endpoint::SendOtp, "POST", Some("application/json"), body, "198.51.100.7").await;
        assert_eq!((reply.status, reply.error_code()), (400, "invalid_request"), "{}", String::from_utf8_lossy(body));
        assert!(reply.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let verify_bodies = [
        json!({ "phone": PHONE }),
        json!({ "code": "123456" }),
        json!({ "phone": PHONE, "code": 123456 }),
        json!({ "phone": [PHONE], "code": "123456" }),
    ];
    for body in verify_bodies {
        let reply = app.post(Endpoint::VerifyOtp, body.clone(), "198.51.100.7").await;
        assert_eq!((reply.status, reply.error_code()), (400, "invalid_request"), "{body}");
    }
    assert!(app.outbox().list().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn bad_numbers_are_invalid_phone() {
    let app = TestApp::new().await;
    let landlines = ["+39 031 2342 2785", "+39 0431 234 5678", "+247 040914"]; // Italian fixed lines, a UAN number
    let garbage = ["", "hello", "4155550123", "+1 415 555", "+49 30 12345678", "+1 800 555 0199", "+999999999999"];
    for phone in garbage.into_iter().chain(landlines) {
        let reply = app.send(phone).await;
        assert_eq!((reply.status, reply.error_code()), (400, "invalid_phone"), "{phone}");
        let reply = app.verify(phone, "123456").await;
        assert_eq!((reply.status, reply.error_code()), (400, "invalid_phone"), "{phone}");
    }
    assert!(app.outbox().list().is_empty());
}

#[tokio::test]
async fn countries_outside_the_allow_list_are_refused() {
    let app = TestApp::with(&[("OTP_ALLOWED_COUNTRIES", "GB,DE")]).await;
    let reply = app.send(PHONE).await;
    assert_eq!((reply.status, reply.error_code()), (403, "country_not_allowed"));
    assert!(app.outbox().list().is_empty());
    assert_eq!(app.send("+447400123456").await.status, 202);
}

// It counts what the process-wide pattern cache holds: in a process of its own, or the
// numbers other tests parse meanwhile (or parsed before) would change the count.
rusty_fork_test! {
    #[test]
    fn numbers_of_no_allowed_calling_code_are_answered_before_parsing() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        runtime.block_on(no_allowed_calling_code_is_parsed());
    }
}

async fn no_allowed_calling_code_is_parsed() {
    let app = TestApp::with(&[("OTP_ALLOWED_COUNTRIES", "GB")]).await;
    assert_eq!(app.send("+447400123456").await.status, 202);
    let before = compiled_patterns();
    // Numbers of countries that nothing else in this process has parsed: were they parsed,
    // their patterns would be compiled into the cache.
    for phone in ["+81 90-1234-5678", "+254 712 345678", "+880 1812-345678", "+51 912 345 678", "0049 1512 3456789"] {
        let reply = app.send(phone).await;
        assert_eq!((reply.status, reply.error_code()), (403, "country_not_allowed"), "{phone}");
    }
    let reply =
        app.post(Endpoint::SendOtp, json!({ "phone": "06 12 34 56 78", "defaultCountry": "FR" }), "192.0.2.9").await;
    assert_eq!((reply.status, reply.error_code()), (403, "country_not_allowed"));
    for phone in ["+81 90-1234-5678", "+254 712 345678"] {
        let reply = app.verify(phone, "123456").await;
        assert_eq!((reply.status, reply.error_code()), (410, "code_expired"), "no code is sent there: {phone}");
        let reply = app.verify(phone, "12x").await;
        assert_eq!((reply.status, reply.error_code()), (400, "invalid_code_format"), "{phone}");
    }
    assert_eq!(compiled_patterns(), before, "none of them was parsed");
    // A calling code shared with an allowed region is parsed, and judged by its region.
    let reply = app.send("+44 1481 256789").await; // a Guernsey landline, +44 like GB
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(app.outbox().list().len(), 1);
}

#[tokio::test]
async fn only_post_and_options_are_allowed() {
    let app = TestApp::new().await;
    for endpoint in [Endpoint::SendOtp, Endpoint::VerifyOtp] {
        for method in ["GET", "PUT", "DELETE", "PATCH", "HEAD"] {
            let reply = request(&app.api, endpoint, method, Some("application/json"), "{}", "198.51.100.7").await;
            assert_eq!((reply.status, reply.error_code()), (405, "method_not_allowed"), "{method}");
            assert_eq!(reply.header("allow"), Some("POST, OPTIONS"));
        }
    }
}

#[tokio::test]
async fn bodies_over_4_kib_are_refused() {
    let app = TestApp::new().await;
    let padding = "x".repeat(4096);
    let big = json!({ "phone": PHONE, "pad": padding }).to_string();
    let reply = request(&app.api, Endpoint::SendOtp, "POST", Some("application/json"), big, "198.51.100.7").await;
    assert_eq!((reply.status, reply.error_code()), (413, "payload_too_large"));
    // Exactly 4096 bytes is still fine.
    let base = json!({ "phone": PHONE, "pad": "" }).to_string();
    let fits = json!({ "phone": PHONE, "pad": "x".repeat(4096 - base.len()) }).to_string();
    assert_eq!(fits.len(), 4096);
    let reply = request(&app.api, Endpoint::SendOtp, "POST", Some("application/json"), fits, "198.51.100.7").await;
    assert_eq!(reply.status, 202);
}

#[tokio::test]
async fn only_json_is_accepted() {
    let app = TestApp::new().await;
    let body = json!({ "phone": PHONE }).to_string();
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("multipart/form-data")] {
        let reply = request(&app.api, Endpoint::SendOtp, "POST", ct, body.clone(), "198.51.100.7").await;
        assert_eq!((reply.status, reply.error_code()), (415, "unsupported_media_type"), "{ct:?}");
    }
    let reply =
        request(&app.api, Endpoint::SendOtp, "POST", Some("application/json; charset=utf-8"), body, "198.51.100.7")
            .await;
    assert_eq!(reply.status, 202);
}

#[tokio::test]
async fn the_right_code_approves_once_with_a_valid_token() {
    let app = TestApp::new().await;
    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.last_code(PHONE);
    app.advance(30);
    let reply = app.verify(PHONE, &code).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["status"], "approved");
    assert_eq!(reply.body["to"], PHONE);
    assert_eq!(reply.body["tokenExpiresAt"], "2026-11-24T16:00:30Z");
    let token = reply.body["token"].as_str().expect("a token");
    // Checked as a backend would, with the served public keys alone.
    let jwks = app.jwks().await;
    assert_eq!(jwks.status, 200, "{}", jwks.body);
    let claims = tokens::check(token, &jwks.body).expect("the token checks against the JWK Set");
    assert_eq!(claims["sub"], PHONE);
    assert_eq!(claims["phone_number"], PHONE);
    assert_eq!(claims["phone_number_verified"], true);
    assert_eq!(claims["amr"], json!(["sms"]));
    assert_eq!((claims["iss"].as_str(), claims["aud"].as_str()), (Some(tokens::ISSUER), Some(tokens::AUDIENCE)));
    assert_eq!(claims["iat"], t0().timestamp() + 30);
    assert_eq!(claims["exp"], t0().timestamp() + 30 + 3600);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));

    let again = app.verify(PHONE, &code).await;
    assert_eq!((again.status, again.error_code()), (410, "code_expired"));
}

#[tokio::test]
async fn wrong_codes_count_down_then_lock() {
    let app = TestApp::new().await;
    app.send(PHONE).await;
    let code = app.last_code(PHONE);
    let wrong = wrong_code(&code);
    for left in (1..=4).rev() {
        let reply = app.verify(PHONE, &wrong).await;
        assert_eq!((reply.status, reply.error_code()), (401, "incorrect_code"));
        assert_eq!(reply.body["error"]["attemptsRemaining"], left);
    }
    let reply = app.verify(PHONE, &wrong).await;
    assert_eq!((reply.status, reply.error_code()), (429, "too_many_attempts"));
    let reply = app.verify(PHONE, &code).await;
    assert_eq!((reply.status, reply.error_code()), (410, "code_expired"), "the right code no longer works");
}

#[tokio::test]
async fn codes_expire_and_unknown_numbers_have_none() {
    let app = TestApp::new().await;
    let reply = app.verify(PHONE, "123456").await;
    assert_eq!((reply.status, reply.error_code()), (410, "code_expired"));
    app.send(PHONE).await;
    let code = app.last_code(PHONE);
    app.advance(600);
    let reply = app.verify(PHONE, &code).await;
    assert_eq!((reply.status, reply.error_code()), (410, "code_expired"));
}

#[tokio::test]
async fn code_format_is_checked_against_the_configured_length() {
    let app = TestApp::with(&[("OTP_CODE_LENGTH", "8")]).await;
    for code in ["123456", "123456789", "1234567a", " 12345678", "1234 678", ""] {
        let reply = app.verify(PHONE, code).await;
        assert_eq!((reply.status, reply.error_code()), (400, "invalid_code_format"), "{code:?}");
    }
    app.send(PHONE).await;
    let code = app.last_code(PHONE);
    assert_eq!(code.len(), 8);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
}

#[tokio::test]
async fn a_resend_replaces_the_code_and_resets_attempts() {
    let app = TestApp::new().await;
    app.send(PHONE).await;
    let first = app.last_code(PHONE);
    let wrong = wrong_code(&first);
    app.verify(PHONE, &wrong).await;
    app.verify(PHONE, &wrong).await;
    app.advance(60);
    assert_eq!(app.send(PHONE).await.status, 202);
    let mut second = app.last_code(PHONE);
    // One chance in a million that the new code has the old one's digits: send again.
    while second == first {
        app.advance(60);
        assert_eq!(app.send(PHONE).await.status, 202);
        second = app.last_code(PHONE);
    }
    let reply = app.verify(PHONE, &first).await;
    assert_eq!(reply.body["error"]["attemptsRemaining"], 4, "fresh attempts, old code refused");
    assert_eq!(app.verify(PHONE, &second).await.status, 200);
}

#[tokio::test]
async fn resend_cooldown_answers_429_with_retry_after() {
    let app = TestApp::new().await;
    assert_eq!(app.send(PHONE).await.status, 202);
    app.advance(20);
    let reply = app.send(PHONE).await;
    assert_eq!((reply.status, reply.error_code()), (429, "rate_limited"));
    assert_eq!(reply.body["error"]["retryAfterSeconds"], 40);
    assert_eq!(reply.header("retry-after"), Some("40"));
    assert_eq!(app.outbox().list().len(), 1, "no second SMS");
    app.advance(40);
    assert_eq!(app.send(PHONE).await.status, 202);
}

#[tokio::test]
async fn per_number_limit_holds_across_client_ips() {
    let app = TestApp::with(&[("OTP_RESEND_COOLDOWN_SECONDS", "0")]).await;
    for i in 0..5 {
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), &format!("203.0.113.{i}")).await;
        assert_eq!(reply.status, 202);
    }
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), "203.0.113.99").await;
    assert_eq!((reply.status, reply.error_code()), (429, "rate_limited"));
    assert_eq!(reply.body["error"]["retryAfterSeconds"], 3600);
}

#[tokio::test]
async fn per_range_limit_holds_across_numbers_and_client_ips() {
    let app = TestApp::with(&[("OTP_SENDS_PER_RANGE", "3")]).await;
    for i in 0..3 {
        let reply =
            app.post(Endpoint::SendOtp, json!({ "phone": format!("+1415555010{i}") }), &format!("203.0.113.{i}")).await;
        assert_eq!(reply.status, 202);
    }
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": "+14155550103" }), "203.0.113.3").await;
    assert_eq!((reply.status, reply.error_code()), (429, "rate_limited"));
    assert_eq!(reply.body["error"]["retryAfterSeconds"], 3600);
    assert_eq!(app.outbox().list().len(), 3, "no fourth SMS");
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": "+14155551103" }), "203.0.113.4").await;
    assert_eq!(reply.status, 202, "a number of another block of 1000");
}

#[tokio::test]
async fn per_range_limit_is_off_by_default() {
    let app = TestApp::new().await;
    for i in 0..8 {
        let reply =
            app.post(Endpoint::SendOtp, json!({ "phone": format!("+1415555010{i}") }), &format!("203.0.113.{i}")).await;
        assert_eq!(reply.status, 202);
    }
}

#[tokio::test]
async fn per_ip_limit_holds_across_numbers_and_ignores_forwarded_for() {
    let app = TestApp::new().await;
    let numbers: Vec<String> = (0..6).map(|i| format!("+1415555010{i}")).collect();
    for number in &numbers[..5] {
        assert_eq!(app.post(Endpoint::SendOtp, json!({ "phone": number }), "192.0.2.1").await.status, 202);
    }
    // A spoofed X-Forwarded-For changes nothing: the limit is on the platform's client IP.
    let request = http::Request::builder()
        .method("POST")
        .uri("/api/send-otp")
        .header("content-type", "application/json")
        .header("x-forwarded-for", "10.9.8.7")
        .body(json!({ "phone": numbers[5] }).to_string())
        .unwrap();
    let response = app.api.handle(Endpoint::SendOtp, &request, Some("192.0.2.1".parse().unwrap())).await;
    assert_eq!(response.status(), 429);
    assert_eq!(app.post(Endpoint::SendOtp, json!({ "phone": numbers[5] }), "192.0.2.2").await.status, 202);
}

#[tokio::test]
async fn missing_secrets_answer_503_on_every_request() {
    let empty = otp_core::secrets::env::EnvSecrets::from_lookup(|_| None);
    let app = TestApp::builder().secrets(empty).start_unchecked().await;
    for endpoint in [Endpoint::SendOtp, Endpoint::VerifyOtp] {
        let reply = app.post(endpoint, json!({ "phone": PHONE, "code": "123456" }), "198.51.100.7").await;
        assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"), "{endpoint:?}");
        assert_eq!(reply.header("retry-after"), Some("5"));
    }
    assert!(app.outbox().list().is_empty());
}

#[tokio::test]
async fn a_service_that_failed_to_start_answers_503() {
    let api = otp_core::Api::new(
        otp_core::http::Cors::new(&[ORIGIN.to_owned()]),
        Err(otp_core::http::StartupError("test".into())),
    );
    let request = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(json!({ "phone": PHONE }).to_string())
        .unwrap();
    let response = api.handle(Endpoint::SendOtp, &request, None).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(response.body().contains("service_unavailable"));
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = TestApp::with(&[("OTP_ALLOWED_ORIGINS", "https://a.example,https://b.example")]).await;
    let preflight = |origin: &'static str| {
        http::Request::builder()
            .method("OPTIONS")
            .uri("/api/send-otp")
            .header("origin", origin)
            .body(Vec::new())
            .unwrap()
    };
    let response = app.api.handle(Endpoint::SendOtp, &preflight("https://b.example"), None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.headers()["access-control-allow-origin"], "https://b.example");
    assert_eq!(response.headers()["vary"], "Origin");
    assert!(response.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(response.headers()["access-control-allow-headers"].to_str().unwrap().contains("Content-Type"));

    let response = app.api.handle(Endpoint::VerifyOtp, &preflight("https://evil.example"), None).await;
    assert_eq!(response.headers()["access-control-allow-origin"], "https://a.example");
    assert_ne!(response.headers()["access-control-allow-origin"], "*");

    // Errors carry CORS too, so the frontend can read them.
    let reply = request(&app.api, Endpoint::SendOtp, "POST", Some("text/plain"), "x", "198.51.100.7").await;
    assert_eq!(reply.status, 415);
    assert_eq!(reply.header("vary"), Some("Origin"));
    assert!(reply.header("access-control-allow-origin").is_some_and(|o| o != "*"));
}

#[tokio::test]
async fn ipv6_callers_share_the_limit_of_their_64() {
    let app = TestApp::new().await;
    for i in 0..5 {
        let reply = app
            .post(Endpoint::SendOtp, json!({ "phone": format!("+1415555011{i}") }), &format!("2001:db8:7:7::{i:x}"))
            .await;
        assert_eq!(reply.status, 202);
    }
    // A fresh address in the same /64 is no fresh budget; another /64 is.
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": "+14155550120" }), "2001:db8:7:7:abcd::99").await;
    assert_eq!((reply.status, reply.error_code()), (429, "rate_limited"));
    assert_eq!(app.post(Endpoint::SendOtp, json!({ "phone": "+14155550120" }), "2001:db8:7:8::1").await.status, 202);
}

/// An SMS provider whose code panics: a bug, not a failure it reports.
struct Panicking;

#[async_trait::async_trait]
impl otp_core::ports::CodeSender for Panicking {
    async fn send(
        &self,
        _: &otp_core::ports::CodeMessage,
    ) -> Result<otp_core::ports::ProviderReceipt, otp_core::ports::DeliveryError> {
        panic!("a bug in an adapter");
    }
}

#[tokio::test]
async fn a_panic_in_a_handler_answers_500_with_every_header() {
    let app = TestApp::builder().sms(std::sync::Arc::new(Panicking)).start().await;
    let request = http::Request::builder()
        .method("POST")
        .uri("/api/send-otp")
        .header("content-type", "application/json")
        .header("origin", ORIGIN)
        .body(json!({ "phone": PHONE }).to_string())
        .unwrap();
    let response = app.api.handle(Endpoint::SendOtp, &request, Some("192.0.2.1".parse().unwrap())).await;
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["error"]["code"], "internal_error");
    assert!(!response.body().contains("bug"), "nothing internal in the message");
    assert_eq!(response.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn verify_reads_default_country_as_send_does() {
    let app = TestApp::new().await;
    let bad = app
        .post(
            Endpoint::VerifyOtp,
            json!({ "phone": "4155550123", "code": "123456", "defaultCountry": "Atlantis" }),
            "198.51.100.7",
        )
        .await;
    assert_eq!((bad.status, bad.error_code()), (400, "invalid_request"));
    let send =
        app.post(Endpoint::SendOtp, json!({ "phone": "(415) 555-0123", "defaultCountry": "us" }), "198.51.100.7").await;
    assert_eq!(send.status, 202);
    let code = app.last_code(PHONE);
    let ok = app
        .post(
            Endpoint::VerifyOtp,
            json!({ "phone": "(415) 555-0123", "code": code, "defaultCountry": "us" }),
            "198.51.100.7",
        )
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_preflights_and_errors_included() {
    let app = TestApp::new().await;
    let replies = [
        request(&app.api, Endpoint::SendOtp, "OPTIONS", None, "", "198.51.100.7").await,
        request(&app.api, Endpoint::SendOtp, "GET", None, "", "198.51.100.7").await,
        request(&app.api, Endpoint::VerifyOtp, "POST", Some("application/json"), "{", "198.51.100.7").await,
        app.send(PHONE).await,
    ];
    for reply in replies {
        for (name, value) in otp_core::http::SECURITY_HEADERS {
            assert_eq!(reply.header(name), Some(value), "{name} on a {}", reply.status);
        }
        assert_eq!(reply.header("vary"), Some("Origin"));
        assert_eq!(reply.header("access-control-allow-origin"), Some(ORIGIN));
    }
}

/// `GET /.well-known/jwks.json`: the signing key's public half, by its RFC 7638 kid, with
/// every header of the contract but a cacheable `Cache-Control`.
#[tokio::test]
async fn the_jwk_set_lists_the_public_keys_and_may_be_cached() {
    let app = TestApp::new().await;
    let reply = app.jwks().await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let keys = reply.body["keys"].as_array().expect("a JWK Set");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    for (member, value) in [("kty", "EC"), ("crv", "P-256"), ("alg", "ES256"), ("use", "sig")] {
        assert_eq!(key[member], value, "{member}");
    }
    assert!(key.get("d").is_none(), "never the private part: {key}");
    let (x, y) = (key["x"].as_str().expect("x"), key["y"].as_str().expect("y"));
    let members = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    use base64::Engine;
    use sha2::Digest;
    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(members));
    assert_eq!(key["kid"], thumbprint.as_str(), "the kid is the RFC 7638 thumbprint");
    assert_eq!(reply.header("cache-control"), Some("public, max-age=300"));
    assert_eq!(reply.header("content-type"), Some("application/json; charset=utf-8"));
    for (name, value) in otp_core::http::SECURITY_HEADERS.iter().filter(|(name, _)| *name != "cache-control") {
        assert_eq!(reply.header(name), Some(*value), "{name}");
    }
    assert_eq!(reply.header("access-control-allow-origin"), Some(ORIGIN));

    for method in ["POST", "PUT", "DELETE"] {
        let reply = request(&app.api, Endpoint::Jwks, method, Some("application/json"), "{}", "198.51.100.7").await;
        assert_eq!((reply.status, reply.error_code()), (405, "method_not_allowed"), "{method}");
        assert_eq!((reply.header("allow"), reply.header("cache-control")), (Some("GET, OPTIONS"), Some("no-store")));
    }
    let preflight = request(&app.api, Endpoint::Jwks, "OPTIONS", None, "", "198.51.100.7").await;
    assert_eq!(preflight.status, 204);

    // Without usable secrets: the contract's 503, never cached.
    let empty = otp_core::secrets::env::EnvSecrets::from_lookup(|_| None);
    let down = TestApp::builder().secrets(empty).start_unchecked().await;
    let reply = down.jwks().await;
    assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"));
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

/// Secrets whose signing keys the test changes between requests, as an operator edits the
/// `token-signing-keys` parameter.
struct RotatingKeys(std::sync::Arc<std::sync::Mutex<String>>);

#[async_trait::async_trait]
impl otp_core::ports::SecretSource for RotatingKeys {
    async fn load(&self) -> Result<std::sync::Arc<otp_core::ports::Secrets>, otp_core::ports::SecretError> {
        let keys = self.0.lock().map(|k| k.clone()).unwrap_or_default();
        otp_testkit::secrets::secrets_with(&[("OTP_TOKEN_SIGNING_KEYS", &keys)]).load().await
    }
}

/// docs/DEPLOY.md's rotation, step by step: add the new key second, move it first, drop the
/// old one. At no step does a token that was valid stop checking against the served keys
/// before it was meant to (the old key's tokens, once it is dropped, are past their lifetime).
#[tokio::test]
async fn a_key_rotation_fails_no_sign_in() {
    use otp_testkit::{TOKEN_SIGNING_KEY as OLD, TOKEN_SIGNING_KEY_2 as NEW};
    let keys = std::sync::Arc::new(std::sync::Mutex::new(OLD.to_owned()));
    let source = RotatingKeys(keys.clone());
    let app = TestApp::builder().secrets(source).secret_ttl(std::time::Duration::ZERO).start().await;
    let set_keys = |pem: String| *keys.lock().expect("the keys") = pem;
    let mut n = 0;
    let mut sign_in = || {
        n += 1;
        let phone = format!("+1415555{:04}", 100 + n);
        let app = &app;
        async move {
            assert_eq!(app.send(&phone).await.status, 202);
            let reply = app.verify(&phone, &app.last_code(&phone)).await;
            assert_eq!(reply.status, 200, "{}", reply.body);
            reply.body["token"].as_str().expect("a token").to_owned()
        }
    };
    let kid = |token: &str| jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid).unwrap_or_default();
    let served = |reply: &otp_testkit::Reply| -> Vec<String> {
        reply.body["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["kid"].as_str().map(str::to_owned))
            .collect()
    };

    let before = sign_in().await;
    let old_kid = kid(&before);
    assert_eq!(served(&app.jwks().await), std::slice::from_ref(&old_kid));

    // 1. The new key goes in second: published, not yet signing.
    set_keys(format!("{OLD}{NEW}"));
    let jwks = app.jwks().await;
    let kids = served(&jwks);
    assert_eq!(kids.len(), 2);
    let new_kid = kids[1].clone();
    assert!(tokens::check(&before, &jwks.body).is_ok(), "a token of before the rotation checks");
    let during = sign_in().await;
    assert_eq!(kid(&during), old_kid, "the old key still signs");

    // 2. Once caches hold the new key, it moves first and signs; the old one still checks.
    set_keys(format!("{NEW}{OLD}"));
    let jwks = app.jwks().await;
    assert_eq!(served(&jwks), [new_kid.clone(), old_kid.clone()]);
    let after = sign_in().await;
    assert_eq!(kid(&after), new_kid, "the new key signs");
    for token in [&before, &during, &after] {
        assert!(tokens::check(token, &jwks.body).is_ok(), "every token checks while both are served");
    }
    // A backend whose cached set predates step 2 (it fetched during step 1) checks the new
    // tokens too: that is why the new key was published before it signed.
    let cached_in_step_1 = json!({ "keys": jwks.body["keys"].as_array().map(|k| vec![k[1].clone(), k[0].clone()]) });
    assert!(tokens::check(&after, &cached_in_step_1).is_ok());

    // 3. After the longest token lifetime, the old key goes.
    set_keys(NEW.to_owned());
    let jwks = app.jwks().await;
    assert_eq!(served(&jwks), [new_kid]);
    assert!(tokens::check(&after, &jwks.body).is_ok());
    assert!(tokens::check(&before, &jwks.body).is_err(), "the old key's tokens no longer check once it is gone");
}

#[tokio::test]
async fn unfit_signing_keys_are_a_start_up_error_then_503() {
    use otp_testkit::TOKEN_SIGNING_KEY as KEY;
    let p384 = "-----BEGIN PRIVATE KEY-----\nMIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDTgy6CUr93LH84rAeR\n\
                /4wCpFmWJcd0Otwg5Ssgy5fWyxR3E6FirHKOG5r79rTMBb+hZANiAAS3KN9OyRH5\n\
                dIN/ovsys8iCl9lhxErj/fzBc6J7WYlJIZZ62LBn8QIteFaxvB8hnAax9EIFKvj+\n\
                w88j+JmR7KKs26Zd1lma60lusStosqOwZkHnld34N9jHAwkr2SX6Mr8=\n-----END PRIVATE KEY-----\n";
    for (keys, reason) in [
        ("not a key", "PEM block"),
        (&*format!("{KEY}{p384}"), "key 2 is not a P-256"),
        (&*format!("{KEY}{KEY}"), "key 2 repeats key 1"),
        ("", "token-signing-keys"), // absent: missing
    ] {
        let secrets = otp_testkit::secrets::secrets_with(&[("OTP_TOKEN_SIGNING_KEYS", keys)]);
        let app = TestApp::builder().secrets(secrets).start_unchecked().await;
        assert!(
            app.problems.iter().any(|p| p.contains(reason) && p.contains("token-signing-keys")),
            "{:?}",
            app.problems
        );
        assert!(!app.problems.iter().any(|p| p.contains("MIG")), "no key material in the reason");
        let reply = app.verify(PHONE, "123456").await;
        assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"), "{keys:.20}");
        assert_eq!(app.jwks().await.status, 503);
    }
}

#[tokio::test]
async fn the_channel_is_one_of_those_offered_else_channel_not_allowed_lists_them() {
    let app = TestApp::with(&[("OTP_CHANNELS", "sms,voice")]).await;
    let send = |body: serde_json::Value| app.post(Endpoint::SendOtp, body, "198.51.100.7");
    for channel in [json!("whatsapp"), json!("fax"), json!("SMS"), json!("")] {
        let reply = send(json!({ "phone": PHONE, "channel": channel })).await;
        assert_eq!((reply.status, reply.error_code()), (400, "channel_not_allowed"), "{channel}: {}", reply.body);
        assert_eq!(reply.body["error"]["channels"], json!(["sms", "voice"]));
    }
    for channel in [json!(1), json!(["sms"]), json!({})] {
        let reply = send(json!({ "phone": PHONE, "channel": channel })).await;
        assert_eq!((reply.status, reply.error_code()), (400, "invalid_request"), "{channel}");
    }
    assert!(app.outbox().list().is_empty(), "a refused channel sends nothing");
    // No channel, or null: sms.
    let reply = send(json!({ "phone": PHONE, "channel": null })).await;
    assert_eq!((reply.status, reply.body["channel"].as_str()), (202, Some("sms")), "{}", reply.body);
    assert_eq!(reply.body["channels"], json!(["sms", "voice"]));

    // Without sms among the channels, a send that names none is refused too (sms is the default).
    let voice_only = TestApp::with(&[("OTP_CHANNELS", "voice")]).await;
    let reply = voice_only.send(PHONE).await;
    assert_eq!((reply.status, reply.error_code()), (400, "channel_not_allowed"), "{}", reply.body);
    assert_eq!(reply.body["error"]["channels"], json!(["voice"]));
}

#[tokio::test]
async fn a_call_and_a_text_share_the_limits_and_the_call_approves_as_tel() {
    let app = TestApp::with(&[("OTP_CHANNELS", "sms,voice,whatsapp"), ("OTP_SENDS_PER_NUMBER", "2")]).await;
    let voice = json!({ "phone": PHONE, "channel": "voice", "locale": "fr" });
    let reply = app.post(Endpoint::SendOtp, voice.clone(), "198.51.100.7").await;
    assert_eq!((reply.status, reply.body["channel"].as_str()), (202, Some("voice")), "{}", reply.body);
    let entry = app.outbox().list().into_iter().next().expect("the call is in the outbox");
    assert_eq!(entry.channel, otp_core::domain::Channel::Voice);
    assert!(
        entry.body.starts_with("<Response><Say voice=\"Polly.Celine\" language=\"fr-FR\">Votre code"),
        "{}",
        entry.body
    );
    // The resend cooldown holds across channels.
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "channel": "whatsapp" }), "198.51.100.7").await;
    assert_eq!((reply.status, reply.error_code()), (429, "rate_limited"), "{}", reply.body);
    app.advance(61);
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "channel": "whatsapp" }), "198.51.100.7").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    // Two sends per number: the third, on any channel, is refused.
    app.advance(61);
    for channel in ["sms", "voice", "whatsapp"] {
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "channel": channel }), "198.51.100.7").await;
        assert_eq!((reply.status, reply.error_code()), (429, "rate_limited"), "{channel}: {}", reply.body);
    }
    // The WhatsApp code replaced the call's; then a call's code approves as tel.
    let whatsapp = app.last_code_on(PHONE, otp_core::domain::Channel::Whatsapp);
    let reply = app.verify(PHONE, &whatsapp).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let claims = tokens::check(reply.body["token"].as_str().unwrap_or(""), &app.jwks().await.body).expect("checks");
    assert_eq!(claims["amr"], json!(["sms"]));

    let app = TestApp::with(&[("OTP_CHANNELS", "voice")]).await;
    let reply = app.post(Endpoint::SendOtp, voice, "198.51.100.7").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let code = app.last_code_on(PHONE, otp_core::domain::Channel::Voice);
    let reply = app.verify(PHONE, &code).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let claims = tokens::check(reply.body["token"].as_str().unwrap_or(""), &app.jwks().await.body).expect("checks");
    assert_eq!(claims["amr"], json!(["tel"]));
}

#[tokio::test]
async fn a_call_to_a_premium_or_shared_cost_number_is_refused_as_a_text_is() {
    let app = TestApp::with(&[("OTP_CHANNELS", "sms,voice")]).await;
    // +1 900 (premium rate) and UK 0845 (shared cost): never served, whatever the channel.
    for phone in ["+19005550123", "+448457910000"] {
        for channel in ["voice", "sms"] {
            let reply =
                app.post(Endpoint::SendOtp, json!({ "phone": phone, "channel": channel }), "198.51.100.7").await;
            assert_eq!((reply.status, reply.error_code()), (400, "invalid_phone"), "{phone} {channel}: {}", reply.body);
        }
    }
    assert!(app.outbox().list().is_empty());
}
