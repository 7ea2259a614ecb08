//! A local fake of the bot challenge providers' siteverify endpoints, speaking their
//! real shapes, for tests and the local run. Never deployed.
//!
//! - `POST /turnstile/v0/siteverify` (Cloudflare Turnstile), `POST /siteverify` (hCaptcha),
//!   `POST /recaptcha/api/siteverify` (Google reCAPTCHA v3): the form `secret`, `response`,
//!   `remoteip` (Turnstile also takes JSON); always `200` with the provider's JSON answer.
//! - The secret is checked: missing `missing-input-secret`, wrong `invalid-input-secret`.
//! - Tokens are scripts ([`Pass`]): `pass`, `pass:<hostname>` or
//!   `pass:<hostname>:<action>:<score>` succeed (empty parts take the fake's
//!   [`Defaults`]; the hostname [`NO_HOSTNAME`] gives an answer without `hostname`);
//!   anything else is `invalid-input-response`; a passing token used a
//!   second time is `timeout-or-duplicate` (hCaptcha: `already-seen-response`).
//! - Faults for the next calls: a status (`500`, `503`, ...), a slow answer, a non-JSON
//!   answer ([`FakeCaptcha::push_faults`], `POST /_fake/faults`).
//! - Every call is recorded with the `remoteip` it got (`GET /_fake/calls`);
//!   `POST /_fake/reset` forgets calls, faults and used tokens.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Which provider an endpoint of the fake speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

impl Flavor {
    pub const ALL: [Flavor; 3] = [Self::Turnstile, Self::Hcaptcha, Self::Recaptcha];

    /// The path of the provider's real endpoint.
    pub const fn path(self) -> &'static str {
        match self {
            Self::Turnstile => "/turnstile/v0/siteverify",
            Self::Hcaptcha => "/siteverify",
            Self::Recaptcha => "/recaptcha/api/siteverify",
        }
    }

    fn from_path(path: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|flavor| flavor.path() == path)
    }

    /// The provider's code for a token verified before.
    const fn duplicate_code(self) -> &'static str {
        match self {
            Self::Hcaptcha => "already-seen-response",
            Self::Turnstile | Self::Recaptcha => "timeout-or-duplicate",
        }
    }
}

/// A fault served instead of (or, for a slow answer, besides) the normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "kind")]
pub enum Fault {
    /// A plain-text error answer with this HTTP status.
    Status { status: u16 },
    /// The call is judged as usual (a passing token is used up), but answered only
    /// after this delay.
    Slow { delay_ms: u64 },
    /// `200` with an HTML page instead of JSON, as a captive proxy would answer.
    NotJson,
}

/// What a passing token's answer says when the token leaves a part out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Defaults {
    pub hostname: String,
    /// The action reCAPTCHA (and Turnstile) report.
    pub action: String,
    /// The score reCAPTCHA reports.
    pub score: f64,
}

impl Default for Defaults {
    /// The local run's: the frontend on `http://localhost:5173`, the service's action.
    fn default() -> Self {
        Self { hostname: "localhost".into(), action: "send_otp".into(), score: 0.9 }
    }
}

/// The hostname part of a [`Pass`] script for an answer that names no hostname.
pub const NO_HOSTNAME: &str = "-";

/// A passing token, read from its script: `pass[:<hostname>[:<action>:<score>]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    pub hostname: Option<String>,
    pub action: Option<String>,
    pub score: Option<f64>,
}

impl Pass {
    /// `None` for anything that is not a passing script.
    pub fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split(':');
        if parts.next() != Some("pass") {
            return None;
        }
        let part = |p: Option<&str>| p.filter(|v| !v.is_empty()).map(str::to_owned);
        let hostname = part(parts.next());
        let action = part(parts.next());
        let score = match parts.next().filter(|v| !v.is_empty()) {
            Some(raw) => Some(raw.parse::<f64>().ok().filter(|s| (0.0..=1.0).contains(s))?),
            None => None,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self { hostname, action, score })
    }

    /// The token for these parts.
    pub fn token(hostname: &str, action: &str, score: f64) -> String {
        format!("pass:{hostname}:{action}:{score}")
    }
}

