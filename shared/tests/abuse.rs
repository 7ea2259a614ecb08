//! The limits an attacker meets, tried as an attacker would, through the HTTP handler on
//! the injected clock (memory store; the same rules run in the Firestore store, whose
//! conformance suite and pumping simulation cover them there).

use std::collections::VecDeque;

use otp_core::Endpoint;
use otp_testkit::secrets::secrets_with;
use otp_testkit::{CAPTCHA_SECRET, TestApp, capture_logs};
use serde_json::json;

const PHONE: &str = "+14155550123";

/// A fresh address for each request: the attacker rotates them, so only the per-number
/// limits stand in the way.
fn ip(i: u32) -> String {
    format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255)
}

/// NIST SP 800-63B-4 §3.2.2: a new code must not reset the failed-attempt count. The
/// attacker sends as often as the limits allow and guesses until refused, for a week;
/// every guess that is compared with a code is counted, and no 24 h hold more than the
/// cap (20 by default).
#[tokio::test]
async fn a_week_of_guessing_at_one_number_is_judged_at_most_20_times_in_any_day() {
    let app = TestApp::with(&[("OTP_VERIFIES_PER_IP", "10000"), ("OTP_SENDS_PER_IP", "10000")]).await;
    let mut judged: Vec<i64> = Vec::new();
    let mut now = 0i64;
    let mut n = 0u32;
    let (mut sends_allowed, mut sends_locked) = (0, 0);
    while now < 7 * 86_400 {
        n += 1;
        let sent = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), &ip(n)).await;
        match (sent.status, sent.error_code()) {
            (202, _) => sends_allowed += 1,
            (429, "rate_limited") => sends_locked += 1,
            other => panic!("send: {other:?} {}", sent.body),
        }
        // Guess until the answers stop judging; a 429 right after a 401 was the judged
        // last try, any later one was refused unjudged.
        let mut previous = 0;
        for _ in 0..6 {
            n += 1;
            let reply = app.post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": "000000" }), &ip(n)).await;
            match reply.status {
                401 => judged.push(now),
                429 if previous == 401 => judged.push(now),
                429 | 410 => {}
                other => panic!("verify: {other} {}", reply.body),
            }
            previous = reply.status;
        }
        app.advance(1200);
        now += 1200;
    }
    let mut window: VecDeque<i64> = VecDeque::new();
    let mut most = 0;
    for at in &judged {
        window.push_back(*at);
        while window.front().is_some_and(|first| *first <= at - 86_400) {
            window.pop_front();
        }
        most = most.max(window.len());
    }
    assert_eq!(most, 20, "at most the cap, and the attack does reach it");
    assert!(judged.len() <= 20 * 7 + 20, "{} guesses judged in a week", judged.len());
    assert!(sends_locked > 0 && sends_allowed > 0, "sends to the locked number were refused: {sends_locked}");
}

#[tokio::test]
async fn at_the_cap_the_pending_code_is_void_and_verify_answers_too_many_attempts() {
    let app = TestApp::with(&[("OTP_MAX_FAILURES_PER_NUMBER", "3"), ("OTP_RESEND_COOLDOWN_SECONDS", "0")]).await;
    assert_eq!(app.send(PHONE).await.status, 202);
    assert_eq!(app.verify(PHONE, "000000").await.body["error"]["attemptsRemaining"], 2, "the number's cap is lower");
    assert_eq!(app.verify(PHONE, "000000").await.body["error"]["attemptsRemaining"], 1);
    let last = app.verify(PHONE, "000000").await;
    assert_eq!((last.status, last.error_code()), (429, "too_many_attempts"));
    let code = app.last_code(PHONE);
    let after = app.verify(PHONE, &code).await;
    assert_eq!((after.status, after.error_code()), (429, "too_many_attempts"), "the right code no longer works");
    let send = app.send(PHONE).await;
    assert_eq!((send.status, send.error_code()), (429, "rate_limited"), "no new code either");
    assert_eq!(send.body["error"]["retryAfterSeconds"], 86_400);
    assert_eq!(send.header("retry-after"), Some("86400"));
    assert_eq!(app.outbox().list().len(), 1, "the refused send sent nothing");
    app.advance(86_400);
    assert_eq!(app.send(PHONE).await.status, 202, "the window frees");
}

#[tokio::test]
async fn an_approval_resets_the_failed_attempts() {
    let app = TestApp::with(&[("OTP_MAX_FAILURES_PER_NUMBER", "6"), ("OTP_RESEND_COOLDOWN_SECONDS", "0")]).await;
    app.send(PHONE).await;
    for _ in 0..4 {
        assert_eq!(app.verify(PHONE, "000000").await.status, 401);
    }
    let code = app.last_code(PHONE);
    assert_eq!(app.verify(PHONE, &code).await.status, 200);
    app.send(PHONE).await;
    let reply = app.verify(PHONE, "000000").await;
    assert_eq!(reply.body["error"]["attemptsRemaining"], 4, "the code's 5 tries, the number's 6 afresh");
}

