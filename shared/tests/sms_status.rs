//! `POST /api/sms-status` end to end: the real Twilio sender against the fake Twilio, which
//! posts its signed status callbacks over HTTP to the app's port; the records, the metric
//! lines and the logs that follow; and every input a stranger can post instead.

use fake_twilio::{Delivery, FakeTwilio};
use otp_core::Endpoint;
use otp_testkit::twilio::TwilioSetup;
use otp_testkit::{AUTH_TOKEN, CLIENT_IP, TestApp, capture_logs, wait_for_callbacks};
use serde_json::{Value, json};

const FORM: &str = "application/x-www-form-urlencoded";

async fn app() -> TestApp {
    TestApp::builder().twilio(TwilioSetup::default()).status_callbacks().start().await
}

fn pairs(params: &[(&str, &str)]) -> Vec<(String, String)> {
    params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A callback posted straight to the handler, as API Gateway would pass it on.
async fn post(app: &TestApp, content_type: &str, body: Vec<u8>, signature: Option<&str>) -> (u16, Value) {
    let mut request =
        http::Request::builder().method("POST").uri("/api/sms-status").header("content-type", content_type);
    if let Some(signature) = signature {
        request = request.header("x-twilio-signature", signature);
    }
    let request = request.body(body).expect("a request");
    let response = app.api.handle(Endpoint::SmsStatus, &request, None).await;
    let status = response.status().as_u16();
    let body = response.into_body();
    (status, if body.is_empty() { Value::Null } else { serde_json::from_str(&body).expect("JSON") })
}

/// `params` as Twilio would post them to the app, signed with `token` over `url`.
async fn post_signed(app: &TestApp, url: &str, token: &str, params: &[(String, String)]) -> (u16, Value) {
    let signature = fake_twilio::sign(token, url, params);
    let body = serde_urlencoded::to_string(params).expect("a form");
    post(app, FORM, body.into_bytes(), Some(&signature)).await
}

/// The metric lines that count `metric` (`Sent`, `Delivered`, ...).
fn counted(app: &TestApp, metric: &str) -> Vec<Value> {
    app.metric_lines().into_iter().filter(|line| line.get(metric).is_some()).collect()
}

fn send_body(phone: &str) -> Value {
    json!({ "phone": phone })
}

async fn send(app: &TestApp, phone: &str) {
    let reply = app.post(Endpoint::SendOtp, send_body(phone), CLIENT_IP).await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

fn fake(app: &TestApp) -> &FakeTwilio {
    app.fake_twilio()
}

#[tokio::test]
async fn without_a_callback_url_the_route_is_not_served_and_sends_ask_for_no_callbacks() {
    let app = TestApp::builder().twilio(TwilioSetup::default()).start().await;
    send(&app, "+16505550100").await;
    assert!(!app.fake_twilio().attempts()[0].params.contains(&"StatusCallback".to_owned()));
    let params = pairs(&[("MessageSid", "SM0123456789abcdef0123456789abcdef"), ("MessageStatus", "delivered")]);
    let (status, body) = post_signed(&app, "https://api.example.com/api/sms-status", AUTH_TOKEN, &params).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")));
    assert!(fake(&app).callbacks().is_empty());
}

#[tokio::test]
async fn a_code_is_followed_to_its_delivery_and_its_approval_with_metrics_per_country() {
    let (logs, _guard) = capture_logs("info");
    let app = app().await;
    send(&app, "+16505550100").await;
    // The send logs the sid Twilio answered (it names the message in Twilio's console); what
    // follows, the callbacks' handling, logs nothing of theirs.
    let logged_by_the_send = logs.text().len();
    let callbacks = wait_for_callbacks(fake(&app), 2).await;
    let statuses: Vec<(&str, Option<u16>)> = callbacks
        .iter()
        .map(|c| (c.params.iter().find(|(k, _)| k == "MessageStatus").map_or("", |(_, v)| v.as_str()), c.answered))
        .collect();
    assert_eq!(statuses, [("sent", Some(204)), ("delivered", Some(204))]);
    assert_eq!(callbacks[0].url, app.status_callback_url(), "posted to the URL the send named");
    let sent = counted(&app, "Sent");
    assert_eq!((sent.len(), &sent[0]["Country"], &sent[0]["Channel"]), (1, &json!("US"), &json!("sms")));
    let delivered = counted(&app, "Delivered");
    assert_eq!(delivered.len(), 1, "{:?}", app.metric_lines());
    assert!(delivered[0]["DeliveryLatency"].as_i64().is_some_and(|ms| ms >= 0), "{}", delivered[0]);
    assert_eq!(delivered[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Country"], ["Service"]]));
    let code = app.last_code("+16505550100");
    assert_eq!(app.verify("+16505550100", &code).await.status, 200);
    let approved = counted(&app, "Approved");
    assert_eq!((approved.len(), &approved[0]["Country"]), (1, &json!("US")));
    let text = logs.text().split_off(logged_by_the_send);
    assert!(text.contains("\"event\":\"delivery_status\"") && text.contains("\"state\":\"delivered\""), "{text}");
    let sid = &fake(&app).messages()[0].sid;
    assert!(!text.contains("6505550100") && !text.contains(sid.as_str()), "no number, no sid: {text}");
}

#[tokio::test]
async fn undelivered_and_failed_codes_are_counted_and_logged_with_twilios_error_code() {
    let (logs, _guard) = capture_logs("info");
    let app = app().await;
    let scripted = [
        ("+16505550101", Delivery::Undelivered { error_code: 30003 }),
        ("+16505550102", Delivery::Undelivered { error_code: 30005 }),
        ("+16505550103", Delivery::Undelivered { error_code: 30006 }),
        ("+16505550104", Delivery::Undelivered { error_code: 30007 }),
        ("+16505550105", Delivery::Failed { error_code: 30008 }),
    ];
    for (phone, delivery) in scripted {
        fake(&app).script_delivery(phone, delivery);
        send(&app, phone).await;
    }
    let callbacks = wait_for_callbacks(fake(&app), 9).await;
    assert!(callbacks.iter().all(|c| c.answered == Some(204)), "{callbacks:#?}");
    assert_eq!(counted(&app, "Undelivered").len(), 4, "{:?}", app.metric_lines());
    assert_eq!(counted(&app, "Failed").len(), 1);
    assert!(counted(&app, "Delivered").is_empty());
    let text = logs.text();
    for code in ["30003", "30005", "30006", "30007", "30008"] {
        assert!(text.contains(&format!("\"error_code\":{code}")), "{code} is logged: {text}");
    }
    assert!(text.contains("\"event\":\"delivery_undelivered\"") && text.contains("\"event\":\"delivery_failed\""));
    assert!(text.contains("\"within_code_life\":true"), "{text}");
    assert!(text.contains("\"prefix\":\"1-650\""), "the guard's prefix, as the send recorded it: {text}");
    assert!(!text.contains("650555010"), "no number: {text}");
}

#[tokio::test]
async fn repeated_delayed_and_out_of_order_callbacks_count_one_final_state_each() {
    let app = app().await;
    fake(&app).script_delivery("+16505550106", Delivery::Repeated);
    fake(&app).script_delivery("+16505550107", Delivery::OutOfOrder);
    fake(&app).script_delivery("+16505550108", Delivery::Delayed { delay_ms: 300 });
    fake(&app).script_delivery("+16505550109", Delivery::Silent);
    for phone in ["+16505550106", "+16505550107", "+16505550108", "+16505550109"] {
        send(&app, phone).await;
    }
    let callbacks = wait_for_callbacks(fake(&app), 8).await;
    assert!(callbacks.iter().all(|c| c.answered == Some(204)), "{callbacks:#?}");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(fake(&app).callbacks().len(), 8, "the silent number got none");
    assert_eq!(counted(&app, "Delivered").len(), 3, "one each, however they came: {:?}", app.metric_lines());
}

/// A message the fake accepted, which it reports nothing about by itself.
async fn silent_message(app: &TestApp) -> String {
    fake(app).script_delivery("+16505550110", Delivery::Silent);
    send(app, "+16505550110").await;
    fake(app).messages()[0].sid.clone()
}

#[tokio::test]
async fn a_forged_callback_is_refused_and_changes_nothing() {
    let app = app().await;
    let sid = silent_message(&app).await;
    let url = app.status_callback_url();
    let params = pairs(&[("MessageSid", &sid), ("MessageStatus", "undelivered"), ("ErrorCode", "30003")]);
    let body = serde_urlencoded::to_string(&params).expect("a form").into_bytes();
    let good = fake_twilio::sign(AUTH_TOKEN, &url, &params);
    let flipped: String = good.chars().rev().collect();
    let forged = [
        ("no signature", None),
        ("an empty one", Some(String::new())),
        ("one character short", Some(good[..27].to_owned())),
        ("one too long", Some(format!("{good}A"))),
        ("another account's token", Some(fake_twilio::sign("another-token", &url, &params))),
        ("signed for another URL", Some(fake_twilio::sign(AUTH_TOKEN, "https://evil.example/api/sms-status", &params))),
        ("reversed", Some(flipped)),
    ];
    for (what, signature) in forged {
        let (status, answer) = post(&app, FORM, body.clone(), signature.as_deref()).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (403, Some("forbidden")), "{what}");
    }
    // A signed callback whose status was changed on the way.
    let mut tampered = params.clone();
    tampered[1].1 = "delivered".into();
    let tampered_body = serde_urlencoded::to_string(&tampered).expect("a form").into_bytes();
    assert_eq!(post(&app, FORM, tampered_body, Some(&good)).await.0, 403);
    assert!(counted(&app, "Undelivered").is_empty() && counted(&app, "Delivered").is_empty(), "nothing changed");
    // The record is still queued: Twilio's own callback moves it.
    assert_eq!(post(&app, FORM, body.clone(), Some(&good)).await.0, 204);
    assert_eq!(counted(&app, "Undelivered").len(), 1);
    // A replay of it is answered, and changes nothing more.
    assert_eq!(post(&app, FORM, body, Some(&good)).await.0, 204);
    assert_eq!(counted(&app, "Undelivered").len(), 1);
}

#[tokio::test]
async fn bad_input_gets_its_contract_status_and_records_and_logs_nothing_of_it() {
    let (logs, _guard) = capture_logs("debug");
    let app = app().await;
    let sid = silent_message(&app).await;
    let logged_by_the_send = logs.text().len();
    let url = app.status_callback_url();
    let many: Vec<(String, String)> = (0..10_000).map(|i| (format!("F{i}"), "x".to_owned())).collect();
    let many_body = serde_urlencoded::to_string(&many).expect("a form").into_bytes();
    let (status, answer) = post(&app, FORM, many_body, Some(&fake_twilio::sign(AUTH_TOKEN, &url, &many))).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (413, Some("payload_too_large")), "10,000 fields");
    let huge = format!("MessageSid={sid}&MessageStatus=delivered&Pad={}", "p".repeat(1 << 20));
    assert_eq!(post(&app, FORM, huge.into_bytes(), Some("x")).await.0, 413, "1 MB");
    // 65 short fields fit in 4 KiB: refused by count.
    let fields: Vec<(String, String)> = (0..65).map(|i| (format!("F{i}"), String::new())).collect();
    let (status, answer) = post_signed(&app, &url, AUTH_TOKEN, &fields).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")), "too many fields");
    let signed_bad = [
        pairs(&[("MessageSid", &sid), ("MessageStatus", "exploded")]),
        pairs(&[("MessageSid", "SM-not-a-sid"), ("MessageStatus", "delivered")]),
        pairs(&[("MessageSid", &sid.to_uppercase()), ("MessageStatus", "delivered")]),
        pairs(&[("MessageSid", &sid), ("MessageStatus", "delivered"), ("ErrorCode", "thirty")]),
        pairs(&[("MessageStatus", "delivered")]),
    ];
    for params in &signed_bad {
        let (status, answer) = post_signed(&app, &url, AUTH_TOKEN, params).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("invalid_request")), "{params:?}");
    }
    let wrong_length =
        post(&app, FORM, format!("MessageSid={sid}&MessageStatus=delivered").into_bytes(), Some("abc")).await;
    assert_eq!(wrong_length.0, 403);
    let json_body = json!({ "MessageSid": sid, "MessageStatus": "delivered" }).to_string().into_bytes();
    assert_eq!(post(&app, "application/json", json_body, None).await.0, 415);
    let get = http::Request::builder().method("GET").uri("/api/sms-status").body(Vec::new()).expect("a request");
    assert_eq!(app.api.handle(Endpoint::SmsStatus, &get, None).await.status(), 405);
    let unknown = pairs(&[("MessageSid", "SMffffffffffffffffffffffffffffffff"), ("MessageStatus", "delivered")]);
    assert_eq!(post_signed(&app, &url, AUTH_TOKEN, &unknown).await.0, 204, "an unknown sid is ignored");
    assert!(counted(&app, "Delivered").is_empty(), "nothing recorded: {:?}", app.metric_lines());
    // The message is still queued: a real callback moves it.
    let real = pairs(&[("MessageSid", &sid), ("MessageStatus", "delivered")]);
    assert_eq!(post_signed(&app, &url, AUTH_TOKEN, &real).await.0, 204);
    assert_eq!(counted(&app, "Delivered").len(), 1);
    let text = logs.text().split_off(logged_by_the_send);
    for leaked in ["exploded", "SM-not-a-sid", "thirty", "pppp", "F64", &sid, &sid.to_uppercase(), "ffffffffffff"] {
        assert!(!text.contains(leaked), "{leaked} came from a request and is not logged: {text}");
    }
}

