//! The Twilio sender against the fake Twilio, through the HTTP handler: every Twilio
//! answer gives its documented API.md answer (docs/PROVIDERS.md), retries are bounded
//! and show in the fake's record, and a failed send leaves no usable code behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_twilio::{CALL_MAGIC_NUMBERS, Fault, MAGIC_NUMBERS};
use otp_core::Endpoint;
use otp_core::adapters::twilio::{RetryPolicy, TwilioConfig, TwilioSender};
use otp_core::domain::Channel;
use otp_core::ports::{CodeContent, CodeMessage, CodeSender, DeliveryError};
use otp_core::secrets::{Required, SecretCache};
use otp_testkit::twilio::{self, TwilioSetup};
use otp_testkit::{ACCOUNT_SID, AUTH_TOKEN, CLIENT_IP, FROM, TestApp, capture_logs, code_in, tokens};
use serde_json::json;

const PHONE: &str = "+16505550100";

fn sms(to: &str, body: &str) -> CodeMessage {
    CodeMessage { to: to.into(), content: CodeContent::Sms { body: body.into() } }
}

fn status(code: u16) -> Fault {
    Fault::Status { status: code }
}

#[tokio::test]
async fn a_send_goes_out_in_twilios_shape_and_its_code_verifies() {
    let app = TestApp::builder().twilio(TwilioSetup::default()).start().await;
    let reply = app.send("+1 (650) 555-0100").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["to"], PHONE);

    let messages = app.fake_twilio().messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!((message.to.as_str(), message.from.as_deref()), (PHONE, Some(FROM)));
    assert_eq!(message.account_sid, ACCOUNT_SID);
    assert!(message.sid.starts_with("SM") && message.sid.len() == 34, "{}", message.sid);
    let attempts = app.fake_twilio().attempts();
    assert_eq!(attempts.len(), 1);
    assert_eq!((attempts[0].status, attempts[0].sid.as_deref()), (201, Some(message.sid.as_str())));

    let code = code_in(&message.body);
    let reply = app.verify(PHONE, &code).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["status"], "approved");
}

#[tokio::test]
async fn every_twilio_refusal_gives_its_documented_answer_without_a_retry() {
    // Eleven sends from one client: more than the default per-client limit of five.
    let app = TestApp::builder().twilio(TwilioSetup::default()).settings(&[("OTP_SENDS_PER_IP", "50")]).start().await;
    let cases = [
        ("+16505550101", 21211, 400, "invalid_phone"),
        ("+16505550102", 21614, 422, "phone_unreachable"),
        ("+16505550103", 21610, 422, "phone_unreachable"),
        ("+16505550104", 21612, 422, "phone_unreachable"),
        ("+16505550105", 21408, 403, "country_not_allowed"),
        // A refusal this service has no special meaning for (Twilio's "Body is required").
        ("+16505550106", 21602, 502, "sms_failed"),
    ];
    for (phone, twilio_code, expected_status, expected_code) in cases {
        app.fake_twilio().fail_number(phone, twilio_code);
        let reply = app.send(phone).await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (expected_status, expected_code),
            "Twilio {twilio_code}: {}",
            reply.body
        );
        let calls: Vec<_> =
            app.fake_twilio().attempts().into_iter().filter(|a| a.to.as_deref() == Some(phone)).collect();
        assert_eq!(calls.len(), 1, "Twilio {twilio_code} is permanent: never retried");
        assert_eq!(calls[0].code, Some(twilio_code));
    }
    // Twilio's magic test numbers pass the service's own number check and fail at Twilio.
    for (phone, twilio_code) in MAGIC_NUMBERS {
        let reply = app.send(phone).await;
        let expected = match twilio_code {
            21211 => (400, "invalid_phone"),
            21408 => (403, "country_not_allowed"),
            _ => (422, "phone_unreachable"),
        };
        assert_eq!((reply.status, reply.error_code()), expected, "{phone}: {}", reply.body);
    }
    assert_eq!(app.fake_twilio().attempts().len(), cases.len() + MAGIC_NUMBERS.len(), "one call each, no retry");
    assert!(app.fake_twilio().messages().is_empty());
}

