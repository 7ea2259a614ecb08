//! The fake over HTTP, as any Twilio client sees it: Twilio's answer shapes, and the
//! control endpoints the local run uses.

use fake_twilio::FakeTwilio;
use serde_json::Value;

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "token-1";

async fn create(fake: &FakeTwilio, token: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/2010-04-01/Accounts/{SID}/Messages.json", fake.url()))
        .basic_auth(SID, Some(token))
        .form(form)
        .send()
        .await
        .expect("the fake answers");
    let status = response.status().as_u16();
    let body = response.text().await.expect("a body");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn control(fake: &FakeTwilio, path: &str, body: &str) -> u16 {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", fake.url()))
        .body(body.to_owned())
        .send()
        .await
        .expect("answer");
    response.status().as_u16()
}

#[tokio::test]
async fn success_is_twilios_message_resource() {
    let fake = FakeTwilio::start(SID, TOKEN).await.expect("starts");
    let (status, body) =
        create(&fake, TOKEN, &[("To", "+14155550123"), ("From", "+15005550006"), ("Body", "Hi 1")]).await;
    assert_eq!(status, 201, "{body}");
    let sid = body["sid"].as_str().expect("sid");
    assert!(sid.starts_with("SM") && sid.len() == 34);
    assert_eq!(body["status"], "queued");
    assert_eq!(
        (body["to"].as_str(), body["from"].as_str(), body["body"].as_str()),
        (Some("+14155550123"), Some("+15005550006"), Some("Hi 1"))
    );
    assert_eq!(body["account_sid"], SID);
    assert_eq!(body["num_segments"], "1", "Twilio sends counts as strings");
    let created = body["date_created"].as_str().expect("date_created");
    assert!(chrono::DateTime::parse_from_rfc2822(created).is_ok(), "RFC 2822 like Twilio: {created}");
    assert_eq!(body["uri"], format!("/2010-04-01/Accounts/{SID}/Messages/{sid}.json"));
    assert_eq!(fake.messages().len(), 1);
}

#[tokio::test]
async fn errors_are_twilios_error_json() {
    let fake = FakeTwilio::start(SID, TOKEN).await.expect("starts");
    let (status, body) =
        create(&fake, "wrong", &[("To", "+14155550123"), ("From", "+15005550006"), ("Body", "x")]).await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], 20003);
    assert_eq!(body["status"], 401);
    assert_eq!(body["more_info"], "https://www.twilio.com/docs/errors/20003");
    assert!(body["message"].is_string());

    let (status, body) = create(&fake, TOKEN, &[("To", "+15005550009"), ("From", "+15005550006"), ("Body", "x")]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21614)));
    let (status, body) = create(&fake, TOKEN, &[("To", "+14155550123"), ("Body", "x")]).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(21603)), "a sender is required");
    assert!(fake.messages().is_empty());
    assert_eq!(fake.attempts().len(), 3);
}

