//! A local fake of Twilio's Messages and Calls APIs, speaking their real shapes (checked
//! against Twilio's OpenAPI description by `shared/tests/twilio_openapi.rs`), for tests and
//! the local run. Never deployed.
//!
//! - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: HTTP Basic auth (wrong: `401`,
//!   code 20003), the form `To`, `From` or `MessagingServiceSid`, and `Body` or (WhatsApp)
//!   `ContentSid` with `ContentVariables`; `201` with the Message resource JSON, or Twilio's
//!   error JSON `{"code", "message", "more_info", "status"}`. A WhatsApp send
//!   (`To=whatsapp:+E164`) needs a `whatsapp:` `From` (21910), a Content SID (21655) and
//!   variables that are a JSON object of strings (21656).
//! - `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`: the same auth, the form `To`,
//!   `From` and `Twiml` (or `Url`); `201` with the Call resource JSON, or the error JSON.
//! - Twilio's magic test numbers fail as Twilio's test credentials do ([`MAGIC_NUMBERS`],
//!   [`CALL_MAGIC_NUMBERS`]); more numbers can be scripted for every channel
//!   ([`FakeTwilio::fail_number`], `POST /_fake/numbers`).
//! - Faults for the next calls: `500`, `503`, `429`, a slow answer, or an error answer
//!   after the message was created ([`FakeTwilio::push_faults`], `POST /_fake/faults`).
//! - `GET /2010-04-01/Accounts/{AccountSid}.json`: the Account resource (the same auth), as
//!   the service's start-up fetches it to open its connection and check its credentials.
//! - Status callbacks: after each message or call created with a `StatusCallback` URL, the
//!   fake posts Twilio's signed status callbacks to it (`X-Twilio-Signature`), in the
//!   background: `sent` then `delivered` by default (a call: `in-progress`, `completed`), or
//!   what the number's script says ([`Delivery`]: undelivered with an error code, failed,
//!   delayed, repeated, out of order, silent; [`FakeTwilio::script_delivery`],
//!   `POST /_fake/delivery`). Each one sent is recorded (`GET /_fake/callbacks`).
//! - Every call is recorded (`GET /_fake/attempts`, with the names of the parameters it
//!   sent), every accepted message and call too (`GET /_fake/messages`, `GET /_fake/calls`);
//!   `POST /_fake/reset` forgets records, faults and scripted numbers.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

mod callbacks;

pub use callbacks::{Callback, Delivery, sign};

/// The pause before each status callback, unless a test sets another.
const CALLBACK_GAP: Duration = Duration::from_millis(20);

/// Twilio's magic `To` numbers for test credentials, and the error each one gets.
pub const MAGIC_NUMBERS: &[(&str, u32)] = &[
    ("+15005550001", 21211), // invalid number
    ("+15005550002", 21612), // Twilio cannot route to this number
    ("+15005550003", 21408), // no geo permission for the number's region
    ("+15005550004", 21610), // recipient unsubscribed (replied STOP)
    ("+15005550009", 21614), // not a mobile number
];

/// Twilio's magic `To` numbers of the Calls API for test credentials, and their errors.
pub const CALL_MAGIC_NUMBERS: &[(&str, u32)] = &[
    ("+15005550001", 21217), // not a valid phone number
    ("+15005550002", 21214), // Twilio cannot route the call to this number
    ("+15005550003", 21215), // no international (geo) permission for the number
    ("+15005550004", 21216), // a number this account may not call
];

/// A fault served instead of the normal answer to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "kind")]
pub enum Fault {
    /// An error answer with this HTTP status (500, 503, 429, ...) and Twilio's matching code.
    Status { status: u16 },
    /// The call is handled as usual, but answered only after this delay: a client that
    /// gives up earlier sees a timeout although the message was accepted.
    Slow { delay_ms: u64 },
    /// The call is handled as usual (a message that passes is created, and goes out), but
    /// answered with this error status (500, 503, ...): a Twilio that fails after acting.
    CreatedThenStatus { status: u16 },
}