#[tokio::test]
async fn verifies_per_client_are_limited_and_a_refused_attempt_is_not_judged() {
    let app = TestApp::with(&[("OTP_VERIFIES_PER_IP", "3")]).await;
    assert_eq!(app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), "192.0.2.1").await.status, 202);
    let code = app.last_code(PHONE);
    for i in 0..3 {
        let other = format!("+1415555{:04}", 1000 + i);
        let reply = app.post(Endpoint::VerifyOtp, json!({ "phone": other, "code": "000000" }), "203.0.113.9").await;
        assert_eq!(reply.status, 410);
    }
    let refused = app.post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": code }), "203.0.113.9").await;
    assert_eq!((refused.status, refused.error_code()), (429, "rate_limited"), "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("900"));
    assert_eq!(refused.body["error"]["retryAfterSeconds"], 900);
    // Not judged: the code is still pending and approves from elsewhere.
    let other = app.post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": code }), "203.0.113.10").await;
    assert_eq!(other.status, 200, "{}", other.body);
    app.advance(900);
    let again = app.post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": "000000" }), "203.0.113.9").await;
    assert_eq!(again.status, 410, "the window frees");
}

#[tokio::test]
async fn the_daily_budget_stops_every_sms_beyond_it_until_utc_midnight() {
    // The whole budget for new numbers: the share is the simulated day's below.
    let app = TestApp::with(&[("OTP_SMS_PER_DAY", "3"), ("OTP_SMS_PER_DAY_NEW_PERCENT", "100")]).await;
    for i in 0..3 {
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": format!("+1415555{:04}", 2000 + i) }), &ip(i)).await;
        assert_eq!(reply.status, 202);
    }
    let refused = app.post(Endpoint::SendOtp, json!({ "phone": "+14155552999" }), &ip(99)).await;
    assert_eq!((refused.status, refused.error_code()), (429, "rate_limited"));
    // The clock starts at 15:00 UTC: nine hours to midnight.
    assert_eq!(refused.body["error"]["retryAfterSeconds"], 9 * 3600);
    assert_eq!(app.outbox().list().len(), 3);
    app.advance(9 * 3600);
    assert_eq!(app.post(Endpoint::SendOtp, json!({ "phone": "+14155552999" }), &ip(100)).await.status, 202);
}

#[tokio::test]
async fn the_country_cap_holds_per_country_with_its_overrides() {
    let app = TestApp::with(&[
        ("OTP_SMS_PER_COUNTRY_HOUR", "2"),
        ("OTP_SMS_PER_COUNTRY_HOUR_OVERRIDES", "GB:3"),
        ("OTP_GUARD_MIN_SENDS", "0"),
    ])
    .await;
    let send = |phone: String, i: u32| {
        let app = &app;
        async move { app.post(Endpoint::SendOtp, json!({ "phone": phone }), &ip(i)).await }
    };
    assert_eq!(send("+14155553000".into(), 1).await.status, 202);
    assert_eq!(send("+14155553001".into(), 2).await.status, 202);
    let third = send("+14155553002".into(), 3).await;
    assert_eq!((third.status, third.body["error"]["retryAfterSeconds"].as_u64()), (429, Some(3600)));
    for i in 0..3 {
        assert_eq!(send(format!("+44740012{:04}", 3000 + i), 10 + i).await.status, 202, "GB's own cap is 3");
    }
    assert_eq!(send("+447400129999".into(), 20).await.status, 429);
    app.advance(3600);
    assert_eq!(send("+14155553002".into(), 30).await.status, 202, "a new hour");
}

#[tokio::test]
async fn the_guard_pauses_a_country_whose_codes_are_not_used_and_logs_it_once() {
    let app = TestApp::with(&[("OTP_GUARD_MIN_SENDS", "5"), ("OTP_GUARD_MIN_CONVERSION_PERCENT", "20")]).await;
    let (logs, _guard) = capture_logs("info");
    for i in 0..5 {
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": format!("+37120{:06}", 1000 + i) }), &ip(i)).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    for i in 5..9 {
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": format!("+37120{:06}", 1000 + i) }), &ip(i)).await;
        assert_eq!((reply.status, reply.error_code()), (429, "rate_limited"));
        assert_eq!(reply.body["error"]["retryAfterSeconds"], 3600);
    }
    assert_eq!(app.outbox().list().len(), 5);
    // A country whose users sign in goes on.
    for i in 0..8 {
        let phone = format!("+4915123{:06}", 1000 + i);
        assert_eq!(app.post(Endpoint::SendOtp, json!({ "phone": phone }), &ip(100 + i)).await.status, 202);
        let code = app.last_code(&phone);
        assert_eq!(
            app.post(Endpoint::VerifyOtp, json!({ "phone": phone, "code": code }), &ip(200 + i)).await.status,
            200
        );
    }
    let text = logs.text();
    let paused: Vec<&str> = text.lines().filter(|l| l.contains("\"event\":\"prefix_paused\"")).collect();
    assert_eq!(paused.len(), 1, "logged once:\n{text}");
    assert!(paused[0].contains("\"country\":\"LV\"") && paused[0].contains("\"sends\":5"), "{}", paused[0]);
    assert!(paused[0].contains("\"prefix\":\"371-200\""), "the prefix, not the number: {}", paused[0]);
    let scopes = text.lines().filter(|l| l.contains("\"scope\":\"prefix_paused\"")).count();
    assert_eq!(scopes, 4, "every refusal logs its scope");
}