/// One call to a siteverify endpoint, whatever its answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Call {
    pub flavor: Flavor,
    /// The form's `remoteip`, if there was one.
    pub remoteip: Option<String>,
    /// The form's `response` (the token), if there was one.
    pub response: Option<String>,
    /// Whether the form's `secret` was the fake's (the secret itself is not kept).
    pub secret_ok: bool,
    /// Whether the body came as `application/x-www-form-urlencoded`.
    pub form_encoded: bool,
    /// The HTTP status answered.
    pub status: u16,
    /// The answer's `success`, for JSON answers.
    pub success: Option<bool>,
    pub error_codes: Vec<String>,
    pub fault: Option<Fault>,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    faults: VecDeque<Fault>,
    /// Tokens verified, per provider (each provider has tokens of its own).
    used: HashSet<(Flavor, String)>,
}

struct Shared {
    secret: String,
    defaults: Defaults,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere cannot leave the records half-written: keep serving them.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A running fake; it stops when dropped.
pub struct FakeCaptcha {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for FakeCaptcha {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeCaptcha {
    /// Starts on a free port of 127.0.0.1, accepting `secret`, with the default answers.
    pub async fn start(secret: &str) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), secret, Defaults::default()).await
    }

    /// Starts on `address`, accepting `secret`.
    pub async fn start_on(address: SocketAddr, secret: &str, defaults: Defaults) -> std::io::Result<Self> {
        let shared = Arc::new(Shared { secret: secret.to_owned(), defaults, state: Mutex::new(State::default()) });
        let serving = shared.clone();
        let (address, server) = dev_serve::serve(address, move |request, _peer| {
            let shared = serving.clone();
            async move { route(&shared, request).await }
        })
        .await?;
        Ok(Self { address, shared, server })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The siteverify URL of one provider, to use in place of its real one.
    pub fn verify_url(&self, flavor: Flavor) -> String {
        format!("{}{}", self.url(), flavor.path())
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Every call to a siteverify endpoint, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.state().calls.clone()
    }

    /// Serves these faults to the next calls, one each, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.shared.state().faults.extend(faults);
    }

    /// Forgets calls, pending faults and used tokens.
    pub fn reset(&self) {
        *self.shared.state() = State::default();
    }
}

use dev_serve::Answer;

async fn route(shared: &Shared, request: http::Request<Incoming>) -> Answer {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, 64 * 1024).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return text_answer(413, "text/plain", "Request body too large"),
    };
    let path = parts.uri.path();
    let method = &parts.method;
    if let Some(flavor) = Flavor::from_path(path) {
        if method != http::Method::POST {
            return text_answer(405, "text/plain", "Method Not Allowed");
        }
        return siteverify(shared, flavor, &parts.headers, &body).await;
    }
    match (method.as_str(), path) {
        ("GET", "/_fake/calls") => json_answer(200, &json!(shared.state().calls)),
        ("GET", "/_fake/defaults") => json_answer(200, &json!(shared.defaults)),
        ("POST", "/_fake/faults") => match serde_json::from_slice::<FaultsRequest>(&body) {
            Ok(request) => {
                shared.state().faults.extend(std::iter::repeat_n(request.fault, request.count));
                empty_answer(204)
            }
            Err(error) => json_answer(400, &json!({ "error": error.to_string() })),
        },
        ("POST", "/_fake/reset") => {
            *shared.state() = State::default();
            empty_answer(204)
        }
        _ => text_answer(404, "text/plain", "Not Found"),
    }
}