/// One accepted message, as Twilio would hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    /// The text; empty for a Content template (WhatsApp), which Twilio renders.
    pub body: String,
    pub content_sid: Option<String>,
    /// The template's variables as sent (a JSON object).
    pub content_variables: Option<String>,
    pub date_created: DateTime<Utc>,
}

/// One accepted call, as Twilio would hold it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Call {
    pub sid: String,
    pub account_sid: String,
    pub to: String,
    pub from: String,
    /// The TwiML the call runs, as sent (`Twiml`), or `None` with a `Url`.
    pub twiml: Option<String>,
    pub url: Option<String>,
    pub date_created: DateTime<Utc>,
}

/// One call to the Messages or Calls endpoint, whatever its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// `Messages.json` or `Calls.json`.
    pub resource: &'static str,
    /// The names of the form parameters sent, in order.
    pub params: Vec<String>,
    /// The `To` of the form, if there was one.
    pub to: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    /// Twilio's error code, for error answers.
    pub code: Option<u32>,
    /// The SID of the message or call created: for `201` answers, and for error answers served
    /// by [`Fault::CreatedThenStatus`] after creating one.
    pub sid: Option<String>,
    /// A fault served instead of (or, for a slow answer, besides) the normal answer.
    pub fault: Option<Fault>,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    messages: Vec<Message>,
    calls: Vec<Call>,
    attempts: Vec<Attempt>,
    faults: VecDeque<Fault>,
    numbers: HashMap<String, u32>,
    /// Answers of `GET .../Accounts/{sid}.json`, by HTTP status.
    account_fetches: Vec<u16>,
    /// TCP connections accepted.
    connections: usize,
    /// The status callbacks sent, oldest first.
    callbacks: Vec<callbacks::Callback>,
    /// Scripted deliveries, by number (E.164).
    deliveries: HashMap<String, Delivery>,
    /// The pause before each callback (none: [`CALLBACK_GAP`]).
    callback_gap: Option<Duration>,
}

struct Shared {
    account_sid: String,
    auth_token: String,
    state: Mutex<State>,
}

impl Shared {
    /// Whether the call carries this account's credentials (HTTP Basic auth).
    fn authenticates(&self, headers: &http::HeaderMap) -> bool {
        basic_credentials(headers).is_some_and(|(sid, token)| sid == self.account_sid && token == self.auth_token)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the records half-written: keep serving them.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running fake; it stops when dropped.
pub struct FakeTwilio {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeTwilio {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeTwilio {
    /// Starts on a free port of 127.0.0.1, accepting these credentials.
    pub async fn start(account_sid: &str, auth_token: &str) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), account_sid, auth_token).await
    }

    /// Starts on `address`, accepting these credentials.
    pub async fn start_on(address: SocketAddr, account_sid: &str, auth_token: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            state: Mutex::new(State::default()),
        });
        let (counting, serving) = (shared.clone(), shared.clone());
        let on_accept = move |_| counting.state().connections += 1;
        let (address, server) = dev_serve::serve_counting(address, on_accept, move |request, _peer| {
            let shared = serving.clone();
            async move { route(&shared, request).await }
        })
        .await?;
        Ok(Self { address, shared, server })
    }

    /// The base URL, to use in place of `https://api.twilio.com`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every accepted message, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.state().messages.clone()
    }

    /// Every accepted call, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.state().calls.clone()
    }

    /// Every call to the Messages and Calls endpoints, oldest first.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared.state().attempts.clone()
    }

    /// The HTTP status of each Account fetch, oldest first.
    pub fn account_fetches(&self) -> Vec<u16> {
        self.shared.state().account_fetches.clone()
    }

    /// TCP connections accepted so far: a client that reuses its connection opens one.
    pub fn connections(&self) -> usize {
        self.shared.state().connections
    }

    /// Serves these faults to the next calls, one each, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.state().faults.extend(faults);
    }

    /// Makes every send to `to` (E.164, on any channel) fail with Twilio error `code` (as a
    /// magic number does).
    pub fn fail_number(&self, to: &str, code: u32) {
        self.shared.state().numbers.insert(to.to_owned(), code);
    }

    /// Scripts what becomes of every message and call to `to` (E.164) from now on.
    pub fn script_delivery(&self, to: &str, delivery: Delivery) {
        self.shared.state().deliveries.insert(to.to_owned(), delivery);
    }

    /// Every status callback sent so far (answered or not), oldest first.
    pub fn callbacks(&self) -> Vec<Callback> {
        self.shared.state().callbacks.clone()
    }

    /// The pause before each status callback (20 ms unless set).
    pub fn set_callback_gap(&self, gap: Duration) {
        self.shared.state().callback_gap = Some(gap);
    }

    /// Forgets records, pending faults and scripted numbers.
    pub fn reset(&self) {
        *self.shared.state() = State::default();
    }
}