#[tokio::test]
async fn bad_credentials_are_sms_failed_not_retried_and_logged_by_name() {
    let (logs, _guard) = capture_logs("info");
    let setup = TwilioSetup { auth_token: "not-the-token", ..TwilioSetup::default() };
    let app = TestApp::builder().twilio(setup).start().await;
    let reply = app.send(PHONE).await;
    assert_eq!((reply.status, reply.error_code()), (502, "sms_failed"), "{}", reply.body);
    let attempts = app.fake_twilio().attempts();
    assert_eq!(attempts.len(), 1, "bad credentials are not retried");
    assert_eq!((attempts[0].status, attempts[0].code), (401, Some(20003)));

    let text = logs.text();
    let line = text.lines().find(|l| l.contains("twilio_auth_failed")).expect("an error log names the cause");
    assert!(line.contains("\"level\":\"ERROR\"") && line.contains("credentials"), "{line}");
    assert!(!text.contains("not-the-token"), "the token must not be logged");
}

#[tokio::test]
async fn only_failures_that_created_nothing_are_retried_within_bounds() {
    let app = TestApp::builder().twilio(TwilioSetup::default()).start().await;
    // More 429s than the three calls allowed: the send gives up after exactly three.
    app.fake_twilio().push_faults(std::iter::repeat_n(status(429), 5));
    let reply = app.send(PHONE).await;
    assert_eq!((reply.status, reply.error_code()), (502, "sms_failed"), "{}", reply.body);
    assert_eq!(app.fake_twilio().attempts().iter().map(|a| a.status).collect::<Vec<_>>(), [429, 429, 429]);

    // Two 429s (Twilio 20429), then Twilio recovers: the user gets the SMS.
    app.fake_twilio().reset();
    app.fake_twilio().push_faults([status(429), status(429)]);
    let reply = app.send(PHONE).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let attempts = app.fake_twilio().attempts();
    assert_eq!(attempts.iter().map(|a| a.status).collect::<Vec<_>>(), [429, 429, 201]);
    assert_eq!(attempts[0].code, Some(20429));
    assert_eq!(app.fake_twilio().messages().len(), 1);

    // A server error may come after Twilio created the message: never retried.
    for fault in [status(500), status(503)] {
        app.fake_twilio().reset();
        app.fake_twilio().push_faults([fault, fault]);
        let reply = app.send(PHONE).await;
        assert_eq!((reply.status, reply.error_code()), (502, "sms_failed"), "{fault:?}: {}", reply.body);
        assert_eq!(app.fake_twilio().attempts().len(), 1, "{fault:?}: one call, no retry");
    }
}

/// The SMS budgets count one unit per send; whatever Twilio answers, a send makes at most
/// one call that may have created a message, so Twilio never texts more than was counted.
#[tokio::test]
async fn twilio_never_creates_more_messages_than_the_budgets_counted() {
    for (cap, limit) in [("OTP_SMS_PER_DAY", 4), ("OTP_SMS_PER_COUNTRY_HOUR", 4)] {
        // Every number here is new: let new numbers use the whole daily budget.
        let settings = [(cap, "4"), ("OTP_SENDS_PER_IP", "100"), ("OTP_SMS_PER_DAY_NEW_PERCENT", "100")];
        let app = TestApp::builder().twilio(TwilioSetup::default()).settings(&settings).start().await;
        let fake = app.fake_twilio();
        let created_then_500 = Fault::CreatedThenStatus { status: 500 };
        let created_then_503 = Fault::CreatedThenStatus { status: 503 };
        // Twilio creates each message and then fails, once after a 429 that created nothing.
        fake.push_faults([created_then_500, status(429), created_then_503, created_then_500, created_then_503]);
        fake.push_faults(std::iter::repeat_n(created_then_500, 20));
        let mut allowed = 0;
        for n in 0..8 {
            let reply = app.send(&format!("+1650555020{n}")).await;
            match (reply.status, reply.error_code()) {
                (502, "sms_failed") => allowed += 1,
                (429, "rate_limited") => {}
                other => panic!("{cap}: send {n}: {other:?} {}", reply.body),
            }
        }
        assert_eq!(allowed, limit, "{cap}: the cap counted {limit} sends, then refused");
        let created = fake.messages().len();
        assert_eq!(created, limit, "{cap}: one message per counted send, not one per call");
        let statuses: Vec<_> = fake.attempts().iter().map(|a| a.status).collect();
        assert_eq!(statuses, [500, 429, 503, 500, 503], "{cap}: only the 429 was retried");
    }
}

