//! Assembling the service from settings and adapters, once per cold start: the one
//! start-up path of the Lambda functions, the local run and every test harness, which
//! differ only in the parts they hand over ready-made ([`Overrides`]). Failures do not
//! crash: the `Api` then answers `503` to every request and the log says why.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::captcha::{CachedSecretSiteVerify, ChallengeConfig, hostnames_of_origins};
use crate::adapters::clock::SystemClock;
use crate::adapters::emf::Emf;
use crate::adapters::firestore::{FirestoreAuth, FirestoreConfig, FirestoreStore};
use crate::adapters::memory::MemoryStore;
use crate::adapters::memory_delivery::MemoryDeliveryLog;
use crate::adapters::outbox::Outbox;
use crate::adapters::twilio::{TwilioConfig, TwilioSender};
use crate::config::{CaptchaSettings, Settings, SmsKind, StoreKind};
use crate::http::{Api, Cors, Endpoint, StartupError};
use crate::ports::{BotChallenge, Clock, CodeSender, DeliveryLog, Metrics, OtpStore, SecretSource};
use crate::secrets::env::EnvSecrets;
use crate::secrets::ssm::SsmSecrets;
use crate::secrets::{Required, SECRET_TTL, SecretCache, TWILIO_AUTH_TOKEN, TestNumbersRule};
use crate::service::{DeliveryTracking, OtpService};

/// Parts handed to the start-up ready-made instead of built from the settings: the fakes
/// and fixtures of tests and the local run. Each left `None` is built as in Lambda.
#[derive(Default)]
pub struct Overrides {
    pub clock: Option<Arc<dyn Clock>>,
    pub secrets: Option<Arc<dyn SecretSource>>,
    pub store: Option<Arc<dyn OtpStore>>,
    pub sms: Option<Arc<dyn CodeSender>>,
    pub challenge: Option<Arc<dyn BotChallenge>>,
    /// The delivery records of the status callbacks (else those of the store's kind).
    pub delivery: Option<Arc<dyn DeliveryLog>>,
    /// Where the metrics go (else EMF lines on standard output).
    pub metrics: Option<Arc<dyn Metrics>>,
    /// The Firestore store's limit per call; tests on a loaded emulator need more than
    /// production's 3 s.
    pub firestore_call_timeout: Option<Duration>,
    /// The outbox prints each SMS to the terminal (the local run).
    pub echo_outbox: bool,
    /// How long loaded secrets serve before they are read again ([`SECRET_TTL`]): a test
    /// of a rotation sets zero, so that each request reads its source.
    pub secret_ttl: Option<Duration>,
}

/// A started service.
pub struct App {
    pub api: Api,
    /// The outbox, when SMS go there (`OTP_SMS=outbox`).
    pub outbox: Option<Arc<Outbox>>,
    /// What went wrong at start-up, each also logged: a refused start (every request
    /// answers 503), or secrets or a store not reachable yet (retried by requests). The
    /// local run treats any of them as fatal.
    pub problems: Vec<String>,
}

/// The `Api` of the Lambda function serving `endpoints`, from the environment.
pub async fn lambda_api(endpoints: &[Endpoint]) -> Api {
    build_from_env(Overrides::default(), endpoints).await.api
}

/// Reads the settings from the environment and builds the service for `endpoints`.
pub async fn build_from_env(overrides: Overrides, endpoints: &[Endpoint]) -> App {
    match Settings::from_env() {
        Ok(settings) => build_serving(settings, overrides, endpoints).await,
        Err(error) => {
            // The origins alone may still be readable: a browser then sees the 503.
            let origins = Settings::origins_from_env().unwrap_or_else(|_| Settings::default().allowed_origins);
            refuse(&origins, error.to_string())
        }
    }
}

/// Builds the service that `settings` describe, with `overrides` in place of the parts
/// they give, serving both endpoints (the local run, tests).
pub async fn build(settings: Settings, overrides: Overrides) -> App {
    build_serving(settings, overrides, &Endpoint::ALL).await
}