use dev_serve::Answer;

async fn route(shared: &Arc<Shared>, request: http::Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, 64 * 1024).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return twilio_error(413, 20001, "Request body too large"),
    };
    let path = parts.uri.path();
    let method = &parts.method;
    for resource in [Resource::Messages, Resource::Calls] {
        if let Some(account) =
            path.strip_prefix("/2010-04-01/Accounts/").and_then(|rest| rest.strip_suffix(resource.suffix()))
        {
            if method != http::Method::POST {
                return twilio_error(405, 20004, "Method not allowed");
            }
            return create(shared, resource, account, &parts.headers, &body).await;
        }
    }
    if let Some(account) = path.strip_prefix("/2010-04-01/Accounts/").and_then(|rest| rest.strip_suffix(".json"))
        && !account.contains('/')
    {
        if method != http::Method::GET {
            return twilio_error(405, 20004, "Method not allowed");
        }
        let answer = fetch_account(shared, account, &parts.headers);
        shared.state().account_fetches.push(answer.status().as_u16());
        return answer;
    }
    match (method.as_str(), path) {
        ("GET", "/_fake/messages") => json_answer(200, &json!(shared.state().messages)),
        ("GET", "/_fake/calls") => json_answer(200, &json!(shared.state().calls)),
        ("GET", "/_fake/attempts") => json_answer(200, &json!(shared.state().attempts)),
        ("GET", "/_fake/callbacks") => json_answer(200, &json!(shared.state().callbacks)),
        ("POST", "/_fake/delivery") => match serde_json::from_slice::<DeliveryRequest>(&body) {
            Ok(request) => {
                shared.state().deliveries.insert(request.to, request.delivery);
                json_answer(204, &Value::Null)
            }
            Err(error) => json_answer(400, &json!({ "error": error.to_string() })),
        },
        ("POST", "/_fake/faults") => match serde_json::from_slice::<FaultsRequest>(&body) {
            Ok(request) => {
                shared.state().faults.extend(std::iter::repeat_n(request.fault, request.count));
                json_answer(204, &Value::Null)
            }
            Err(error) => json_answer(400, &json!({ "error": error.to_string() })),
        },
        ("POST", "/_fake/numbers") => match serde_json::from_slice::<NumberRequest>(&body) {
            Ok(request) => {
                shared.state().numbers.insert(request.to, request.code);
                json_answer(204, &Value::Null)
            }
            Err(error) => json_answer(400, &json!({ "error": error.to_string() })),
        },
        ("POST", "/_fake/reset") => {
            *shared.state() = State::default();
            json_answer(204, &Value::Null)
        }
        _ => twilio_error(404, 20404, "The requested resource was not found"),
    }
}