#[tokio::test]
async fn a_timed_out_call_is_not_retried_and_its_code_is_withdrawn() {
    let setup = TwilioSetup { attempt_timeout: Duration::from_millis(300), ..TwilioSetup::default() };
    let app = TestApp::builder().twilio(setup).start().await;
    // Far longer than the call's timeout, so that no stalled machine sees the answer first.
    app.fake_twilio().push_faults([Fault::Slow { delay_ms: 60_000 }]);
    let reply = app.send(PHONE).await;
    assert_eq!((reply.status, reply.error_code()), (502, "sms_failed"), "{}", reply.body);
    // Twilio took the call (the fake records it on arrival) but answered too late. A retry
    // could text a second SMS for one counted send: there is none, and none can come, as
    // the send has answered.
    assert_eq!(app.fake_twilio().attempts().len(), 1, "one call, no retry");
    let delivered = app.fake_twilio().messages();
    assert_eq!(delivered.len(), 1, "the code reached the phone");
    // The service withdrew exactly that code: it no longer approves.
    let reply = app.verify(PHONE, &code_in(&delivered[0].body)).await;
    assert_eq!((reply.status, reply.error_code()), (410, "code_expired"), "{}", reply.body);
}

#[tokio::test]
async fn the_time_budget_bounds_the_retries_of_a_send() {
    let setup = TwilioSetup {
        retry: RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_millis(400),
            budget: Duration::from_millis(900),
        },
        ..TwilioSetup::default()
    };
    let policy = setup.retry.clone();
    let app = TestApp::builder().twilio(setup).start().await;
    app.fake_twilio().push_faults(std::iter::repeat_n(status(429), 10));
    let started = Instant::now();
    let reply = app.send(PHONE).await;
    let elapsed = started.elapsed();
    assert_eq!((reply.status, reply.error_code()), (502, "sms_failed"), "{}", reply.body);
    // What holds for every jitter draw and however slowly the calls run: no pause starts
    // a call past the budget, so at most `max_calls` calls (pauses of at least 100, 200,
    // 200, 200 ms fit in 900 ms: five), fewer than `max_attempts`.
    let calls = app.fake_twilio().attempts().len() as u32;
    assert_eq!(policy.max_calls(), 5);
    assert!((1..=policy.max_calls()).contains(&calls), "the budget, not max_attempts, stopped the retries: {calls}");
    // Without the budget, ten calls would pause at least 1.7 s in all; with it, no call
    // outlives it. The rest of the send is the in-memory store's: a second is ample.
    assert!(elapsed < policy.budget + Duration::from_secs(1), "the budget bounds the send: {elapsed:?}");
    assert!(app.fake_twilio().messages().is_empty());
    let reply = app.verify(PHONE, "123456").await;
    assert_eq!(
        (reply.status, reply.error_code()),
        (410, "code_expired"),
        "no code outlives a failed SMS: {}",
        reply.body
    );
}

/// The sender alone, with its own credentials: for what the HTTP edge cannot reach.
async fn sender_with(fake_url: String, sender_variable: &'static str, sender: &'static str) -> TwilioSender {
    let secrets = twilio::secrets(AUTH_TOKEN, sender_variable, sender);
    let cache = Arc::new(SecretCache::new(Arc::new(secrets), Required::default(), Duration::from_secs(300)));
    let config = TwilioConfig { api_base: fake_url, ..TwilioConfig::default() };
    TwilioSender::new(config, cache).expect("client builds")
}

#[tokio::test]
async fn twilios_magic_numbers_map_like_their_codes() {
    let fake = fake_twilio::FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("fake starts");
    let sender = sender_with(fake.url(), "TWILIO_FROM", FROM).await;
    for (number, code) in MAGIC_NUMBERS {
        let expected = match code {
            21211 => DeliveryError::InvalidNumber,
            21408 => DeliveryError::CountryBlocked,
            _ => DeliveryError::Unreachable,
        };
        let message = sms(number, "Your code is 123456.");
        assert_eq!(sender.send(&message).await, Err(expected), "{number}");
    }
    assert_eq!(fake.attempts().len(), MAGIC_NUMBERS.len());
}

#[tokio::test]
async fn a_messaging_service_replaces_the_from_number() {
    let fake = fake_twilio::FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("fake starts");
    let service_sid = "MG0123456789abcdef0123456789abcdef";
    let sender = sender_with(fake.url(), "TWILIO_MESSAGING_SERVICE_SID", service_sid).await;
    let body = "Votre code est 123456. Ne le partagez pas.";
    let message = sms(PHONE, body);
    let receipt = sender.send(&message).await;
    let sent = fake.messages();
    assert_eq!(sent.len(), 1);
    assert_eq!(receipt.map(|r| r.sid), Ok(Some(sent[0].sid.clone())), "the receipt names the message");
    assert_eq!((sent[0].from.as_deref(), sent[0].messaging_service_sid.as_deref()), (None, Some(service_sid)));
    assert_eq!(sent[0].body, body, "the body arrives intact, accents and all");
}