/// `POST /_fake/faults`: `{"count": 2, "fault": {"kind": "status", "status": 500}}`,
/// `{"fault": {"kind": "slow", "delayMs": 5000}}` or `{"fault": {"kind": "notJson"}}`.
#[derive(Deserialize)]
struct FaultsRequest {
    #[serde(default = "one")]
    count: usize,
    fault: Fault,
}

fn one() -> usize {
    1
}

/// The request's fields, from a form (or, for Turnstile, JSON).
#[derive(Default, Deserialize)]
struct VerifyForm {
    secret: Option<String>,
    response: Option<String>,
    remoteip: Option<String>,
}

async fn siteverify(shared: &Shared, flavor: Flavor, headers: &http::HeaderMap, body: &[u8]) -> Answer {
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let form_encoded = content_type.starts_with("application/x-www-form-urlencoded");
    let json_body = content_type.starts_with("application/json");
    let form: VerifyForm = if form_encoded {
        serde_urlencoded::from_bytes(body).unwrap_or_default()
    } else if json_body && flavor == Flavor::Turnstile {
        serde_json::from_slice(body).unwrap_or_default()
    } else {
        // hCaptcha and reCAPTCHA read only forms: the fields are missing.
        VerifyForm::default()
    };
    let VerifyForm { secret, response, remoteip } = form;
    let secret_ok = secret.as_deref() == Some(shared.secret.as_str());

    let (fault, answer) = {
        let mut state = shared.state();
        let fault = state.faults.pop_front();
        let answer = match fault {
            Some(Fault::Status { .. } | Fault::NotJson) => None,
            _ => Some(judge(shared, &mut state, flavor, secret.as_deref(), response.as_deref())),
        };
        let (status, success, error_codes) = match (&answer, fault) {
            (Some(answer), _) => (200, Some(answer.success()), answer.error_codes()),
            (None, Some(Fault::Status { status })) => (status, None, Vec::new()),
            (None, _) => (200, None, Vec::new()),
        };
        state.calls.push(Call {
            flavor,
            remoteip: remoteip.clone(),
            response: response.clone(),
            secret_ok,
            form_encoded,
            status,
            success,
            error_codes,
            fault,
            at: Utc::now(),
        });
        (fault, answer)
    };
    match fault {
        Some(Fault::Status { status }) => return text_answer(status, "text/plain", "Internal Server Error"),
        Some(Fault::NotJson) => {
            return text_answer(200, "text/html; charset=utf-8", "<html><body><h1>Bad gateway</h1></body></html>");
        }
        Some(Fault::Slow { delay_ms }) => tokio::time::sleep(Duration::from_millis(delay_ms)).await,
        None => {}
    }
    match answer {
        Some(verdict) => json_answer(200, &verdict.to_json(flavor)),
        None => text_answer(500, "text/plain", "Internal Server Error"),
    }
}

/// A siteverify verdict, before it is shaped as one provider's JSON.
enum Verdict {
    Pass { hostname: String, action: String, score: f64, action_given: bool },
    Fail(Vec<&'static str>),
}

impl Verdict {
    fn success(&self) -> bool {
        matches!(self, Self::Pass { .. })
    }