#[tokio::test]
async fn numbers_without_a_country_are_refused_unless_the_allow_list_names_001() {
    let phone = non_geographic_mobile();
    let app = TestApp::with(&[("OTP_NUMBER_TYPES", "mobile,fixed_line_or_mobile,voip,personal,pager")]).await;
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": phone }), "192.0.2.1").await;
    assert_eq!((reply.status, reply.error_code()), (403, "country_not_allowed"), "{phone}: {}", reply.body);
    let app = TestApp::with(&[
        ("OTP_ALLOWED_COUNTRIES", "US,001"),
        ("OTP_NUMBER_TYPES", "mobile,fixed_line_or_mobile,voip,personal,pager"),
    ])
    .await;
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": phone }), "192.0.2.1").await;
    assert_eq!(reply.status, 202, "{phone}: {}", reply.body);
}

/// A valid SMS-capable number of the non-geographic entity (`001`) in the metadata.
fn non_geographic_mobile() -> String {
    for candidate in
        ["+882393456789", "+8823912345678", "+881612345678", "+8810123456789", "+883510012345", "+87012345678"]
    {
        if let Ok(phone) = otp_core::domain::E164Phone::parse(candidate, None)
            && phone.country().is_none()
        {
            return phone.as_str().to_owned();
        }
    }
    panic!("no non-geographic SMS-capable example parsed");
}

#[tokio::test]
async fn number_types_beyond_mobile_are_served_only_by_choice() {
    let voip = "+445612345678"; // a UK VoIP (056) number
    let default = TestApp::new().await;
    let reply = default.send(voip).await;
    assert_eq!((reply.status, reply.error_code()), (400, "invalid_phone"), "{}", reply.body);
    let chosen = TestApp::with(&[("OTP_NUMBER_TYPES", "mobile,voip")]).await;
    assert_eq!(chosen.send(voip).await.status, 202);
    assert_eq!(chosen.send("+447400123456").await.status, 202, "mobile still");
}

#[tokio::test]
async fn a_test_number_takes_its_fixed_code_is_never_texted_and_obeys_every_limit() {
    let app = TestApp::with(&[("OTP_TEST_NUMBERS", "+15555550100=424242"), ("OTP_RESEND_COOLDOWN_SECONDS", "0")]).await;
    let (logs, _guard) = capture_logs("info");
    assert_eq!(app.send("+15555550100").await.status, 202);
    assert!(app.outbox().list().is_empty(), "never texted");
    assert!(logs.text().contains("\"test_number\""), "{}", logs.text());
    assert!(!logs.text().contains("424242"), "the fixed code is never logged");
    assert_eq!(app.verify("+15555550100", "424242").await.status, 200);
    for _ in 0..4 {
        assert_eq!(app.send("+15555550100").await.status, 202);
    }
    assert_eq!(app.send("+15555550100").await.status, 429, "the per-number limit applies");
}

#[tokio::test]
async fn unfit_secrets_are_one_clear_start_up_error_then_503() {
    for (session, pepper) in [
        ("short".to_owned(), "p".repeat(40)),
        ("s".repeat(40), "short".to_owned()),
        ("same".repeat(10), "same".repeat(10)),
        // One repeated character: a placeholder, not a key.
        ("a".repeat(32), "pepper-0123456789abcdefghijklmnopq".to_owned()),
        ("session-0123456789abcdefghijklmnop".to_owned(), "b".repeat(64)),
    ] {
        let secrets = secrets_with(&[("OTP_SESSION_SECRET", &session), ("OTP_CODE_PEPPER", &pepper)]);
        let (logs, guard) = capture_logs("info");
        let app = TestApp::builder().secrets(secrets).start_unchecked().await;
        for endpoint in [Endpoint::SendOtp, Endpoint::VerifyOtp] {
            let reply = app.post(endpoint, json!({ "phone": PHONE, "code": "123456" }), "192.0.2.1").await;
            assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"));
        }
        drop(guard);
        let text = logs.text();
        let errors: Vec<&str> = text.lines().filter(|l| l.contains("\"secrets_unusable\"")).collect();
        assert!(!errors.is_empty() && errors[0].contains("not fit"), "{text}");
        assert!(!text.contains(&session) && !text.contains(&pepper), "values are never logged");
        assert!(app.outbox().list().is_empty());
    }
}

