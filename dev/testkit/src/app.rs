//! The service started for a test, through `otp_core::wiring::build` as Lambda and the
//! local run start it, and requests through its HTTP handler as API Gateway makes them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use fake_twilio::FakeTwilio;
use otp_core::adapters::emf::Emf;
use otp_core::adapters::outbox::Outbox;
use otp_core::adapters::twilio::{TwilioConfig, TwilioSender};
use otp_core::domain::Channel;
use otp_core::ports::{CodeSender, DeliveryLog, OtpStore, SecretSource};
use otp_core::secrets::{Required, SecretCache};
use otp_core::wiring::Overrides;
use otp_core::{Api, Endpoint, Settings};
use serde_json::Value;

use crate::clock::ManualClock;
use crate::secrets::{ACCOUNT_SID, AUTH_TOKEN, FROM, secrets_with};
use crate::server::ApiServer;
use crate::twilio::{self, TwilioSetup};

/// The origin the apps allow (`OTP_ALLOWED_ORIGINS`), and every request comes from.
pub const ORIGIN: &str = "https://app.example.com";
/// The client address of [`TestApp::send`] and [`TestApp::verify`].
pub const CLIENT_IP: &str = "198.51.100.7";

/// The service, started on the backend a test picks, with what the test reads back.
pub struct TestApp {
    /// Shared with the app's HTTP port, where it has one ([`Builder::status_callbacks`]).
    pub api: Arc<Api>,
    /// The service's clock (and the outbox's): it moves only with [`TestApp::advance`].
    pub clock: Arc<ManualClock>,
    /// What went wrong at start-up ([`Builder::start`] asserts there is nothing).
    pub problems: Vec<String>,
    sms: Sms,
    /// The EMF lines the service wrote.
    metrics: Arc<Mutex<Vec<String>>>,
    /// The port the fake Twilio posts its status callbacks to.
    server: Option<ApiServer>,
}

/// Where the app's SMS go.
enum Sms {
    Outbox(Arc<Outbox>),
    Twilio(FakeTwilio),
    /// A sender the test gave ([`Builder::sms`]).
    Given,
}

impl TestApp {
    /// The service on the memory store, the outbox and a manual clock at [`crate::t0`],
    /// with the test secrets and the contract's default settings.
    pub async fn new() -> Self {
        Self::builder().start().await
    }

    /// As [`TestApp::new`], with these settings (API.md's variable names).
    pub async fn with(settings: &[(&str, &str)]) -> Self {
        Self::builder().settings(settings).start().await
    }

    /// Any other backend: see [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Moves the clock on by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.clock.advance(TimeDelta::seconds(seconds));
    }

    /// A JSON POST from `ip` (any other request: [`request`]).
    pub async fn post(&self, endpoint: Endpoint, body: Value, ip: &str) -> Reply {
        post(&self.api, endpoint, body, ip).await
    }

    /// A send to `phone` from [`CLIENT_IP`].
    pub async fn send(&self, phone: &str) -> Reply {
        self.post(Endpoint::SendOtp, serde_json::json!({ "phone": phone }), CLIENT_IP).await
    }

    /// A verify of `code` for `phone` from [`CLIENT_IP`].
    pub async fn verify(&self, phone: &str, code: &str) -> Reply {
        self.post(Endpoint::VerifyOtp, serde_json::json!({ "phone": phone, "code": code }), CLIENT_IP).await
    }

    /// `GET /.well-known/jwks.json`, as a backend fetches it.
    pub async fn jwks(&self) -> Reply {
        request(&self.api, Endpoint::Jwks, "GET", None, Vec::new(), CLIENT_IP).await
    }

    /// The metric lines written so far (CloudWatch EMF documents), oldest first.
    pub fn metric_lines(&self) -> Vec<Value> {
        let lines = self.metrics.lock().unwrap_or_else(|e| e.into_inner()).clone();
        lines.iter().map(|line| serde_json::from_str(line).expect("an EMF line is JSON")).collect()
    }

    /// `OTP_STATUS_CALLBACK_URL` of an app with [`Builder::status_callbacks`].
    pub fn status_callback_url(&self) -> String {
        self.server.as_ref().expect("started with Builder::status_callbacks").status_url()
    }

    /// The outbox the SMS went to (the default backend).
    pub fn outbox(&self) -> &Outbox {
        match &self.sms {
            Sms::Outbox(outbox) => outbox,
            _ => panic!("this app sends its SMS elsewhere than to the outbox"),
        }
    }

    /// The fake Twilio the SMS went to ([`Builder::twilio`]).
    pub fn fake_twilio(&self) -> &FakeTwilio {
        match &self.sms {
            Sms::Twilio(fake) => fake,
            _ => panic!("this app was not started with Builder::twilio"),
        }
    }

    /// The code in the newest SMS to `to`, in the outbox or at the fake Twilio.
    pub fn last_code(&self, to: &str) -> String {
        self.last_code_on(to, Channel::Sms)
    }

    /// The code in the newest message or call on `channel` to `to` (E.164), in the outbox
    /// or at the fake Twilio: an SMS's text, a WhatsApp template's variable, the digits a
    /// call's TwiML says.
    pub fn last_code_on(&self, to: &str, channel: Channel) -> String {
        match &self.sms {
            Sms::Outbox(outbox) => {
                let entry = outbox.list().into_iter().find(|m| m.to == to && m.channel == channel);
                let body = entry.expect("a code went to this number on this channel").body;
                if channel == Channel::Voice { code_said(&body) } else { code_in(&body) }
            }
            Sms::Twilio(fake) => match channel {
                Channel::Sms => {
                    let message = fake.messages().into_iter().rev().find(|m| m.to == to && m.content_sid.is_none());
                    code_in(&message.expect("an SMS was sent to this number").body)
                }
                Channel::Whatsapp => {
                    let to = format!("whatsapp:{to}");
                    let message = fake.messages().into_iter().rev().find(|m| m.to == to);
                    let variables = message.and_then(|m| m.content_variables).expect("a WhatsApp message was sent");
                    let variables: Value = serde_json::from_str(&variables).expect("the variables are JSON");
                    variables["1"].as_str().expect("the code is variable 1").to_owned()
                }
                Channel::Voice => {
                    let call = fake.calls().into_iter().rev().find(|c| c.to == to).expect("this number was called");
                    code_said(&call.twiml.expect("the call's TwiML"))
                }
            },
            Sms::Given => panic!("the code went to the test's own sender"),
        }
    }
}