#[tokio::test]
async fn warming_opens_the_connection_the_first_send_then_reuses() {
    let fake = fake_twilio::FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("fake starts");
    let sender = sender_with(fake.url(), "TWILIO_FROM", FROM).await;
    assert_eq!(sender.warm().await, Ok(()));
    assert_eq!(fake.account_fetches(), [200], "one authenticated Account fetch");
    assert_eq!((fake.connections(), fake.attempts().len()), (1, 0), "connected, nothing sent");
    let message = sms(PHONE, "Your code is 123456.");
    assert!(sender.send(&message).await.is_ok());
    assert_eq!(fake.connections(), 1, "the first send went over the warmed connection");
}

#[tokio::test]
async fn a_failed_warm_up_is_reported_and_leaves_sending_to_the_send() {
    let fake = fake_twilio::FakeTwilio::start(ACCOUNT_SID, "another-auth-token").await.expect("fake starts");
    let sender = sender_with(fake.url(), "TWILIO_FROM", FROM).await;
    let (logs, guard) = capture_logs("warn");
    let warmed = sender.warm().await;
    drop(guard);
    assert!(matches!(&warmed, Err(DeliveryError::Failed(reason)) if reason.contains("20003")), "{warmed:?}");
    assert!(logs.text().contains("twilio_warm_failed"), "{}", logs.text());
    assert!(!logs.text().contains(AUTH_TOKEN), "no secret in the log");
    assert!(fake.messages().is_empty() && fake.attempts().is_empty(), "a warm-up never sends");

    // Nothing listening: an error, quickly, and no panic.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("binds").local_addr().expect("address");
    let sender = sender_with(format!("http://{closed}"), "TWILIO_FROM", FROM).await;
    assert!(sender.warm().await.is_err());
}

const WHATSAPP_FROM: &str = "whatsapp:+15005550006";
const CONTENT_SID: &str = "HX0123456789abcdef0123456789abcdef";

/// Every channel offered, WhatsApp's sender and template set.
fn all_channels() -> [(&'static str, &'static str); 4] {
    [
        ("OTP_CHANNELS", "sms,whatsapp,voice"),
        ("TWILIO_WHATSAPP_FROM", WHATSAPP_FROM),
        ("TWILIO_WHATSAPP_CONTENT_SID", CONTENT_SID),
        ("OTP_SENDS_PER_IP", "50"),
    ]
}

async fn send_on(app: &TestApp, phone: &str, channel: &str, locale: &str) -> otp_testkit::Reply {
    app.post(Endpoint::SendOtp, json!({ "phone": phone, "channel": channel, "locale": locale }), CLIENT_IP).await
}

/// The claims of an approval's token, checked against the served keys.
async fn claims_of(app: &TestApp, reply: &otp_testkit::Reply) -> serde_json::Value {
    let token = reply.body["token"].as_str().expect("a token");
    tokens::check(token, &app.jwks().await.body).expect("the token checks")
}

#[tokio::test]
async fn a_call_goes_out_in_twilios_shape_says_the_code_and_approves_as_tel() {
    let app = TestApp::builder().twilio(TwilioSetup::default()).settings(&all_channels()).start().await;
    let reply = send_on(&app, "+1 650 555 0100", "voice", "pt-BR").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["channel"], "voice");
    assert_eq!(reply.body["channels"], json!(["sms", "whatsapp", "voice"]));
    let fake = app.fake_twilio();
    assert!(fake.messages().is_empty(), "a call, no message");
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!((call.to.as_str(), call.from.as_str()), (PHONE, FROM));
    assert!(call.sid.starts_with("CA") && call.sid.len() == 34, "{}", call.sid);
    let twiml = call.twiml.as_deref().expect("TwiML inline, no URL to host");
    assert!(twiml.starts_with("<Response><Say voice=\"Polly.Camila\" language=\"pt-BR\">Seu código"), "{twiml}");
    assert_eq!(twiml.matches("<Say").count(), 3, "{twiml}");
    let attempts = fake.attempts();
    assert_eq!(
        (attempts[0].resource, attempts[0].params.clone()),
        ("Calls.json", vec!["To".into(), "From".into(), "Twiml".into()])
    );

    let code = app.last_code_on(PHONE, Channel::Voice);
    assert_eq!(code.len(), 6, "{twiml}");
    // Said twice: both lines say the same digits.
    let second = twiml.split("<Say").nth(2).expect("a second line");
    let words: Vec<&str> =
        twiml.split("<Say").nth(1).and_then(|l| l.split(": ").nth(1)).unwrap_or_default().split("</").collect();
    assert!(second.contains(words[0]), "the second line repeats the digits: {twiml}");
    let reply = app.verify(PHONE, &code).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(claims_of(&app, &reply).await["amr"], json!(["tel"]), "a code by call is tel (RFC 8176)");
}