/// `POST /_fake/faults`: `{"count": 2, "fault": {"kind": "status", "status": 500}}` or
/// `{"count": 1, "fault": {"kind": "slow", "delayMs": 5000}}`.
#[derive(Deserialize)]
struct FaultsRequest {
    #[serde(default = "one")]
    count: usize,
    fault: Fault,
}

fn one() -> usize {
    1
}

/// `POST /_fake/numbers`: `{"to": "+14155550100", "code": 21614}`.
#[derive(Deserialize)]
struct NumberRequest {
    to: String,
    code: u32,
}

/// `POST /_fake/delivery`: `{"to": "+14155550100", "delivery": {"kind": "undelivered", "errorCode": 30003}}`.
#[derive(Deserialize)]
struct DeliveryRequest {
    to: String,
    delivery: Delivery,
}

/// The two create endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Messages,
    Calls,
}

impl Resource {
    fn suffix(self) -> &'static str {
        match self {
            Self::Messages => "/Messages.json",
            Self::Calls => "/Calls.json",
        }
    }
}

/// What a create call made.
enum Created {
    Message(Message),
    Call(Call),
}

impl Created {
    fn sid(&self) -> &str {
        match self {
            Self::Message(message) => &message.sid,
            Self::Call(call) => &call.sid,
        }
    }
}