#[tokio::test]
async fn calls_and_whatsapp_messages_are_followed_too() {
    let settings = [
        ("OTP_CHANNELS", "sms,whatsapp,voice"),
        ("TWILIO_WHATSAPP_FROM", "whatsapp:+15005550006"),
        ("TWILIO_WHATSAPP_CONTENT_SID", "HX0123456789abcdef0123456789abcdef"),
    ];
    let app = TestApp::builder().twilio(TwilioSetup::default()).status_callbacks().settings(&settings).start().await;
    fake(&app).script_delivery("+16505550112", Delivery::Undelivered { error_code: 0 });
    for (phone, channel) in [("+16505550111", "voice"), ("+16505550112", "voice"), ("+16505550113", "whatsapp")] {
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": phone, "channel": channel }), CLIENT_IP).await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let callbacks = wait_for_callbacks(fake(&app), 6).await;
    assert!(callbacks.iter().all(|c| c.answered == Some(204)), "{callbacks:#?}");
    let delivered: Vec<Value> = counted(&app, "Delivered");
    let channels: Vec<&str> = delivered.iter().filter_map(|l| l["Channel"].as_str()).collect();
    assert_eq!(delivered.len(), 2, "{:?}", app.metric_lines());
    assert!(channels.contains(&"voice") && channels.contains(&"whatsapp"), "{channels:?}");
    let undelivered = counted(&app, "Undelivered");
    assert_eq!((undelivered.len(), &undelivered[0]["Channel"]), (1, &json!("voice")), "a call not answered");
}

/// The conversion guard takes a carrier problem for what it is: SMS reported undelivered
/// for a carrier's reason (30003 unreachable here) are left out of their prefix's sends, so
/// the prefix stays open; SMS to numbers that do not exist (30005, what a spray of invented
/// numbers gets) stay counted, and their prefix is paused as before.
#[tokio::test]
async fn the_guard_leaves_out_sms_a_carrier_did_not_deliver_but_not_those_to_numbers_that_do_not_exist() {
    let app = TestApp::builder()
        .twilio(TwilioSetup::default())
        .status_callbacks()
        .settings(&[("OTP_GUARD_MIN_SENDS", "3"), ("OTP_SENDS_PER_IP", "100")])
        .start()
        .await;
    for (prefix, code) in [("+1650555", 30003), ("+1415555", 30005)] {
        for i in 0..3 {
            let phone = format!("{prefix}02{i:02}");
            fake(&app).script_delivery(&phone, Delivery::Undelivered { error_code: code });
            send(&app, &phone).await;
        }
    }
    let callbacks = wait_for_callbacks(fake(&app), 12).await;
    assert!(callbacks.iter().all(|c| c.answered == Some(204)), "{callbacks:#?}");
    let carrier = app.post(Endpoint::SendOtp, send_body("+16505550299"), CLIENT_IP).await;
    assert_eq!(carrier.status, 202, "1-650's SMS never reached a phone: no sends to judge: {}", carrier.body);
    let invented = app.post(Endpoint::SendOtp, send_body("+14155550299"), CLIENT_IP).await;
    assert_eq!((invented.status, invented.error_code()), (429, "rate_limited"), "{}", invented.body);
}