    fn error_codes(&self) -> Vec<String> {
        match self {
            Self::Pass { .. } => Vec::new(),
            Self::Fail(codes) => codes.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn to_json(&self, flavor: Flavor) -> Value {
        let mut answer = self.shaped(flavor);
        if let Self::Pass { hostname, .. } = self
            && hostname == NO_HOSTNAME
            && let Some(fields) = answer.as_object_mut()
        {
            fields.remove("hostname");
        }
        answer
    }

    fn shaped(&self, flavor: Flavor) -> Value {
        let now = Utc::now() - chrono::Duration::seconds(2);
        match (self, flavor) {
            (Self::Pass { hostname, action, action_given, .. }, Flavor::Turnstile) => json!({
                "success": true,
                "error-codes": [],
                "challenge_ts": now.to_rfc3339_opts(SecondsFormat::Millis, true),
                "hostname": hostname,
                // A widget rendered without an action reports an empty one.
                "action": if *action_given { action.as_str() } else { "" },
                "cdata": "",
                "metadata": { "interactive": false },
            }),
            (Self::Pass { hostname, .. }, Flavor::Hcaptcha) => json!({
                "success": true,
                "challenge_ts": now.to_rfc3339_opts(SecondsFormat::Secs, true),
                "hostname": hostname,
                "credit": false,
            }),
            (Self::Pass { hostname, action, score, .. }, Flavor::Recaptcha) => json!({
                "success": true,
                "challenge_ts": now.to_rfc3339_opts(SecondsFormat::Secs, true),
                "hostname": hostname,
                "score": score,
                "action": action,
            }),
            (Self::Fail(codes), Flavor::Turnstile) => json!({
                "success": false,
                "error-codes": codes,
                "messages": [],
            }),
            (Self::Fail(codes), _) => json!({ "success": false, "error-codes": codes }),
        }
    }
}

/// The providers' checks, in their order: the secret, the token's presence, the token.
fn judge(shared: &Shared, state: &mut State, flavor: Flavor, secret: Option<&str>, response: Option<&str>) -> Verdict {
    let mut codes = Vec::new();
    match secret.filter(|s| !s.is_empty()) {
        None => codes.push("missing-input-secret"),
        Some(secret) if secret != shared.secret => codes.push("invalid-input-secret"),
        Some(_) => {}
    }
    let response = response.filter(|r| !r.is_empty());
    if response.is_none() {
        codes.push("missing-input-response");
    }
    if !codes.is_empty() {
        return Verdict::Fail(codes);
    }
    let token = response.unwrap_or_default();
    let Some(pass) = Pass::parse(token) else {
        return Verdict::Fail(vec!["invalid-input-response"]);
    };
    // A token is good for one verification.
    if !state.used.insert((flavor, token.to_owned())) {
        return Verdict::Fail(vec![flavor.duplicate_code()]);
    }
    let defaults = &shared.defaults;
    Verdict::Pass {
        hostname: pass.hostname.unwrap_or_else(|| defaults.hostname.clone()),
        action_given: pass.action.is_some(),
        action: pass.action.unwrap_or_else(|| defaults.action.clone()),
        score: pass.score.unwrap_or(defaults.score),
    }
}

fn json_answer(status: u16, body: &Value) -> Answer {
    text_answer(status, "application/json; charset=utf-8", &body.to_string())
}

fn empty_answer(status: u16) -> Answer {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
}

fn text_answer(status: u16, content_type: &'static str, body: &str) -> Answer {
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_scripts_parse() {
        assert_eq!(Pass::parse("pass"), Some(Pass { hostname: None, action: None, score: None }));
        assert_eq!(
            Pass::parse("pass:app.example"),
            Some(Pass { hostname: Some("app.example".into()), action: None, score: None })
        );
        assert_eq!(
            Pass::parse("pass:app.example:send_otp:0.3"),
            Some(Pass { hostname: Some("app.example".into()), action: Some("send_otp".into()), score: Some(0.3) })
        );
        assert_eq!(Pass::parse("pass:::0.7"), Some(Pass { hostname: None, action: None, score: Some(0.7) }));
        assert_eq!(Pass::parse(&Pass::token("h", "a", 0.5)).and_then(|p| p.score), Some(0.5));
        for failing in ["", "fail", "passed", "PASS", "pass:h:a:2", "pass:h:a:x", "pass:h:a:0.5:extra", "xpass"] {
            assert_eq!(Pass::parse(failing), None, "{failing:?}");
        }
    }

    #[test]
    fn paths_name_their_provider() {
        for flavor in Flavor::ALL {
            assert_eq!(Flavor::from_path(flavor.path()), Some(flavor));
        }
        assert_eq!(Flavor::from_path("/other"), None);
    }
}