/// The bot challenge, through the service with the fake siteverify: the token is checked
/// (with the client's address) before anything is recorded or sent.
#[tokio::test]
async fn the_bot_challenge_is_checked_before_anything_is_recorded_or_sent() {
    use fake_captcha::{FakeCaptcha, Fault, Flavor, Pass};
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.expect("fake siteverify starts");
    let url = fake.verify_url(Flavor::Turnstile);
    let app = TestApp::builder()
        .settings(&[("OTP_CAPTCHA", "turnstile"), ("OTP_CAPTCHA_VERIFY_URL", &url)])
        .secrets(secrets_with(&[("OTP_CAPTCHA_SECRET", CAPTCHA_SECRET)]))
        .start()
        .await;
    let host = "app.example.com"; // the host of the test origin
    // The fake's passing tokens are scripts; a distinct score makes each one unique.
    let fresh = |i: u32| Pass::token(host, "send_otp", 0.6 + f64::from(i) / 1000.0);

    let missing = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), "192.0.2.1").await;
    assert_eq!((missing.status, missing.error_code()), (400, "captcha_required"));
    let blank = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "captchaToken": " " }), "192.0.2.1").await;
    assert_eq!((blank.status, blank.error_code()), (400, "captcha_required"));
    assert!(fake.calls().is_empty(), "no provider call without a token");

    let rejected = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "captchaToken": "bogus" }), "192.0.2.1").await;
    assert_eq!((rejected.status, rejected.error_code()), (403, "captcha_failed"));
    let elsewhere = Pass::token("evil.example", "send_otp", 0.9);
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "captchaToken": elsewhere }), "192.0.2.1").await;
    assert_eq!((reply.status, reply.error_code()), (403, "captcha_failed"), "solved on another site");

    fake.push_faults([Fault::Status { status: 500 }]);
    let token = fresh(0);
    let down = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "captchaToken": token }), "192.0.2.1").await;
    assert_eq!((down.status, down.error_code()), (503, "service_unavailable"));
    assert!(app.outbox().list().is_empty(), "no refusal sent anything");

    // Nothing above was recorded: the per-client limit (5) still has every send.
    for i in 0..5 {
        let token = fresh(1 + i);
        let phone = format!("+1415555{:04}", 4000 + i);
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": phone, "captchaToken": token }), "192.0.2.1").await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let calls = fake.calls();
    assert!(calls.iter().all(|c| c.remoteip.as_deref() == Some("192.0.2.1")), "the client's address is sent");
    assert!(calls.iter().all(|c| c.secret_ok), "with the secret from the secrets");
    // A replayed token: the service asks the provider again (it keeps no token of its own:
    // single use is the provider's, as its docs say), answers the provider's refusal with
    // 403, and records and sends nothing for it.
    let token = fresh(100);
    let first = app
        .post(Endpoint::SendOtp, json!({ "phone": "+14155554100", "captchaToken": token.clone() }), "192.0.2.9")
        .await;
    assert_eq!(first.status, 202);
    let (calls_before, sent_before) = (fake.calls().len(), app.outbox().list().len());
    let again = app
        .post(Endpoint::SendOtp, json!({ "phone": "+14155554101", "captchaToken": token.clone() }), "192.0.2.9")
        .await;
    assert_eq!((again.status, again.error_code()), (403, "captcha_failed"));
    let calls = fake.calls();
    assert_eq!(calls.len(), calls_before + 1, "the replay was put to the provider");
    let replay = &calls[calls.len() - 1];
    assert_eq!(replay.response.as_deref(), Some(token.as_str()));
    assert_eq!(
        (replay.success, replay.error_codes.as_slice()),
        (Some(false), &["timeout-or-duplicate".to_owned()][..])
    );
    assert_eq!(app.outbox().list().len(), sent_before, "nothing sent for the replay");
    // Nothing recorded either: the number has no cooldown, the address its four other sends.
    let reply =
        app.post(Endpoint::SendOtp, json!({ "phone": "+14155554101", "captchaToken": fresh(101) }), "192.0.2.9").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[tokio::test]
async fn a_configured_challenge_without_its_secret_is_a_start_up_error() {
    use fake_captcha::{FakeCaptcha, Flavor, Pass};
    // A working provider (the fake), so that the 503 below can only come from the missing
    // secret, not from a provider out of reach.
    let fake = FakeCaptcha::start(CAPTCHA_SECRET).await.expect("fake siteverify starts");
    let url = fake.verify_url(Flavor::Hcaptcha);
    let settings = [("OTP_CAPTCHA", "hcaptcha"), ("OTP_CAPTCHA_VERIFY_URL", url.as_str())];
    let token = Pass::token("app.example.com", "send_otp", 0.9);

    let app = TestApp::builder().settings(&settings).start_unchecked().await;
    assert!(
        app.problems.iter().any(|p| p.contains("captcha-secret")),
        "the start-up names the missing secret: {:?}",
        app.problems
    );
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "captchaToken": token }), "192.0.2.1").await;
    assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"));
    assert!(fake.calls().is_empty(), "without its secret the provider is never called");
    assert!(app.outbox().list().is_empty());

    // The same app with the secret passes: the secret alone made the difference.
    let app = TestApp::builder()
        .settings(&settings)
        .secrets(secrets_with(&[("OTP_CAPTCHA_SECRET", CAPTCHA_SECRET)]))
        .start()
        .await;
    let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "captchaToken": token }), "192.0.2.1").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

/// Sends to `phone` with `device_token` (if any) from `ip`, reads the code, verifies with
/// the same token: the approval's answer.
async fn sign_in_with(app: &TestApp, phone: &str, device_token: Option<&str>, ip: &str) -> otp_testkit::Reply {
    let sent = app.post(Endpoint::SendOtp, json!({ "phone": phone, "deviceToken": device_token }), ip).await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let code = app.last_code(phone);
    app.post(Endpoint::VerifyOtp, json!({ "phone": phone, "code": code, "deviceToken": device_token }), ip).await
}

