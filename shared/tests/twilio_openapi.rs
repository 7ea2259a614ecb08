//! Our Twilio requests and the fake Twilio's answers, checked against Twilio's own
//! published OpenAPI description of its 2010-04-01 API (fetched once by
//! `scripts/lib/twilio-oai` into a cache outside the repository): every form parameter the
//! sender sends (SMS from a number and from a Messaging Service, a call, a WhatsApp
//! template) is one Twilio's create operation takes, with its required ones; every field
//! the fake answers (Message, Call, Account) is one of the resource's, of its type, its
//! enum values and its date format. So the fake cannot drift from Twilio into a shape the
//! sender happens to like. `OTP_SKIP_TWILIO_OAI=1` skips it where npm cannot reach its
//! registry; it fails otherwise.

use std::process::Command;

use otp_core::Endpoint;
use otp_testkit::twilio::TwilioSetup;
use otp_testkit::{ACCOUNT_SID, AUTH_TOKEN, CLIENT_IP, TestApp};
use serde_json::{Value, json};

const MESSAGES: &str = "/2010-04-01/Accounts/{AccountSid}/Messages.json";
const CALLS: &str = "/2010-04-01/Accounts/{AccountSid}/Calls.json";
const ACCOUNT: &str = "/2010-04-01/Accounts/{Sid}.json";

/// Twilio's description, or `None` when the run opts out.
fn spec() -> Option<Value> {
    if std::env::var("OTP_SKIP_TWILIO_OAI").as_deref() == Ok("1") {
        eprintln!("\n## SKIPPED: the checks against Twilio's OpenAPI description (OTP_SKIP_TWILIO_OAI=1)\n");
        return None;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output =
        Command::new(root.join("scripts/lib/twilio-oai")).current_dir(&root).output().expect("runs the script");
    assert!(
        output.status.success(),
        "scripts/lib/twilio-oai could not fetch Twilio's OpenAPI description (set OTP_SKIP_TWILIO_OAI=1 offline): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Some(serde_json::from_str(&text).expect("the description is JSON"))
}

/// Follows a `$ref` (`#/components/schemas/...`).
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/")) {
        Some(path) => path.split('/').fold(spec, |node, part| &node[part]),
        None => schema,
    }
}