#[tokio::test]
async fn a_whatsapp_code_fills_the_approved_template_and_approves_as_sms() {
    let app = TestApp::builder().twilio(TwilioSetup::default()).settings(&all_channels()).start().await;
    let reply = send_on(&app, PHONE, "whatsapp", "pt").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.body["channel"], "whatsapp");
    let messages = app.fake_twilio().messages();
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(message.to, format!("whatsapp:{PHONE}"));
    assert_eq!((message.from.as_deref(), message.content_sid.as_deref()), (Some(WHATSAPP_FROM), Some(CONTENT_SID)));
    assert_eq!(message.body, "", "the template's text is Meta's, not ours");
    let attempts = app.fake_twilio().attempts();
    assert_eq!(attempts[0].resource, "Messages.json");
    assert_eq!(attempts[0].params, ["To", "From", "ContentSid", "ContentVariables"]);
    let code = app.last_code_on(PHONE, Channel::Whatsapp);
    let variables: serde_json::Value =
        serde_json::from_str(message.content_variables.as_deref().unwrap_or("")).unwrap();
    assert_eq!(variables, json!({ "1": code }), "the code is the template's one variable");
    let reply = app.verify(PHONE, &code).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(claims_of(&app, &reply).await["amr"], json!(["sms"]), "WhatsApp counts as sms");
}

#[tokio::test]
async fn call_and_whatsapp_refusals_give_the_answers_of_sms_refusals() {
    let app = TestApp::builder().twilio(TwilioSetup::default()).settings(&all_channels()).start().await;
    for (phone, code) in CALL_MAGIC_NUMBERS {
        let expected = match code {
            21217 => (400, "invalid_phone"),
            21215 => (403, "country_not_allowed"),
            _ => (422, "phone_unreachable"),
        };
        let reply = send_on(&app, phone, "voice", "en").await;
        assert_eq!((reply.status, reply.error_code()), expected, "call to {phone} ({code}): {}", reply.body);
    }
    let cases = [
        ("+16505550111", 63003, 422, "phone_unreachable"), // not on WhatsApp
        ("+16505550112", 63032, 422, "phone_unreachable"),
        ("+16505550113", 63024, 400, "invalid_phone"),
        ("+16505550114", 63007, 502, "sms_failed"), // our sender is not a WhatsApp sender
    ];
    for (phone, twilio_code, status, code) in cases {
        app.fake_twilio().fail_number(phone, twilio_code);
        let reply = send_on(&app, phone, "whatsapp", "es").await;
        assert_eq!((reply.status, reply.error_code()), (status, code), "WhatsApp {twilio_code}: {}", reply.body);
        // The code of a failed send is withdrawn, as for SMS.
        let reply = app.verify(phone, "123456").await;
        assert_eq!(reply.error_code(), "code_expired");
    }
    let calls = app.fake_twilio().attempts().len();
    assert_eq!(calls, CALL_MAGIC_NUMBERS.len() + cases.len(), "one call each, no retry");
    assert!(app.fake_twilio().calls().is_empty() && app.fake_twilio().messages().is_empty());
}

#[tokio::test]
async fn a_call_needs_a_number_to_call_from_not_a_messaging_service() {
    let (logs, _guard) = capture_logs("info");
    let fake = fake_twilio::FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("fake starts");
    let sender = sender_with(fake.url(), "TWILIO_MESSAGING_SERVICE_SID", "MG0123456789abcdef0123456789abcdef").await;
    let code = otp_core::domain::OtpCode::parse("123456", otp_core::domain::CodeLength::default()).unwrap();
    let call = CodeMessage {
        to: PHONE.into(),
        content: CodeContent::Voice(otp_core::domain::message::voice_script(Some("en"), &code)),
    };
    assert!(matches!(sender.send(&call).await, Err(DeliveryError::Failed(_))));
    assert!(fake.attempts().is_empty(), "nothing is sent");
    assert!(logs.text().contains("twilio_voice_needs_from"), "{}", logs.text());
    // And WhatsApp without its sender set.
    let whatsapp = CodeMessage {
        to: PHONE.into(),
        content: CodeContent::Whatsapp(otp_core::domain::message::whatsapp_template(None, &code)),
    };
    assert!(matches!(sender.send(&whatsapp).await, Err(DeliveryError::Failed(_))));
    assert!(logs.text().contains("twilio_whatsapp_unconfigured"));
    assert!(fake.attempts().is_empty());
}