/// Attack 1 of "Genuine users first": a stranger sends and guesses until the number is at
/// its failed-attempt cap (4 sends, 20 wrong codes, a few minutes). Before device tokens the
/// number's owner was locked out for a day; now only requests without a device token are:
/// the owner's device signs in at once, and its token is renewed (same device, later
/// expiry). A new device of the number is still locked, as the contract says.
#[tokio::test]
async fn a_stranger_who_locks_a_number_locks_out_only_strangers() {
    let app = TestApp::with(&[("OTP_VERIFIES_PER_IP", "10000"), ("OTP_SENDS_PER_IP", "10000")]).await;
    let owner = sign_in_with(&app, PHONE, None, "192.0.2.1").await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    let token = owner.body["deviceToken"].as_str().expect("an approval answers a device token").to_owned();
    assert!(token.len() <= 512 && !token.is_empty(), "{token}");
    let expires = owner.body["deviceTokenExpiresAt"].as_str().expect("with its expiry").to_owned();
    assert!(expires.starts_with("2027-02-22T15:"), "90 days after 2026-11-24 15:00: {expires}");

    // The stranger, from fresh addresses: sends and wrong guesses until refused.
    let mut n = 0;
    let mut locked = false;
    for _ in 0..6 {
        app.advance(61);
        n += 1;
        let sent = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), &ip(n)).await;
        if sent.status == 429 {
            locked = true;
            break;
        }
        for _ in 0..5 {
            n += 1;
            app.post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": "000000" }), &ip(n)).await;
        }
    }
    assert!(locked, "the token-less lane is at its cap");
    let stranger = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), &ip(n + 1)).await;
    assert_eq!((stranger.status, stranger.error_code()), (429, "rate_limited"));
    assert!(stranger.body["error"]["retryAfterSeconds"].as_u64().unwrap_or(0) > 80_000, "{}", stranger.body);

    // The owner's device: served at once, its token renewed.
    app.advance(61);
    let again = sign_in_with(&app, PHONE, Some(&token), "192.0.2.1").await;
    assert_eq!(again.status, 200, "the owner's device signs in: {}", again.body);
    let renewed = again.body["deviceToken"].as_str().unwrap_or_default().to_owned();
    assert_ne!(renewed, token, "a renewed token (a later expiry)");
    // The renewed token names the same device: its lane's cooldown holds for it.
    let cooled = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": renewed }), "192.0.2.1").await;
    let old = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": token }), "192.0.2.1").await;
    assert_eq!((cooled.status, old.status), (429, 429), "one device, one lane: {} {}", cooled.body, old.body);
    assert!(cooled.body["error"]["retryAfterSeconds"].as_u64().unwrap_or(u64::MAX) <= 60, "{}", cooled.body);
}

/// A device token that does not read (malformed, too long, of another number, expired,
/// tampered, not a string) is ignored: the answer is the one without a token, and nothing
/// of the device lane is touched. The token-less lane is in its cooldown here, so "as
/// without a token" is a 429 with the cooldown's wait, and a valid token a 202.
#[tokio::test]
async fn device_tokens_that_do_not_read_are_ignored_as_if_absent() {
    let app = TestApp::with(&[("OTP_DEVICE_TOKEN_DAYS", "1"), ("OTP_SENDS_PER_IP", "10000")]).await;
    let other = "+14155550199";
    let mine = sign_in_with(&app, PHONE, None, "192.0.2.1").await.body["deviceToken"].as_str().unwrap().to_owned();
    let theirs = sign_in_with(&app, other, None, "192.0.2.2").await.body["deviceToken"].as_str().unwrap().to_owned();
    let mut tampered = mine.clone().into_bytes();
    tampered[12] = if tampered[12] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    app.advance(61);
    let none = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), "192.0.2.3").await;
    assert_eq!(none.status, 202, "{}", none.body);
    let bad: Vec<serde_json::Value> = vec![
        json!("not a token"),
        json!("A".repeat(513)),
        json!(theirs),
        json!(tampered),
        json!(12345),
        json!(null),
        json!({ "token": mine }),
    ];
    for token in &bad {
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": token }), "192.0.2.3").await;
        assert_eq!((reply.status, reply.error_code()), (429, "rate_limited"), "{token}: {}", reply.body);
        assert_eq!(reply.body["error"]["retryAfterSeconds"], 60, "the token-less lane's cooldown: {token}");
    }
    let verify = app
        .post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": "000000", "deviceToken": theirs }), "192.0.2.3")
        .await;
    assert_eq!(verify.status, 401, "judged in the token-less lane, whose code is pending: {}", verify.body);
    let valid = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": mine }), "192.0.2.3").await;
    assert_eq!(valid.status, 202, "{}", valid.body);
    // A day later the token has expired: ignored as well.
    app.advance(86_400);
    let fresh = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), "192.0.2.4").await;
    assert_eq!(fresh.status, 202);
    let expired = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": mine }), "192.0.2.4").await;
    assert_eq!(
        (expired.status, expired.body["error"]["retryAfterSeconds"].as_u64()),
        (429, Some(60)),
        "{}",
        expired.body
    );
}