/// [`build`] for a process that serves only `endpoints`: it warms only what they use (a
/// Twilio connection only where codes are sent).
pub async fn build_serving(settings: Settings, overrides: Overrides, endpoints: &[Endpoint]) -> App {
    if let Some(reason) = refused_in_lambda(&settings, &overrides) {
        return refuse(&settings.allowed_origins, reason);
    }
    let clock: Arc<dyn Clock> = overrides.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let sends = endpoints.contains(&Endpoint::SendOtp);
    let required = Required {
        twilio: sends && overrides.sms.is_none() && settings.sms == SmsKind::Twilio,
        captcha: sends && overrides.challenge.is_none() && settings.captcha.is_some(),
        token_keys: endpoints.contains(&Endpoint::VerifyOtp) || endpoints.contains(&Endpoint::Jwks),
        // Test numbers would let anyone who knows one sign in as it: inside Lambda a list in
        // the secrets makes them unfit, unless the stack allows them on purpose.
        test_numbers: if settings.in_lambda && !settings.test_numbers_in_lambda {
            TestNumbersRule::Refused
        } else {
            TestNumbersRule::Allowed(settings.service.code_length)
        },
    };
    let source = overrides.secrets.unwrap_or_else(|| secret_source(&settings, required));
    let secrets = Arc::new(SecretCache::new(source, required, overrides.secret_ttl.unwrap_or(SECRET_TTL)));

    let mut outbox = None;
    let mut twilio = None;
    let sms: Arc<dyn CodeSender> = match (overrides.sms, settings.sms) {
        (Some(sms), _) => sms,
        (None, SmsKind::Outbox) => {
            let created = Arc::new(Outbox::new(clock.clone(), overrides.echo_outbox));
            outbox = Some(created.clone());
            created
        }
        (None, SmsKind::Twilio) => {
            let config = TwilioConfig::new(settings.twilio_api_base.as_ref())
                .with_whatsapp(settings.twilio_whatsapp.clone())
                .with_status_callback(settings.status_callback_url.as_ref());
            let sender = TwilioSender::new(config, secrets.clone());
            match sender {
                Ok(sender) => {
                    let sender = Arc::new(sender);
                    twilio = endpoints.contains(&Endpoint::SendOtp).then(|| sender.clone());
                    sender
                }
                Err(error) => return refuse(&settings.allowed_origins, error.to_string()),
            }
        }
    };
    let challenge = match (overrides.challenge, &settings.captcha) {
        (Some(challenge), _) => Some(challenge),
        (None, None) => None,
        (None, Some(captcha)) => Some(challenge_from_settings(captcha, &settings, secrets.clone())),
    };
    let firestore = match (&overrides.store, settings.store) {
        (None, StoreKind::Firestore) => {
            match firestore_store(&settings, secrets.clone(), overrides.firestore_call_timeout) {
                Ok(store) => Some(Arc::new(store)),
                Err(reason) => return refuse(&settings.allowed_origins, reason),
            }
        }
        _ => None,
    };
    // What the first requests would otherwise pay for is done now, in the init phase, all
    // at once: the secrets load (SSM: one call), then the Twilio connection opens with
    // them; the Firestore connection opens (and fetches its token) with the credentials of
    // the same load; and while those wait on the network, the phone metadata of the
    // countries served is decoded and their patterns are compiled. On this thread, which goes on to
    // serve the requests: a compiled pattern keeps a fast path for the first thread that
    // runs it, and any other thread builds its own matching state on first use (measured:
    // +0.7 ms on the first request when the warming ran on a thread of its own). A failure
    // is logged, and each request retries what it needs.
    let secrets_then_twilio = async {
        let primed = secrets.prime().await;
        if let (Ok(()), Some(twilio)) = (&primed, &twilio) {
            let _ = twilio.warm().await;
        }
        primed
    };
    let connect = async {
        match &firestore {
            Some(store) => store.connect_now().await,
            None => Ok(()),
        }
    };
    // Polled last, so the requests above are on their way before it takes the thread.
    let patterns = async { crate::domain::phone::warm_regions(&settings.service.allowed_countries.regions_to_warm()) };
    let (primed, connected, warmed) = tokio::join!(secrets_then_twilio, connect, patterns);
    tracing::debug!(
        event = "phone_patterns_warmed",
        regions = warmed.regions,
        patterns = warmed.patterns,
        capacity = warmed.capacity,
        "compiled the phone-number patterns of the countries served"
    );
    let mut problems: Vec<String> = primed.err().map(|e| format!("secrets: {e}")).into_iter().collect();
    if let Err(error) = connected {
        tracing::warn!(%error, "Firestore not reachable at start; requests answer 503 until it is");
        problems.push(format!("Firestore: {error}"));
    }
    // The delivery records live where the store does: Firestore's in its own collection.
    let delivery: Arc<dyn DeliveryLog> = match (overrides.delivery, &firestore) {
        (Some(delivery), _) => delivery,
        (None, Some(firestore)) => firestore.clone(),
        (None, None) => Arc::new(MemoryDeliveryLog::new()),
    };
    let store: Arc<dyn OtpStore> = match (overrides.store, firestore) {
        (Some(store), _) => store,
        (None, Some(firestore)) => firestore,
        (None, None) => Arc::new(MemoryStore::new()),
    };
    let cors = Cors::new(&settings.allowed_origins);
    let metrics =
        overrides.metrics.unwrap_or_else(|| Arc::new(Emf::stdout(clock.clone(), &settings.metrics_namespace)));
    let mut service = OtpService::new(settings.service, store, sms, clock, secrets, challenge).with_metrics(metrics);
    if let Some(url) = &settings.status_callback_url {
        // Twilio signs its callbacks with the account's auth token.
        let signing_secret = TWILIO_AUTH_TOKEN;
        service = service.with_delivery(DeliveryTracking {
            log: delivery,
            callback_url: url.as_str().to_owned(),
            signing_secret,
        });
    }
    App { api: Api::new(cors, Ok(service)), outbox, problems }
}