#[tokio::test]
async fn control_endpoints_script_faults_and_numbers() {
    let fake = FakeTwilio::start(SID, TOKEN).await.expect("starts");
    let form = [("To", "+14155550123"), ("MessagingServiceSid", "MG1"), ("Body", "x")];
    assert_eq!(
        control(&fake, "/_fake/faults", r#"{"count": 2, "fault": {"kind": "status", "status": 429}}"#).await,
        204
    );
    assert_eq!(create(&fake, TOKEN, &form).await.1["code"], 20429);
    assert_eq!(create(&fake, TOKEN, &form).await.0, 429);
    let (status, body) = create(&fake, TOKEN, &form).await;
    assert_eq!((status, body["status"].as_str()), (201, Some("accepted")), "a Messaging Service accepts first");

    assert_eq!(control(&fake, "/_fake/numbers", r#"{"to": "+14155550123", "code": 21610}"#).await, 204);
    assert_eq!(create(&fake, TOKEN, &form).await.1["code"], 21610);
    assert_eq!(control(&fake, "/_fake/faults", "not json").await, 400);
    // Every fault as the module's docs spell it, fields in camelCase like the delivery scripts'.
    for fault in [r#"{"kind": "slow", "delayMs": 1}"#, r#"{"kind": "createdThenStatus", "status": 500}"#] {
        let request = format!(r#"{{"count": 0, "fault": {fault}}}"#);
        assert_eq!(control(&fake, "/_fake/faults", &request).await, 204, "{fault}");
    }
    assert_eq!(control(&fake, "/_fake/faults", r#"{"fault": {"kind": "slow", "delay_ms": 1}}"#).await, 400);

    let listed: Value =
        reqwest::get(format!("{}/_fake/attempts", fake.url())).await.expect("answer").json_or_null().await;
    assert_eq!(listed.as_array().map(Vec::len), Some(4));
    let listed: Value =
        reqwest::get(format!("{}/_fake/messages", fake.url())).await.expect("answer").json_or_null().await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    assert_eq!(control(&fake, "/_fake/reset", "").await, 204);
    assert!(fake.attempts().is_empty() && fake.messages().is_empty());
    assert_eq!(create(&fake, TOKEN, &form).await.0, 201, "reset forgets scripted numbers");
}

trait JsonOrNull {
    async fn json_or_null(self) -> Value;
}

impl JsonOrNull for reqwest::Response {
    async fn json_or_null(self) -> Value {
        serde_json::from_str(&self.text().await.unwrap_or_default()).unwrap_or(Value::Null)
    }
}

#[tokio::test]
async fn a_fault_after_creating_keeps_the_message_and_answers_the_error() {
    let fake = FakeTwilio::start(SID, TOKEN).await.expect("starts");
    let form = [("To", "+14155550123"), ("From", "+15005550006"), ("Body", "x")];
    let fault = r#"{"count": 2, "fault": {"kind": "createdThenStatus", "status": 503}}"#;
    assert_eq!(control(&fake, "/_fake/faults", fault).await, 204);
    let (status, body) = create(&fake, TOKEN, &form).await;
    assert_eq!((status, body["code"].as_u64()), (503, Some(20503)), "{body}");
    // A refused number is refused as usual: nothing to create.
    let refused = [("To", "+15005550009"), ("From", "+15005550006"), ("Body", "x")];
    assert_eq!(create(&fake, TOKEN, &refused).await.1["code"], 21614);
    let messages = fake.messages();
    assert_eq!(messages.len(), 1, "the first call created its message");
    let attempts = fake.attempts();
    assert_eq!((attempts[0].status, attempts[0].sid.as_deref()), (503, Some(messages[0].sid.as_str())));
    assert_eq!((attempts[1].status, attempts[1].sid.as_deref()), (400, None));
}

#[tokio::test]
async fn status_callbacks_go_to_the_url_of_the_send_signed_and_as_scripted() {
    let fake = FakeTwilio::start(SID, TOKEN).await.expect("starts");
    // A listener that takes the callbacks: one connection per callback, answered 204.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let url = format!("http://{}/api/sms-status", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n").await;
        }
    });
    assert_eq!(control(&fake, "/_fake/delivery", "{\"to\": 5}").await, 400);
    let script = r#"{"to": "+14155550124", "delivery": {"kind": "undelivered", "errorCode": 30006}}"#;
    assert_eq!(control(&fake, "/_fake/delivery", script).await, 204);
    let silent = r#"{"to": "+14155550125", "delivery": {"kind": "silent"}}"#;
    assert_eq!(control(&fake, "/_fake/delivery", silent).await, 204);
    for to in ["+14155550124", "+14155550125"] {
        let form = [("To", to), ("From", "+15005550006"), ("Body", "Hi"), ("StatusCallback", url.as_str())];
        assert_eq!(create(&fake, TOKEN, &form).await.0, 201);
    }
    let started = std::time::Instant::now();
    while fake.callbacks().len() < 2 && started.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let callbacks = fake.callbacks();
    assert_eq!(callbacks.len(), 2, "two for the scripted number, none for the silent one: {callbacks:#?}");
    let field = |i: usize, name: &str| {
        callbacks[i].params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    };
    assert_eq!((field(0, "MessageStatus"), field(1, "MessageStatus")), ("sent".into(), "undelivered".into()));
    assert_eq!(field(1, "ErrorCode"), "30006");
    assert_eq!(field(1, "To"), "+14155550124");
    for callback in &callbacks {
        assert_eq!((callback.url.as_str(), callback.answered), (url.as_str(), Some(204)));
        assert_eq!(callback.signature, fake_twilio::sign(TOKEN, &url, &callback.params));
    }
    let listed: Value =
        reqwest::get(format!("{}/_fake/callbacks", fake.url())).await.expect("answer").json_or_null().await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
}