/// How a test wants the service: each part left out is the default's (memory store,
/// outbox, a manual clock at [`crate::t0`], the test secrets, the default settings with
/// [`ORIGIN`] allowed).
#[derive(Default)]
pub struct Builder {
    settings: Vec<(String, String)>,
    secrets: Option<Arc<dyn SecretSource>>,
    store: Option<Arc<dyn OtpStore>>,
    clock: Option<Arc<ManualClock>>,
    sms: Option<Arc<dyn CodeSender>>,
    twilio: Option<TwilioSetup>,
    secret_ttl: Option<std::time::Duration>,
    status_callbacks: bool,
    delivery: Option<Arc<dyn DeliveryLog>>,
}

impl Builder {
    /// Status callbacks on: the app listens on a port of 127.0.0.1, which is its
    /// `OTP_STATUS_CALLBACK_URL` (the fake Twilio posts there).
    pub fn status_callbacks(mut self) -> Self {
        self.status_callbacks = true;
        self
    }

    /// Another store of the delivery records (the Firestore emulator's).
    pub fn delivery(mut self, delivery: Arc<dyn DeliveryLog>) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// Settings variables (API.md's names), over the defaults and any given before.
    pub fn settings(mut self, settings: &[(&str, &str)]) -> Self {
        self.settings.extend(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        self
    }

    /// Other secrets than the test set: unfit or missing ones, or SSM's on moto.
    pub fn secrets(mut self, secrets: impl SecretSource + 'static) -> Self {
        self.secrets = Some(Arc::new(secrets));
        self
    }

    /// Another store: the Firestore emulator's ([`crate::emulator`]), or one the test
    /// seeds or shares between apps.
    pub fn store(mut self, store: Arc<dyn OtpStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// A clock the test holds, or shares between apps.
    pub fn clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// How long the secrets serve before they are read again (zero: every request reads
    /// them, so a test rotates a secret without waiting).
    pub fn secret_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.secret_ttl = Some(ttl);
        self
    }

    /// Another SMS sender than the outbox.
    pub fn sms(mut self, sms: Arc<dyn CodeSender>) -> Self {
        self.sms = Some(sms);
        self
    }

    /// The real Twilio sender, talking over HTTP to a fake Twilio started for this app
    /// ([`TestApp::fake_twilio`]), with the settings of [`twilio::SETTINGS`] before the
    /// test's own and the test secrets with Twilio credentials ([`twilio::secrets`]).
    pub fn twilio(mut self, setup: TwilioSetup) -> Self {
        self.twilio = Some(setup);
        self
    }

    /// Starts the service and asserts it started cleanly.
    pub async fn start(self) -> TestApp {
        let app = self.start_unchecked().await;
        assert_eq!(app.problems, Vec::<String>::new(), "the app starts cleanly");
        app
    }

    /// Starts the service, whatever went wrong at start-up: for tests of what it then
    /// answers ([`TestApp::problems`] lists it).
    pub async fn start_unchecked(self) -> TestApp {
        let clock = self.clock.unwrap_or_default();
        let mut values: HashMap<String, String> = HashMap::from([("OTP_ALLOWED_ORIGINS".into(), ORIGIN.into())]);
        if self.twilio.is_some() {
            values.extend(twilio::SETTINGS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        }
        let server = match self.status_callbacks {
            true => Some(ApiServer::bind().await),
            false => None,
        };
        if let Some(server) = &server {
            values.insert("OTP_STATUS_CALLBACK_URL".into(), server.status_url());
        }
        values.extend(self.settings);
        let settings = Settings::from_lookup(|name| values.get(name).cloned()).expect("test settings are valid");
        // One environment gives the settings and the secrets, as in the local run: a secret's
        // variable among the settings (`OTP_TEST_NUMBERS`) joins the test secrets.
        let secret_variables: Vec<(&str, &str)> = otp_core::secrets::ALL
            .iter()
            .filter_map(|name| values.get(name.env).map(|value| (name.env, value.as_str())))
            .collect();
        let source: Arc<dyn SecretSource> = match (self.secrets, &self.twilio) {
            (Some(secrets), _) => secrets,
            (None, Some(setup)) => Arc::new(twilio::secrets(setup.auth_token, "TWILIO_FROM", FROM)),
            (None, None) => Arc::new(secrets_with(&secret_variables)),
        };
        let (emf, metrics) = Emf::recording(clock.clone());
        let mut overrides = Overrides {
            clock: Some(clock.clone()),
            store: self.store,
            delivery: self.delivery,
            metrics: Some(Arc::new(emf)),
            sms: self.sms,
            secret_ttl: self.secret_ttl,
            ..Default::default()
        };
        let mut fake = None;
        match self.twilio {
            Some(setup) => {
                let started = FakeTwilio::start(ACCOUNT_SID, AUTH_TOKEN).await.expect("fake Twilio starts");
                // The sender reads its credentials through the service's own cache.
                let cache = Arc::new(SecretCache::new(
                    source,
                    Required { twilio: true, ..Required::default() },
                    Duration::from_secs(300),
                ));
                cache.prime().await.expect("secrets load");
                let config = TwilioConfig {
                    api_base: started.url(),
                    connect_timeout: Duration::from_secs(1),
                    attempt_timeout: setup.attempt_timeout,
                    retry: setup.retry,
                    whatsapp: settings.twilio_whatsapp.clone(),
                    status_callback: settings.status_callback_url.as_ref().map(|url| url.as_str().to_owned()),
                };
                overrides.sms = Some(Arc::new(TwilioSender::new(config, cache.clone()).expect("client builds")));
                overrides.secrets = Some(cache);
                fake = Some(started);
            }
            None => overrides.secrets = Some(source),
        }
        let app = otp_core::wiring::build(settings, overrides).await;
        let sms = match (app.outbox, fake) {
            (Some(outbox), _) => Sms::Outbox(outbox),
            (None, Some(fake)) => Sms::Twilio(fake),
            (None, None) => Sms::Given,
        };
        let api = Arc::new(app.api);
        if let Some(server) = &server {
            server.serve(api.clone());
        }
        TestApp { api, clock, problems: app.problems, sms, metrics, server }
    }
}

/// An answer of the HTTP handler.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    /// The body's JSON (`null` when empty).
    pub body: Value,
}

impl Reply {
    /// `error.code`, or `<none>` for an answer without one.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One request through the HTTP handler of `api`, as API Gateway or the local run would
/// make it: any method, content type and body, from [`ORIGIN`] and the client `ip`.
pub async fn request(
    api: &Api,
    endpoint: Endpoint,
    method: &str,
    content_type: Option<&str>,
    body: impl Into<Vec<u8>>,
    ip: &str,
) -> Reply {
    let mut builder = http::Request::builder().method(method).uri(endpoint.path()).header("origin", ORIGIN);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    let request = builder.body(body.into()).expect("valid test request");
    let ip: IpAddr = ip.parse().expect("valid test ip");
    let response = api.handle(endpoint, &request, Some(ip)).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.into_body();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("body is JSON") };
    Reply { status, headers, body }
}

/// A JSON POST through the HTTP handler of `api`, from the client `ip`.
pub async fn post(api: &Api, endpoint: Endpoint, body: Value, ip: &str) -> Reply {
    request(api, endpoint, "POST", Some("application/json"), body.to_string(), ip).await
}

/// The code in an SMS body: its first run of four digits or more.
pub fn code_in(sms: &str) -> String {
    sms.split(|c: char| !c.is_ascii_digit()).find(|run| run.len() >= 4).expect("the SMS carries a code").to_owned()
}

/// The code a call's TwiML says: the digit words of its first `<Say>`, in its language.
pub fn code_said(twiml: &str) -> String {
    let language = twiml.split("language=\"").nth(1).and_then(|rest| rest.split(['-', '"']).next());
    let words = language.and_then(otp_core::domain::message::digit_words).expect("a language with digit words");
    let said = twiml.split('>').nth(2).and_then(|rest| rest.split('<').next()).expect("a first <Say>");
    let digits = said.rsplit(':').next().unwrap_or_default().trim().trim_end_matches('.');
    digits
        .split(", ")
        .map(|word| {
            let digit =
                words.iter().position(|w| *w == word).unwrap_or_else(|| panic!("{word:?} is no digit in {said}"));
            char::from_digit(digit as u32, 10).unwrap_or('?')
        })
        .collect()
}

/// A wrong code of the right length for `right`.
pub fn wrong_code(right: &str) -> String {
    right.chars().map(|c| if c == '0' { '1' } else { '0' }).collect()
}