/// The bot challenge the settings name, reading its secret through `secrets`, and
/// expecting the hostnames of the CORS origins.
fn challenge_from_settings(
    captcha: &CaptchaSettings,
    settings: &Settings,
    secrets: Arc<dyn SecretSource>,
) -> Arc<dyn BotChallenge> {
    let config = ChallengeConfig::from_settings(captcha, hostnames_of_origins(&settings.allowed_origins));
    Arc::new(CachedSecretSiteVerify::new(config, secrets))
}

/// Where secrets come from: SSM under `OTP_SSM_PREFIX` when it is set (environment
/// variables override single values), else the environment alone.
fn secret_source(settings: &Settings, required: Required) -> Arc<dyn SecretSource> {
    match &settings.ssm_prefix {
        Some(prefix) => Arc::new(SsmSecrets::from_env(prefix, required)),
        None => Arc::new(EnvSecrets::from_env()),
    }
}

/// The Firestore store the settings describe: the emulator when `FIRESTORE_EMULATOR_HOST`
/// is set, else Firestore itself with the `secrets::GCP_CREDENTIALS` of `secrets` (a service-account
/// key or a workload identity federation configuration), or the Application Default
/// Credentials when they hold none. The credentials are read when the store connects.
pub fn firestore_store(
    settings: &Settings,
    secrets: Arc<dyn SecretSource>,
    call_timeout: Option<Duration>,
) -> Result<FirestoreStore, String> {
    let firestore = &settings.firestore;
    let project_id = firestore
        .project_id
        .clone()
        .ok_or_else(|| "OTP_FIRESTORE_PROJECT_ID is required with OTP_STORE=firestore".to_owned())?;
    let defaults = FirestoreConfig::new(project_id);
    let config = FirestoreConfig {
        database_id: firestore.database_id.clone(),
        collection_prefix: firestore.collection_prefix.clone(),
        call_timeout: call_timeout.unwrap_or(defaults.call_timeout),
        ..defaults
    };
    let auth = match &firestore.emulator_host {
        Some(host) => FirestoreAuth::Emulator(host.clone()),
        None => FirestoreAuth::Secrets(secrets),
    };
    Ok(FirestoreStore::new(config, auth))
}