async fn create(
    shared: &Arc<Shared>,
    resource: Resource,
    account: &str,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Answer {
    let pairs = serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default();
    let params: Vec<String> = pairs.iter().map(|(name, _)| name.clone()).collect();
    let form: HashMap<String, String> = pairs.into_iter().collect();
    let to = form.get("To").cloned();
    let status_callback = form.get("StatusCallback").filter(|url| !url.is_empty()).cloned();
    let now = Utc::now();
    let (fault, outcome) = {
        let mut state = shared.state();
        let fault = state.faults.pop_front();
        let mut outcome = match fault {
            Some(Fault::Status { status }) => Err(fault_error(status)),
            _ => match resource {
                Resource::Messages => judge(shared, &state, account, headers, &form).map(Created::Message),
                Resource::Calls => judge_call(shared, &state, account, headers, &form).map(Created::Call),
            },
        };
        let (status, code, sid) = match &outcome {
            Ok(created) => {
                let sid = created.sid().to_owned();
                match created {
                    Created::Message(message) => state.messages.push(message.clone()),
                    Created::Call(call) => state.calls.push(call.clone()),
                }
                (201, None, Some(sid))
            }
            Err(error) => (error.status, Some(error.code), None),
        };
        let (status, code) = match (fault, &outcome) {
            (Some(Fault::CreatedThenStatus { status }), Ok(_)) => {
                let error = fault_error(status);
                let answered = (error.status, Some(error.code));
                outcome = Err(error);
                answered
            }
            _ => (status, code),
        };
        let resource_name = &resource.suffix()[1..];
        if let (Some(url), Some(sid), Some(to)) = (&status_callback, &sid, &to) {
            // Created, so Twilio reports on it, whatever it answered.
            let number = to.strip_prefix("whatsapp:").unwrap_or(to);
            let delivery = state.deliveries.get(number).copied().unwrap_or_default();
            let gap = state.callback_gap.unwrap_or(CALLBACK_GAP);
            let sent = callbacks::Sent {
                url: url.clone(),
                sid: sid.clone(),
                account_sid: shared.account_sid.clone(),
                from: form.get("From").cloned().unwrap_or_default(),
                to: to.clone(),
                call: resource == Resource::Calls,
            };
            callbacks::schedule(shared.clone(), sent, delivery, gap);
        }
        state.attempts.push(Attempt { resource: resource_name, params, to, status, code, sid, fault, at: now });
        (fault, outcome)
    };
    if let Some(Fault::Slow { delay_ms }) = fault {
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    }
    match outcome {
        Ok(Created::Message(message)) => json_answer(201, &message_json(&message)),
        Ok(Created::Call(call)) => json_answer(201, &call_json(&call)),
        Err(error) => twilio_error(error.status, error.code, &error.message),
    }
}

/// Twilio's checks of a call, in Twilio's order: credentials, the form, the destination.
fn judge_call(
    shared: &Shared,
    state: &State,
    account: &str,
    headers: &http::HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Call, TwilioError> {
    if !shared.authenticates(headers) || account != shared.account_sid {
        return Err(error(401, 20003, "Authenticate"));
    }
    let field = |name: &str| form.get(name).filter(|v| !v.is_empty()).cloned();
    let to = field("To").ok_or_else(|| error(400, 21201, "No 'To' number is specified"))?;
    let from = field("From").ok_or_else(|| error(400, 21213, "No 'From' number is specified"))?;
    let (twiml, url) = (field("Twiml"), field("Url"));
    if twiml.is_none() && url.is_none() && field("ApplicationSid").is_none() {
        return Err(error(400, 21205, "Url parameter is required"));
    }
    if let Some(twiml) = &twiml
        && !(twiml.trim_start().starts_with("<Response>") && twiml.trim_end().ends_with("</Response>"))
    {
        return Err(error(400, 12100, "Document parse failure"));
    }
    if !looks_e164(&from) {
        return Err(error(400, 21212, format!("Invalid Caller Phone Number: {from}")));
    }
    let scripted = state
        .numbers
        .get(to.as_str())
        .copied()
        .or_else(|| CALL_MAGIC_NUMBERS.iter().find(|(number, _)| *number == to).map(|(_, code)| *code));
    if let Some(code) = scripted.or((!looks_e164(&to)).then_some(21211)) {
        return Err(destination_error(code, &to, &from));
    }
    Ok(Call { sid: new_sid("CA"), account_sid: account.to_owned(), to, from, twiml, url, date_created: Utc::now() })
}

fn looks_e164(number: &str) -> bool {
    number.len() > 8 && number.len() <= 16 && number.starts_with('+') && number[1..].bytes().all(|b| b.is_ascii_digit())
}

/// The Account resource, as `GET /2010-04-01/Accounts/{sid}.json` answers it. (Twilio's
/// also holds the auth token; this fake leaves it out.)
fn fetch_account(shared: &Shared, account: &str, headers: &http::HeaderMap) -> Answer {
    if !shared.authenticates(headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    if account != shared.account_sid {
        return twilio_error(404, 20404, "The requested resource was not found");
    }
    let uri = format!("/2010-04-01/Accounts/{account}");
    let created = Utc::now().to_rfc2822();
    json_answer(
        200,
        &json!({
            "sid": account,
            "owner_account_sid": account,
            "friendly_name": "fake account",
            "status": "active",
            "type": "Full",
            "date_created": created,
            "date_updated": created,
            "uri": format!("{uri}.json"),
            "subresource_uris": { "messages": format!("{uri}/Messages.json") },
        }),
    )
}

struct TwilioError {
    status: u16,
    code: u32,
    message: String,
}

fn error(status: u16, code: u32, message: impl Into<String>) -> TwilioError {
    TwilioError { status, code, message: message.into() }
}

fn fault_error(status: u16) -> TwilioError {
    match status {
        429 => error(429, 20429, "Too Many Requests"),
        503 => error(503, 20503, "Service Unavailable"),
        other => error(other, 20500, "Internal Server Error"),
    }
}

/// Twilio's checks, in Twilio's order: credentials, then the form, then the destination.
fn judge(
    shared: &Shared,
    state: &State,
    account: &str,
    headers: &http::HeaderMap,
    form: &HashMap<String, String>,
) -> Result<Message, TwilioError> {
    if !shared.authenticates(headers) || account != shared.account_sid {
        return Err(error(401, 20003, "Authenticate"));
    }
    let to = form
        .get("To")
        .filter(|v| !v.is_empty())
        .ok_or_else(|| error(400, 21604, "A 'To' phone number is required."))?;
    let body = form.get("Body").filter(|v| !v.is_empty()).cloned();
    let content_sid = form.get("ContentSid").filter(|v| !v.is_empty()).cloned();
    let content_variables = form.get("ContentVariables").filter(|v| !v.is_empty()).cloned();
    if body.is_none() && content_sid.is_none() {
        return Err(error(400, 21602, "Message body is required."));
    }
    let from = form.get("From").filter(|v| !v.is_empty()).cloned();
    let messaging_service_sid = form.get("MessagingServiceSid").filter(|v| !v.is_empty()).cloned();
    if from.is_none() && messaging_service_sid.is_none() {
        return Err(error(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message."));
    }
    if let Some(sid) = &content_sid
        && !(sid.len() == 34 && sid.starts_with("HX") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(error(400, 21655, "The ContentSid is Invalid."));
    }
    if let Some(variables) = &content_variables {
        let strings = serde_json::from_str::<HashMap<String, Value>>(variables)
            .is_ok_and(|map| map.values().all(Value::is_string));
        if !strings {
            return Err(error(400, 21656, "The ContentVariables Parameter is invalid."));
        }
    }
    let whatsapp = to.strip_prefix("whatsapp:");
    if whatsapp.is_some() != from.as_deref().is_some_and(|f| f.starts_with("whatsapp:"))
        && messaging_service_sid.is_none()
    {
        return Err(error(400, 21910, "Invalid From and To pair. From and To should be of the same channel."));
    }
    let number = whatsapp.unwrap_or(to);
    let scripted = state
        .numbers
        .get(number)
        .copied()
        .or_else(|| MAGIC_NUMBERS.iter().find(|(magic, _)| *magic == number).map(|(_, code)| *code));
    if let Some(code) = scripted.or((!looks_e164(number)).then_some(21211)) {
        return Err(destination_error(code, to, from.as_deref().unwrap_or("")));
    }
    Ok(Message {
        sid: new_sid(if content_sid.is_some() { "MM" } else { "SM" }),
        account_sid: account.to_owned(),
        to: to.clone(),
        from,
        messaging_service_sid,
        body: body.unwrap_or_default(),
        content_sid,
        content_variables,
        date_created: Utc::now(),
    })
}

/// Twilio's wording of each destination error it knows.
fn destination_error(code: u32, to: &str, from: &str) -> TwilioError {
    match code {
        21211 => error(400, code, format!("Invalid 'To' Phone Number: {to}")),
        21408 => error(
            400,
            code,
            format!(
                "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."
            ),
        ),
        21610 => error(400, code, "Attempt to send to unsubscribed recipient"),
        21612 => error(
            400,
            code,
            format!(
                "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from} via SMS."
            ),
        ),
        21614 => error(400, code, format!("'To' number {to} is not a valid mobile number")),
        21214 => error(400, code, format!("'To' phone number cannot be reached: {to}")),
        21215 => error(
            400,
            code,
            format!("Account not authorized to call {to}. Perhaps you need to enable some international permissions"),
        ),
        21216 => error(400, code, format!("Account not allowed to call {to}")),
        21217 => error(400, code, format!("Phone number does not appear to be valid: {to}")),
        63003 => error(400, code, "Channel could not find To address"),
        20003 => error(401, code, "Authenticate"),
        20429 => error(429, code, "Too Many Requests"),
        other => error(400, other, format!("Error {other}")),
    }
}

fn basic_credentials(headers: &http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(BASE64.decode(encoded.trim()).ok()?).ok()?;
    let (sid, token) = decoded.split_once(':')?;
    Some((sid.to_owned(), token.to_owned()))
}

fn new_sid(prefix: &str) -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// The segments Twilio bills a body in: GSM-7 text in 160-septet segments (153 when split),
/// anything else in UCS-2's 70 (67), measured as the service measures its texts
/// (`domain::segment`: é, ñ, ü are GSM-7; an emoji is two UTF-16 units).
fn num_segments(body: &str) -> usize {
    otp_core::domain::segment::measure(body).segments
}

/// The Message resource as Twilio answers it on creation (RFC 2822 dates, counts as strings).
fn message_json(message: &Message) -> Value {
    let created = message.date_created.to_rfc2822();
    let uri = format!("/2010-04-01/Accounts/{}/Messages/{}", message.account_sid, message.sid);
    json!({
        "account_sid": message.account_sid,
        "api_version": "2010-04-01",
        "body": message.body,
        "date_created": created,
        "date_sent": null,
        "date_updated": created,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": message.from,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": "0",
        "num_segments": num_segments(&message.body).to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": message.sid,
        // With a Messaging Service, Twilio first accepts the message, then picks a sender.
        "status": if message.messaging_service_sid.is_some() { "accepted" } else { "queued" },
        "subresource_uris": { "media": format!("{uri}/Media.json") },
        "to": message.to,
        "uri": format!("{uri}.json"),
    })
}

/// The Call resource as Twilio answers it on creation.
fn call_json(call: &Call) -> Value {
    let created = call.date_created.to_rfc2822();
    let uri = format!("/2010-04-01/Accounts/{}/Calls/{}", call.account_sid, call.sid);
    json!({
        "account_sid": call.account_sid,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": created,
        "date_updated": created,
        "direction": "outbound-api",
        "duration": null,
        "end_time": null,
        "forwarded_from": null,
        "from": call.from,
        "from_formatted": call.from,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": null,
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": call.sid,
        "start_time": null,
        "status": "queued",
        "subresource_uris": {
            "notifications": format!("{uri}/Notifications.json"),
            "recordings": format!("{uri}/Recordings.json"),
            "payments": format!("{uri}/Payments.json"),
            "events": format!("{uri}/Events.json"),
            "siprec": format!("{uri}/Siprec.json"),
            "streams": format!("{uri}/Streams.json"),
            "transcriptions": format!("{uri}/Transcriptions.json"),
            "user_defined_message_subscriptions": format!("{uri}/UserDefinedMessageSubscriptions.json"),
            "user_defined_messages": format!("{uri}/UserDefinedMessages.json"),
        },
        "to": call.to,
        "to_formatted": call.to,
        "trunk_sid": null,
        "uri": format!("{uri}.json"),
    })
}

fn twilio_error(status: u16, code: u32, message: &str) -> Answer {
    json_answer(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

fn json_answer(status: u16, body: &Value) -> Answer {
    let bytes = if body.is_null() { Bytes::new() } else { Bytes::from(body.to_string()) };
    let mut response = http::Response::new(Full::new(bytes));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_the_encoding() {
        assert_eq!(num_segments("Your code is 123456"), 1);
        assert_eq!(num_segments(&"a".repeat(160)), 1);
        assert_eq!(num_segments(&"a".repeat(161)), 2);
        // é is in the GSM-7 alphabet (as Twilio counts it), Cyrillic is not.
        assert_eq!(num_segments(&"é".repeat(160)), 1);
        assert_eq!(num_segments(&"é".repeat(161)), 2);
        assert_eq!(num_segments(&"ж".repeat(70)), 1);
        assert_eq!(num_segments(&"ж".repeat(71)), 2);
    }

    #[test]
    fn basic_credentials_are_decoded() {
        let mut headers = http::HeaderMap::new();
        let value = format!("Basic {}", BASE64.encode("AC1:secret"));
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_str(&value).unwrap());
        assert_eq!(basic_credentials(&headers), Some(("AC1".into(), "secret".into())));
        headers.insert(http::header::AUTHORIZATION, http::HeaderValue::from_static("Bearer x"));
        assert_eq!(basic_credentials(&headers), None);
    }
}