/// The form parameters a create operation takes, and those it requires.
fn form_of(spec: &Value, path: &str) -> (Vec<String>, Vec<String>) {
    let schema = &spec["paths"][path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let names = schema["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    let required =
        schema["required"].as_array().map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect());
    (names, required.unwrap_or_default())
}

/// The problems of `answer` against the schema of `path`'s `method` answering `status`.
fn answer_problems(spec: &Value, path: &str, method: &str, status: &str, answer: &Value) -> Vec<String> {
    let schema =
        resolve(spec, &spec["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]);
    let properties = schema["properties"].as_object().unwrap_or_else(|| panic!("{path} {method} {status}: no schema"));
    let mut problems = Vec::new();
    for (name, value) in answer.as_object().expect("an object") {
        let Some(property) = properties.get(name) else {
            problems.push(format!("{name}: not a field of the resource"));
            continue;
        };
        let property = resolve(spec, property);
        if value.is_null() {
            if property["nullable"] != json!(true) {
                problems.push(format!("{name}: null, but not nullable"));
            }
            continue;
        }
        let fits = match property["type"].as_str() {
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            other => {
                problems.push(format!("{name}: schema type {other:?} unknown to this check"));
                continue;
            }
        };
        if !fits {
            problems.push(format!("{name}: {value} is not of type {}", property["type"]));
        }
        if let Some(allowed) = property["enum"].as_array()
            && !allowed.contains(value)
        {
            problems.push(format!("{name}: {value} is not one of {allowed:?}"));
        }
        if property["format"] == "date-time-rfc-2822"
            && value.as_str().is_none_or(|v| chrono::DateTime::parse_from_rfc2822(v).is_err())
        {
            problems.push(format!("{name}: {value} is not an RFC 2822 date"));
        }
    }
    problems
}

#[tokio::test]
async fn every_parameter_we_send_is_one_twilio_takes() {
    let Some(spec) = spec() else { return };
    let settings = [
        ("OTP_CHANNELS", "sms,whatsapp,voice"),
        ("TWILIO_WHATSAPP_FROM", "whatsapp:+15005550006"),
        ("TWILIO_WHATSAPP_CONTENT_SID", "HX0123456789abcdef0123456789abcdef"),
    ];
    let app = TestApp::builder().twilio(TwilioSetup::default()).status_callbacks().settings(&settings).start().await;
    for (i, channel) in ["sms", "voice", "whatsapp"].into_iter().enumerate() {
        let body = json!({ "phone": format!("+1650555010{i}"), "channel": channel, "locale": "es" });
        let reply = app.post(Endpoint::SendOtp, body, CLIENT_IP).await;
        assert_eq!(reply.status, 202, "{channel}: {}", reply.body);
    }
    let attempts = app.fake_twilio().attempts();
    assert_eq!(
        attempts.iter().map(|a| a.resource).collect::<Vec<_>>(),
        ["Messages.json", "Calls.json", "Messages.json"]
    );
    let (messages, messages_required) = form_of(&spec, MESSAGES);
    let (calls, calls_required) = form_of(&spec, CALLS);
    assert!(messages.len() > 10 && calls.len() > 10, "the description has both forms");
    for attempt in &attempts {
        let (known, required) =
            if attempt.resource == "Calls.json" { (&calls, &calls_required) } else { (&messages, &messages_required) };
        for param in &attempt.params {
            assert!(known.contains(param), "{}: Twilio takes no {param}: {known:?}", attempt.resource);
        }
        for param in required {
            assert!(attempt.params.contains(param), "{}: {param} is required", attempt.resource);
        }
        assert!(
            attempt.params.contains(&"StatusCallback".to_owned()),
            "{}: every send asks for callbacks",
            attempt.resource
        );
    }
    // The Messaging Service's sender parameter, which the shapes tests send (tests/twilio.rs).
    assert!(messages.contains(&"MessagingServiceSid".to_owned()));
}

async fn create(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .form(form)
        .send()
        .await
        .expect("the fake answers");
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.text().await.unwrap_or_default()).unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_field_the_fake_answers_is_twilios() {
    let Some(spec) = spec() else { return };
    let fake = fake_twilio::FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("fake starts");
    let base = format!("{}/2010-04-01/Accounts/{ACCOUNT_SID}", fake.url());
    let messages = format!("{base}/Messages.json");
    let sms = create(&messages, &[("To", "+16505550100"), ("From", "+15005550006"), ("Body", "Hi")]).await;
    let service =
        [("To", "+16505550100"), ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"), ("Body", "Hi")];
    let by_service = create(&messages, &service).await;
    let whatsapp = [
        ("To", "whatsapp:+16505550100"),
        ("From", "whatsapp:+15005550006"),
        ("ContentSid", "HX0123456789abcdef0123456789abcdef"),
        ("ContentVariables", r#"{"1":"123456"}"#),
    ];
    let whatsapp = create(&messages, &whatsapp).await;
    let twiml = "<Response><Say language=\"en-US\">one</Say></Response>";
    let call =
        create(&format!("{base}/Calls.json"), &[("To", "+16505550100"), ("From", "+15005550006"), ("Twiml", twiml)])
            .await;
    let account = reqwest::Client::new()
        .get(format!("{base}.json"))
        .basic_auth(ACCOUNT_SID, Some(AUTH_TOKEN))
        .send()
        .await
        .expect("the fake answers");
    let account = (account.status().as_u16(), account.json::<Value>().await.unwrap_or(Value::Null));
    let answers = [
        ("SMS", MESSAGES, "post", "201", sms),
        ("SMS by a Messaging Service", MESSAGES, "post", "201", by_service),
        ("WhatsApp", MESSAGES, "post", "201", whatsapp),
        ("call", CALLS, "post", "201", call),
        ("account", ACCOUNT, "get", "200", account),
    ];
    for (what, path, method, status, (answered, body)) in answers {
        assert_eq!(answered.to_string(), status, "{what}: {body}");
        let fields = body.as_object().map_or(0, |o| o.len());
        assert!(fields >= 9, "{what}: a whole resource: {body}");
        let problems = answer_problems(&spec, path, method, status, &body);
        assert!(problems.is_empty(), "{what}: the fake's answer is not Twilio's: {problems:#?}");
    }
}

/// The resource field a status callback's parameter reports: Twilio's callbacks name the
/// resource's fields in PascalCase (`AccountSid` is `account_sid`), the sid and status
/// with the resource's name in front (`MessageSid`, `SmsStatus`, `CallStatus`), and a
/// call's `CallDuration` is its `duration`.
fn resource_field(param: &str) -> String {
    let bare = match param {
        "MessageSid" | "SmsSid" | "CallSid" => "Sid",
        "MessageStatus" | "SmsStatus" | "CallStatus" => "Status",
        "CallDuration" => "Duration",
        other => other,
    };
    let mut snake = String::new();
    for (i, c) in bare.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    snake
}

/// Twilio's description has no `callbacks` (nor webhooks) for the status callback: what it
/// describes is the resource whose state the callback reports. So each parameter of the
/// fake's callbacks must be a field of that resource (Message or Call), and the status
/// one of the resource's statuses.
#[tokio::test]
async fn every_field_of_the_fakes_status_callbacks_is_one_of_the_resource_twilio_describes() {
    let Some(spec) = spec() else { return };
    for path in [MESSAGES, CALLS] {
        assert!(spec["paths"][path]["post"].get("callbacks").is_none(), "the description now has callbacks: use them");
    }
    let settings = [
        ("OTP_CHANNELS", "sms,whatsapp,voice"),
        ("TWILIO_WHATSAPP_FROM", "whatsapp:+15005550006"),
        ("TWILIO_WHATSAPP_CONTENT_SID", "HX0123456789abcdef0123456789abcdef"),
    ];
    let app = TestApp::builder().twilio(TwilioSetup::default()).status_callbacks().settings(&settings).start().await;
    let fake = app.fake_twilio();
    fake.script_delivery("+16505550111", fake_twilio::Delivery::Undelivered { error_code: 30003 });
    fake.script_delivery("+16505550112", fake_twilio::Delivery::Undelivered { error_code: 30005 });
    let sends = [
        ("+16505550110", "sms"),
        ("+16505550111", "sms"),
        ("+16505550112", "voice"),
        ("+16505550113", "whatsapp"),
        ("+16505550114", "voice"),
    ];
    for (phone, channel) in sends {
        let reply = app.post(Endpoint::SendOtp, json!({ "phone": phone, "channel": channel }), CLIENT_IP).await;
        assert_eq!(reply.status, 202, "{channel}: {}", reply.body);
    }
    let callbacks = otp_testkit::wait_for_callbacks(fake, 10).await;
    let schema = |path: &str| {
        let schema = &spec["paths"][path]["post"]["responses"]["201"]["content"]["application/json"]["schema"];
        resolve(&spec, schema).clone()
    };
    let (message, call) = (schema(MESSAGES), schema(CALLS));
    let mut statuses = std::collections::BTreeSet::new();
    for callback in &callbacks {
        assert_eq!(callback.answered, Some(204), "the service took it: {callback:?}");
        let resource = if callback.params.iter().any(|(k, _)| k == "CallSid") { &call } else { &message };
        for (param, value) in &callback.params {
            let field = resource_field(param);
            let property = resource["properties"].get(&field).map(|p| resolve(&spec, p));
            let Some(property) = property else {
                panic!("{param} ({field}) is not a field of the resource Twilio describes: {callback:?}");
            };
            if field == "status" {
                let allowed = property["enum"].as_array().cloned().unwrap_or_default();
                assert!(allowed.contains(&json!(value)), "{param}={value} is not one of {allowed:?}");
                statuses.insert(value.clone());
            }
            if field == "error_code" {
                assert!(value.parse::<u32>().is_ok(), "{param}={value}");
            }
        }
    }
    for seen in ["sent", "delivered", "undelivered", "in-progress", "completed", "no-answer"] {
        assert!(statuses.contains(seen), "the callbacks covered {seen}: {statuses:?}");
    }
    assert_eq!(resource_field("AccountSid"), "account_sid");
    assert!(message["properties"].get("error_code").is_some() && call["properties"].get("duration").is_some());
    assert!(message["properties"].get("not_a_field").is_none(), "the check can fail");
}

#[test]
fn the_check_catches_what_twilio_does_not_answer() {
    let Some(spec) = spec() else { return };
    let call = json!({ "sid": "CA1", "status": "dialling", "duration": 5, "annotation": null, "date_created": "yesterday", "to": null });
    let problems = answer_problems(&spec, CALLS, "post", "201", &call);
    for expected in ["status", "duration", "annotation", "date_created"] {
        assert!(problems.iter().any(|p| p.starts_with(expected)), "{expected} is caught: {problems:#?}");
    }
    assert!(!problems.iter().any(|p| p.starts_with("sid")), "{problems:#?}");
    let (messages, _) = form_of(&spec, MESSAGES);
    assert!(!messages.contains(&"Twiml".to_owned()) && messages.contains(&"ContentVariables".to_owned()));
}