/// Inside Lambda the local-only adapters are refused: memory would not be shared between
/// instances (limits would not hold), the outbox would send nothing, and the emulator is
/// not Firestore. (Test numbers are secrets: `Required::test_numbers` refuses them.)
fn refused_in_lambda(settings: &Settings, overrides: &Overrides) -> Option<String> {
    if !settings.in_lambda {
        return None;
    }
    let mut refused = Vec::new();
    if overrides.store.is_none() && settings.store == StoreKind::Memory {
        refused.push("OTP_STORE=memory");
    }
    if overrides.sms.is_none() && settings.sms == SmsKind::Outbox {
        refused.push("OTP_SMS=outbox");
    }
    if settings.firestore.emulator_host.is_some() {
        refused.push("FIRESTORE_EMULATOR_HOST");
    }
    (!refused.is_empty()).then(|| {
        format!(
            "{} is for local runs and tests only; use OTP_STORE=firestore and OTP_SMS=twilio",
            refused.join(" and ")
        )
    })
}

fn refuse(origins: &[String], reason: String) -> App {
    tracing::error!(event = "startup_refused", %reason, "the service cannot start; every request answers 503");
    App { api: Api::new(Cors::new(origins), Err(StartupError(reason.clone()))), outbox: None, problems: vec![reason] }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusty_fork::rusty_fork_test;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let lookup = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        Settings::from_lookup(lookup).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_emulator_host_selects_the_emulator_else_the_secrets_give_the_credentials() {
        let secrets: Arc<dyn SecretSource> = Arc::new(EnvSecrets::from_lookup(|_| None));
        let emulated = settings(&[
            ("OTP_STORE", "firestore"),
            ("OTP_FIRESTORE_PROJECT_ID", "demo-otp"),
            ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080"),
        ]);
        assert_eq!(emulated.store, StoreKind::Firestore);
        let store = firestore_store(&emulated, secrets.clone(), None).unwrap_or_else(|e| panic!("{e}"));
        assert!(format!("{store:?}").contains("FirestoreAuth::Emulator"), "{store:?}");
        let store = firestore_store(&emulated, secrets.clone(), Some(Duration::from_secs(20)))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(format!("{store:?}").contains("20s"), "the call timeout is the caller's: {store:?}");
        let real = settings(&[
            ("OTP_STORE", "firestore"),
            ("OTP_FIRESTORE_PROJECT_ID", "acme"),
            ("OTP_FIRESTORE_COLLECTION_PREFIX", "prod_"),
        ]);
        let store = firestore_store(&real, secrets.clone(), None).unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{store:?}");
        assert!(
            shown.contains("FirestoreAuth::Secrets") && shown.contains("prod_") && shown.contains("acme"),
            "{shown}"
        );
        assert!(firestore_store(&Settings::default(), secrets, None).is_err(), "no project id");
    }

    #[test]
    fn lambda_refuses_local_only_adapters() {
        let none = Overrides::default();
        assert_eq!(refused_in_lambda(&settings(&[]), &none), None, "outside Lambda anything goes");
        let lambda = [("AWS_LAMBDA_FUNCTION_NAME", "send-otp")];
        let reason = refused_in_lambda(&settings(&lambda), &none).expect("refused in Lambda");
        assert!(reason.contains("OTP_STORE=memory") && reason.contains("OTP_SMS=outbox"), "{reason}");
        let production = [
            ("AWS_LAMBDA_FUNCTION_NAME", "send-otp"),
            ("OTP_STORE", "firestore"),
            ("OTP_FIRESTORE_PROJECT_ID", "acme-prod"),
            ("OTP_SMS", "twilio"),
        ];
        assert_eq!(refused_in_lambda(&settings(&production), &none), None);
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = production.to_vec();
            pairs.extend_from_slice(extra);
            refused_in_lambda(&settings(&pairs), &none)
        };
        assert!(
            with(&[("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080")])
                .is_some_and(|r| r.contains("FIRESTORE_EMULATOR_HOST"))
        );
    }

    #[tokio::test]
    async fn inside_lambda_test_numbers_in_the_secrets_are_refused_unless_allowed() {
        let key = crate::domain::token::TokenKeys::generate_pem();
        let secrets = |list: &str| {
            let list = list.to_owned();
            let key = key.clone();
            let env = EnvSecrets::from_lookup(move |name| match name {
                "OTP_TOKEN_SIGNING_KEYS" => Some(key.clone()),
                "OTP_SESSION_SECRET" => Some("s".repeat(16) + &"t".repeat(16)),
                "OTP_CODE_PEPPER" => Some("p".repeat(16) + &"q".repeat(16)),
                "OTP_TEST_NUMBERS" => Some(list.clone()),
                _ => None,
            });
            Overrides {
                secrets: Some(Arc::new(env) as Arc<dyn SecretSource>),
                store: Some(Arc::new(MemoryStore::new()) as Arc<dyn OtpStore>),
                sms: Some(Arc::new(Outbox::new(Arc::new(SystemClock), false)) as Arc<dyn CodeSender>),
                ..Overrides::default()
            }
        };
        // One country served, so that start-up warms few patterns (the pattern-cache tests
        // of domain::phone count them in the same process).
        let us = ("OTP_ALLOWED_COUNTRIES", "US");
        let lambda = [("AWS_LAMBDA_FUNCTION_NAME", "send-otp"), us];
        let app = build(settings(&lambda), secrets("+15555550100=123456")).await;
        assert!(
            app.problems.iter().any(|p| p.contains("OTP_TEST_NUMBERS_IN_LAMBDA")),
            "refused in Lambda: {:?}",
            app.problems
        );
        let allowed = [("AWS_LAMBDA_FUNCTION_NAME", "send-otp"), ("OTP_TEST_NUMBERS_IN_LAMBDA", "true"), us];
        let app = build(settings(&allowed), secrets("+15555550100=123456")).await;
        assert_eq!(app.problems, Vec::<String>::new(), "allowed on purpose");
        let app = build(settings(&[us]), secrets("+15555550100=123456")).await;
        assert_eq!(app.problems, Vec::<String>::new(), "outside Lambda");
        let app = build(settings(&[("OTP_CODE_LENGTH", "8"), us]), secrets("+15555550100=123456")).await;
        assert!(
            app.problems.iter().any(|p| p.contains("8 digits")),
            "the codes take the code length: {:?}",
            app.problems
        );
    }

    // It counts what the process-wide pattern cache holds: in a process of its own, or the
    // numbers other tests parse meanwhile (or parsed before) would change the count.
    rusty_fork_test! {
        #[test]
        fn start_up_compiles_the_patterns_of_the_countries_served() {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(start_up_compiles_the_patterns_served());
        }
    }

    async fn start_up_compiles_the_patterns_served() {
        let app = build(settings(&[("OTP_ALLOWED_COUNTRIES", "JP,KE")]), Overrides::default()).await;
        assert!(app.api.service().is_some(), "{:?}", app.problems);
        let before = crate::domain::phone::compiled_patterns();
        assert!(before > 0);
        for raw in ["+81 90-1234-5678", "+254 712 345678"] {
            crate::domain::E164Phone::parse(raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
        }
        assert_eq!(
            crate::domain::phone::compiled_patterns(),
            before,
            "the first numbers of the countries served compile nothing"
        );
    }

    #[tokio::test]
    async fn a_refused_start_answers_503_with_the_configured_origin() {
        let app = refuse(&["https://app.example".to_owned()], "test".into());
        let request = http::Request::builder()
            .method("POST")
            .header("content-type", "application/json")
            .header("origin", "https://app.example")
            .body("{}")
            .unwrap();
        let response = app.api.handle(crate::Endpoint::VerifyOtp, &request, None).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example");
    }
}