/// A device token that expires between its send and the verify (its device last signed in
/// a token's life ago, to the minute): the code sent to the device's lane while the token
/// was valid is still judged there, within the code's life, and the approval renews the
/// token. Before, that verify went to the token-less lane, found no code there and answered
/// 410, and the person had to ask for another SMS. Where the device's lane holds no code (a
/// send after the expiry ignored the token and went token-less), the verify with the same
/// expired token is judged token-less, as without a token.
#[tokio::test]
async fn a_token_that_expires_between_send_and_verify_still_verifies_the_code_sent_with_it() {
    let app = TestApp::with(&[("OTP_DEVICE_TOKEN_DAYS", "1"), ("OTP_SENDS_PER_IP", "10000")]).await;
    let first = sign_in_with(&app, PHONE, None, "192.0.2.1").await;
    let token = first.body["deviceToken"].as_str().unwrap().to_owned();
    // A minute before the token expires, a send with it; the code is typed two minutes later.
    app.advance(86_400 - 60);
    let sent = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": token }), "192.0.2.1").await;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let code = app.last_code(PHONE);
    app.advance(120);
    let late =
        app.post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": code, "deviceToken": token }), "192.0.2.1").await;
    assert_eq!(late.status, 200, "the code sent with the token, judged in its lane: {}", late.body);
    let renewed = late.body["deviceToken"].as_str().unwrap_or_default().to_owned();
    assert!(
        late.body["deviceTokenExpiresAt"].as_str().is_some_and(|at| at.starts_with("2026-11-26T15:")),
        "{}",
        late.body
    );

    // After the expiry, a send with the old token goes token-less; its verify with the same
    // token finds no code in the device's lane and is judged token-less.
    app.advance(61);
    let resent = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": token }), "192.0.2.1").await;
    assert_eq!(resent.status, 202, "{}", resent.body);
    let wrong = app
        .post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": "000000", "deviceToken": token }), "192.0.2.1")
        .await;
    assert_eq!(wrong.status, 401, "judged against the token-less lane's code: {}", wrong.body);
    assert_eq!(wrong.body["error"]["attemptsRemaining"], 4, "{}", wrong.body);
    let code = app.last_code(PHONE);
    let right =
        app.post(Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": code, "deviceToken": token }), "192.0.2.1").await;
    assert_eq!(right.status, 200, "{}", right.body);
    // The renewed token names the device's lane, apart from the token-less one's cooldown.
    let device = app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": renewed }), "192.0.2.1").await;
    let tokenless = app.post(Endpoint::SendOtp, json!({ "phone": PHONE }), "192.0.2.1").await;
    assert_eq!((device.status, tokenless.status), (202, 429), "{} {}", device.body, tokenless.body);
}

/// The guessing bound with device caps: an attacker who also holds one stolen device token
/// of the number guesses without it and with it, as often as every limit allows, for two
/// days. In no 24 h are more than 20 + 10 guesses judged: P(take-over) per day stays at or
/// below (20 + 10 d) / 10^6 at 6 digits, d the device tokens held (here 1).
#[tokio::test]
async fn with_a_stolen_device_token_the_guesses_judged_stay_within_20_plus_10_a_day() {
    let app = TestApp::with(&[("OTP_VERIFIES_PER_IP", "10000"), ("OTP_SENDS_PER_IP", "10000")]).await;
    let stolen = sign_in_with(&app, PHONE, None, "192.0.2.1").await.body["deviceToken"].as_str().unwrap().to_owned();
    let mut judged: Vec<i64> = Vec::new();
    let (mut now, mut n) = (0i64, 0u32);
    while now < 2 * 86_400 {
        app.advance(1200);
        now += 1200;
        for token in [None, Some(stolen.as_str())] {
            n += 1;
            app.post(Endpoint::SendOtp, json!({ "phone": PHONE, "deviceToken": token }), &ip(n)).await;
            let mut previous = 0;
            for _ in 0..6 {
                n += 1;
                let body = json!({ "phone": PHONE, "code": "000000", "deviceToken": token });
                let reply = app.post(Endpoint::VerifyOtp, body, &ip(n)).await;
                match reply.status {
                    401 => judged.push(now),
                    429 if previous == 401 => judged.push(now),
                    429 | 410 => {}
                    other => panic!("verify: {other} {}", reply.body),
                }
                previous = reply.status;
            }
        }
    }
    let most =
        judged.iter().map(|at| judged.iter().filter(|t| **t > at - 86_400 && **t <= *at).count()).max().unwrap_or(0);
    assert_eq!(most, 30, "20 without the token and 10 with it, and the attack reaches both");
}

/// "Genuine users first", a simulated day: the three attacks of issue 18 at once, against
/// genuine traffic, at the default limits with `OTP_CAPTCHA_WHEN=under_attack` (the bots
/// solve no challenge; genuine users solve it when asked). Run on both stores through the
/// HTTP handler on the injected clock. docs/SECURITY.md quotes the table it prints
/// (`cargo test -p otp-core --test main abuse::a_simulated_day -- --nocapture`).
mod simulated_day {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::{DateTime, TimeDelta, Utc};
    use fake_captcha::{FakeCaptcha, Pass};
    use otp_core::Endpoint;
    use otp_core::domain::E164Phone;
    use otp_core::ports::OtpStore;
    use otp_testkit::secrets::secrets_with;
    use otp_testkit::{CAPTCHA_SECRET, ManualClock, TestApp, emulator};
    use serde_json::{Value, json};

    /// Returning users with a device token: 60 in the attacked prefix +1 415 (the first 10
    /// are the lock attack's victims) and 20 in Germany.
    const WITH_TOKEN: u32 = 80;
    const VICTIMS: u32 = 10;
    /// Returning users on a new device (known numbers, no token), in the attacked prefix.
    const NEW_DEVICE: u32 = 40;

    fn with_token(i: u32) -> String {
        if i < 60 { format!("+1415777{:04}", 1000 + i) } else { format!("+4915123{:06}", 700_000 + i) }
    }

    fn new_device(i: u32) -> String {
        format!("+1415888{:04}", 1000 + i)
    }

    /// A new user in the attacked prefix.
    fn new_in_attacked(i: u32) -> String {
        format!("+1415666{:04}", 1000 + i)
    }

    /// A new user outside the attacked prefixes: Germany, France, Spain, Britain by turns.
    fn new_elsewhere(i: u32) -> String {
        match i % 4 {
            0 => format!("+4915123{:06}", 100_000 + i),
            1 => format!("+3361{:06}0", 100_000 + i),
            2 => format!("+34612{:06}", 100_000 + i),
            _ => format!("+447400{:06}", 100_000 + i),
        }
    }

    /// The budget drain's numbers: Latvia and Lithuania, walking 100 prefixes each (so that
    /// no prefix meets the guard's threshold), sequential within each.
    fn drained(n: u32) -> String {
        let (prefix, sub) = (n % 100, n / 100);
        if n.is_multiple_of(2) { format!("+3712{prefix:02}{sub:05}") } else { format!("+3706{prefix:02}{sub:05}") }
    }

    /// The prefix attack's numbers: new numbers of +1 415, never approved.
    fn paused(n: u32) -> String {
        format!("+1415555{:04}", n % 10_000)
    }

    fn bot_ip(i: u32) -> String {
        format!("100.64.{}.{}", (i >> 8) & 15, i & 255)
    }

    #[derive(Debug, Default, Clone, Copy)]
    struct Served {
        came: u32,
        served: u32,
        challenged: u32,
    }

    #[derive(Debug, Default)]
    struct Day {
        with_token: Served,
        victims: Served,
        new_device: Served,
        new_in_attacked: Served,
        new_elsewhere: Served,
        /// SMS of the day: to known numbers, to new ones; the most in one country-hour.
        sms_known: u32,
        sms_new: u32,
        sms_bots: u32,
        most_in_a_country_hour: u32,
        bot_sends: u32,
    }

    struct Genuine<'a> {
        app: &'a TestApp,
        solved: u32,
    }

    impl Genuine<'_> {
        /// One sign-in: send (solving the challenge if asked), read the code, verify. The
        /// device token the approval answers, if served.
        async fn sign_in(&mut self, phone: &str, token: Option<&str>, ip: &str, tally: &mut Served) -> Option<String> {
            tally.came += 1;
            let mut body = json!({ "phone": phone, "deviceToken": token });
            let mut sent = self.app.post(Endpoint::SendOtp, body.clone(), ip).await;
            if (sent.status, sent.error_code()) == (400, "captcha_required") {
                tally.challenged += 1;
                self.solved += 1;
                body["captchaToken"] =
                    Value::from(Pass::token("app.example.com", "send_otp", 0.5 + f64::from(self.solved) / 1e6));
                sent = self.app.post(Endpoint::SendOtp, body, ip).await;
            }
            if sent.status != 202 {
                return None;
            }
            let code = self.app.last_code(phone);
            let verified = self
                .app
                .post(Endpoint::VerifyOtp, json!({ "phone": phone, "code": code, "deviceToken": token }), ip)
                .await;
            (verified.status == 200).then(|| {
                tally.served += 1;
                verified.body["deviceToken"].as_str().unwrap_or_default().to_owned()
            })
        }
    }

    fn day_start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z").map(Into::into).unwrap_or_default()
    }

    async fn simulate(store: Arc<dyn OtpStore>) -> Day {
        let captcha = FakeCaptcha::start(CAPTCHA_SECRET).await.expect("fake siteverify starts");
        let url = captcha.verify_url(fake_captcha::Flavor::Turnstile);
        let clock = Arc::new(ManualClock::new(day_start() - TimeDelta::hours(12)));
        let app = TestApp::builder()
            .store(store)
            .clock(clock.clone())
            .settings(&[
                ("OTP_CAPTCHA", "turnstile"),
                ("OTP_CAPTCHA_VERIFY_URL", &url),
                ("OTP_CAPTCHA_WHEN", "under_attack"),
            ])
            .secrets(secrets_with(&[("OTP_CAPTCHA_SECRET", CAPTCHA_SECRET)]))
            .start()
            .await;
        let mut genuine = Genuine { app: &app, solved: 0 };
        // The day before: the returning users sign in, keeping their device tokens.
        let mut tokens = Vec::new();
        let mut setup = Served::default();
        for i in 0..WITH_TOKEN {
            let token = genuine.sign_in(&with_token(i), None, &format!("198.18.1.{i}"), &mut setup).await;
            tokens.push(token.expect("the day before, every user signs in"));
        }
        for i in 0..NEW_DEVICE {
            let token = genuine.sign_in(&new_device(i), None, &format!("198.18.2.{i}"), &mut setup).await;
            assert!(token.is_some(), "the day before, every user signs in");
        }
        clock.advance(TimeDelta::hours(12));
        let seen_before = app.outbox().list().len();

        let mut day = Day::default();
        let mut bot = 0u32;
        let (mut drained_n, mut paused_n) = (0u32, 0u32);
        for minute in 0..24 * 60u32 {
            // Attack 3, the budget drain: 5 sends a minute to new numbers over 200 prefixes.
            for _ in 0..5 {
                bot += 1;
                drained_n += 1;
                let reply = app.post(Endpoint::SendOtp, json!({ "phone": drained(drained_n) }), &bot_ip(bot)).await;
                assert!(matches!(reply.status, 202 | 429 | 400), "a bot send answered {}", reply.body);
            }
            // Attack 2, the prefix pause: one send a minute to a new +1 415 number.
            bot += 1;
            paused_n += 1;
            let reply = app.post(Endpoint::SendOtp, json!({ "phone": paused(paused_n) }), &bot_ip(bot)).await;
            assert!(matches!(reply.status, 202 | 429 | 400), "a bot send answered {}", reply.body);
            day.bot_sends += 6;
            // Attack 1, the lock: at 00:00 and 12:00 each victim gets 4 sends and 20 wrong
            // codes, one round a minute (the cooldown), victims one after another.
            let into = minute % (12 * 60);
            if into < VICTIMS * 4 {
                let victim = with_token(into / 4);
                bot += 1;
                day.bot_sends += 1;
                app.post(Endpoint::SendOtp, json!({ "phone": victim }), &bot_ip(bot)).await;
                for _ in 0..5 {
                    bot += 1;
                    app.post(Endpoint::VerifyOtp, json!({ "phone": victim, "code": "000000" }), &bot_ip(bot)).await;
                }
            }
            // Genuine traffic. Returning users with a token, victims first, from 01:00.
            if minute >= 60 && (minute - 60) % 17 == 0 && (minute - 60) / 17 < WITH_TOKEN {
                let i = (minute - 60) / 17;
                let ip = format!("198.18.3.{i}");
                let tally = if i < VICTIMS { &mut day.victims } else { &mut day.with_token };
                genuine.sign_in(&with_token(i), Some(&tokens[i as usize]), &ip, tally).await;
            }
            // Returning users on a new device, from 02:00 (the new numbers' share spent).
            if minute >= 120 && (minute - 120) % 31 == 0 && (minute - 120) / 31 < NEW_DEVICE {
                let i = (minute - 120) / 31;
                genuine.sign_in(&new_device(i), None, &format!("198.18.4.{i}"), &mut day.new_device).await;
            }
            // New users: two an hour in the attacked prefix, four an hour elsewhere.
            if minute % 30 == 7 {
                let i = minute / 30;
                genuine.sign_in(&new_in_attacked(i), None, &format!("198.18.5.{i}"), &mut day.new_in_attacked).await;
            }
            if minute % 15 == 11 {
                let i = minute / 15;
                genuine
                    .sign_in(&new_elsewhere(i), None, &format!("198.18.6.{}", i % 250), &mut day.new_elsewhere)
                    .await;
            }
            clock.advance(TimeDelta::minutes(1));
        }

        let known: Vec<String> = (0..WITH_TOKEN).map(with_token).chain((0..NEW_DEVICE).map(new_device)).collect();
        let sent = app.outbox().list();
        let mut per_hour: BTreeMap<(String, i64), u32> = BTreeMap::new();
        for message in &sent[..sent.len() - seen_before] {
            let phone = E164Phone::parse(&message.to, None).expect("sent numbers parse");
            let hour = (message.sent_at - day_start()).num_hours();
            *per_hour.entry((phone.region().to_owned(), hour)).or_default() += 1;
            if known.contains(&message.to) {
                day.sms_known += 1;
            } else {
                day.sms_new += 1;
            }
            if message.to.starts_with("+1415555") || message.to.starts_with("+3712") || message.to.starts_with("+3706")
            {
                day.sms_bots += 1;
            }
        }
        day.most_in_a_country_hour = per_hour.values().copied().max().unwrap_or(0);
        day
    }

    fn pct(s: Served) -> f64 {
        f64::from(s.served) * 100.0 / f64::from(s.came.max(1))
    }

    fn check_and_report(store: &str, day: &Day) {
        println!(
            "simulated day ({store}): {} bot sends; SMS: {} to known numbers, {} to new ones ({} to the bots); most in one country-hour {}",
            day.bot_sends, day.sms_known, day.sms_new, day.sms_bots, day.most_in_a_country_hour
        );
        println!("| genuine users | came | served | asked the challenge |");
        println!("|---|---|---|---|");
        for (name, s) in [
            ("returning, device token (not attacked)", day.with_token),
            ("returning, device token, number locked by a stranger", day.victims),
            ("returning, new device, in the paused prefix, share spent", day.new_device),
            ("new, in the paused prefix", day.new_in_attacked),
            ("new, outside the attacked prefixes", day.new_elsewhere),
        ] {
            println!("| {name} | {} | {} ({:.1} %) | {} |", s.came, s.served, pct(s), s.challenged);
        }
        let defaults = otp_core::Settings::default().service.policy;
        let budget = defaults.daily_budget.unwrap_or(u32::MAX);
        assert_eq!(day.with_token.served, day.with_token.came, "returning users with a device token: all");
        assert_eq!(day.victims.served, day.victims.came, "the lock attack's victims, on their own devices: all");
        assert_eq!(day.new_device.served, day.new_device.came, "known numbers through the pause and the spent share");
        assert!(pct(day.new_elsewhere) >= 99.0, "new users outside the attacked prefixes: {:?}", day.new_elsewhere);
        assert!(day.sms_known + day.sms_new <= budget, "within the daily budget");
        assert!(day.sms_new <= budget / 2, "new numbers within their share: {}", day.sms_new);
        assert!(day.sms_new >= budget / 2 * 8 / 10, "the drain did spend the share up to the challenge's level");
        assert!(day.most_in_a_country_hour <= defaults.per_country_hour.default.unwrap_or(u32::MAX));
        assert!(day.new_elsewhere.challenged > 0, "the challenge was asked once the share was 80 % spent");
        assert_eq!(
            day.with_token.challenged + day.victims.challenged + day.new_device.challenged,
            0,
            "known numbers never"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_simulated_day_on_the_memory_store() {
        let day = simulate(otp_testkit::store::memory()).await;
        check_and_report("memory", &day);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_simulated_day_on_firestore() {
        let Some(store) = emulator::fresh_store("a_simulated_day_on_firestore") else { return };
        let day = simulate(Arc::new(store)).await;
        check_and_report("Firestore emulator", &day);
    }
}
