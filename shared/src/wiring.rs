//! Assembling the service from settings and adapters, once per cold start. Failures
//! do not crash: the `Api` then answers `503` to every request and the log says why.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::clock::SystemClock;
use crate::adapters::env_secrets::EnvSecrets;
use crate::adapters::firestore::{FirestoreAuth, FirestoreConfig, FirestoreStore};
use crate::adapters::memory::MemoryStore;
use crate::adapters::ssm::{RequireTwilio, SsmSecrets};
use crate::adapters::twilio::{TwilioConfig, TwilioConfigError, TwilioSender};
use crate::config::{Settings, SmsKind, StoreKind};
use crate::http::{Api, Cors, StartupError};
use crate::ports::{Clock, OtpStore, SecretSource, SmsSender};
use crate::service::{OtpService, SecretCache};

/// How long loaded secrets are used before they are read again.
pub const SECRET_TTL: Duration = Duration::from_secs(300);

/// True inside AWS Lambda.
pub fn running_in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some_and(|v| !v.is_empty())
}

/// Builds the service from ready parts and loads its secrets once.
pub async fn assemble(
    settings: Settings,
    store: Arc<dyn OtpStore>,
    sms: Arc<dyn SmsSender>,
    clock: Arc<dyn Clock>,
    secrets: Arc<dyn SecretSource>,
) -> Api {
    let cache = Arc::new(SecretCache::new(secrets, SECRET_TTL));
    // A failure is logged inside and retried on later requests, which answer 503 meanwhile.
    let _ = cache.prime().await;
    assemble_cached(settings, store, sms, clock, cache)
}

/// Loads the phone-number metadata now, during the cold start, not in the first request.
pub fn warm_phone_metadata() {
    let _ = crate::domain::E164Phone::parse("+14155550123", None);
}

/// Builds the service around a secret cache that other parts (the Twilio sender) share.
/// Priming the cache is the caller's business, so it can overlap other start-up work.
pub fn assemble_cached(
    settings: Settings,
    store: Arc<dyn OtpStore>,
    sms: Arc<dyn SmsSender>,
    clock: Arc<dyn Clock>,
    secrets: Arc<SecretCache>,
) -> Api {
    warm_phone_metadata();
    let cors = Cors::new(&settings.allowed_origins);
    Api::new(cors, Ok(OtpService::new(settings, store, sms, clock, secrets)))
}

/// Where secrets come from: SSM under `OTP_SSM_PREFIX` when it is set (environment
/// variables override single values), else the environment alone. With `OTP_SMS=twilio`
/// the Twilio credentials are required, so their absence is a start-up error (503).
pub fn secret_source(settings: &Settings) -> Arc<dyn SecretSource> {
    let require_twilio = settings.sms == SmsKind::Twilio;
    let prefix = std::env::var("OTP_SSM_PREFIX").ok().filter(|p| !p.trim().is_empty());
    match (prefix, require_twilio) {
        (Some(prefix), _) => Arc::new(SsmSecrets::from_env(prefix.trim(), require_twilio)),
        (None, true) => Arc::new(RequireTwilio(EnvSecrets::from_env())),
        (None, false) => Arc::new(EnvSecrets::from_env()),
    }
}

/// The Twilio sender, configured from `TWILIO_API_BASE`, with credentials from `secrets`.
pub fn twilio_sender(secrets: Arc<SecretCache>) -> Result<TwilioSender, TwilioConfigError> {
    TwilioSender::new(TwilioConfig::from_lookup(|name| std::env::var(name).ok())?, secrets)
}

/// The `Api` of a Lambda function, from the environment.
pub async fn lambda_api() -> Api {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => return refuse(Settings::default(), error.to_string()),
    };
    if let Some(reason) = dev_adapters_refused(&settings, running_in_lambda()) {
        return refuse(settings, reason);
    }
    if running_in_lambda() && settings.firestore.emulator_host.is_some() {
        return refuse(settings, "FIRESTORE_EMULATOR_HOST is for local runs and tests; unset it in Lambda".into());
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let secrets = Arc::new(SecretCache::new(secret_source(&settings), SECRET_TTL));
    let sms: Arc<dyn SmsSender> = match settings.sms {
        SmsKind::Outbox => Arc::new(crate::adapters::outbox::Outbox::new(clock.clone(), false)),
        SmsKind::Twilio => match twilio_sender(secrets.clone()) {
            Ok(sender) => Arc::new(sender),
            Err(error) => return refuse(settings, error.to_string()),
        },
    };
    // The store reads its credentials (`gcp_credentials`) through the cache too, so SSM
    // is read once per cold start, not once per consumer.
    let store_secrets: Arc<dyn SecretSource> = secrets.clone();
    let store = async {
        warm_phone_metadata();
        match settings.store {
            StoreKind::Memory => Ok(Arc::new(MemoryStore::new()) as Arc<dyn OtpStore>),
            StoreKind::Firestore => {
                let store = firestore_store(&settings, store_secrets)?;
                // Connect during the init phase, so the first request does not pay for it.
                // A failure is logged and the connection retried by each request meanwhile.
                if let Err(error) = store.connect_now().await {
                    tracing::warn!(%error, "Firestore not reachable at start; requests answer 503 until it is");
                }
                Ok(Arc::new(store) as Arc<dyn OtpStore>)
            }
        }
    };
    // Secrets load (SSM: one call) while the rest of start-up proceeds: the CPU work of
    // the phone metadata runs while the SSM request is in flight, and the Firestore
    // connection waits for the secrets it needs from the same load.
    let (_, store) = tokio::join!(secrets.prime(), store);
    match store {
        Ok(store) => assemble_cached(settings, store, sms, clock, secrets),
        Err(reason) => refuse(settings, reason),
    }
}

/// The Firestore store the settings describe: the emulator when `FIRESTORE_EMULATOR_HOST`
/// is set, else Firestore itself with the `gcp_credentials` of `secrets` (a service-account
/// key or a workload identity federation configuration), or the Application Default
/// Credentials when they hold none. The credentials are read when the store connects.
pub fn firestore_store(settings: &Settings, secrets: Arc<dyn SecretSource>) -> Result<FirestoreStore, String> {
    let firestore = &settings.firestore;
    let project_id = firestore
        .project_id
        .clone()
        .ok_or_else(|| "OTP_FIRESTORE_PROJECT_ID is required with OTP_STORE=firestore".to_owned())?;
    let config = FirestoreConfig {
        database_id: firestore.database_id.clone(),
        collection_prefix: firestore.collection_prefix.clone(),
        ..FirestoreConfig::new(project_id)
    };
    let auth = match &firestore.emulator_host {
        Some(host) => FirestoreAuth::Emulator(host.clone()),
        None => FirestoreAuth::Secrets(secrets),
    };
    Ok(FirestoreStore::new(config, auth))
}

/// Inside Lambda the local-only adapters are refused: memory would not be shared between
/// instances (limits would not hold), and the outbox would send nothing.
pub fn dev_adapters_refused(settings: &Settings, in_lambda: bool) -> Option<String> {
    let mut refused = Vec::new();
    if in_lambda && settings.store == StoreKind::Memory {
        refused.push("OTP_STORE=memory");
    }
    if in_lambda && settings.sms == SmsKind::Outbox {
        refused.push("OTP_SMS=outbox");
    }
    (!refused.is_empty()).then(|| {
        format!(
            "{} is for local runs and tests only; use OTP_STORE=firestore and OTP_SMS=twilio",
            refused.join(" and ")
        )
    })
}

fn refuse(settings: Settings, reason: String) -> Api {
    tracing::error!(%reason, "the service cannot start; every request answers 503");
    Api::new(Cors::new(&settings.allowed_origins), Err(StartupError(reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firestore_settings(pairs: &[(&str, &str)]) -> Settings {
        let lookup = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        Settings::from_lookup(lookup).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_emulator_host_selects_the_emulator_else_the_secrets_give_the_credentials() {
        let secrets: Arc<dyn SecretSource> = Arc::new(EnvSecrets::from_lookup(|_| None));
        let emulated = firestore_settings(&[
            ("OTP_STORE", "firestore"),
            ("OTP_FIRESTORE_PROJECT_ID", "demo-otp"),
            ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080"),
        ]);
        assert_eq!(emulated.store, StoreKind::Firestore);
        let store = firestore_store(&emulated, secrets.clone()).unwrap_or_else(|e| panic!("{e}"));
        assert!(format!("{store:?}").contains("FirestoreAuth::Emulator"), "{store:?}");
        let real = firestore_settings(&[
            ("OTP_STORE", "firestore"),
            ("OTP_FIRESTORE_PROJECT_ID", "acme"),
            ("OTP_FIRESTORE_COLLECTION_PREFIX", "prod_"),
        ]);
        let store = firestore_store(&real, secrets.clone()).unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{store:?}");
        assert!(
            shown.contains("FirestoreAuth::Secrets") && shown.contains("prod_") && shown.contains("acme"),
            "{shown}"
        );
        assert!(firestore_store(&Settings::default(), secrets).is_err(), "no project id");
    }

    #[test]
    fn lambda_refuses_local_only_adapters() {
        let mut settings = Settings::default();
        assert_eq!(dev_adapters_refused(&settings, false), None);
        let reason = dev_adapters_refused(&settings, true).expect("refused in Lambda");
        assert!(reason.contains("OTP_STORE=memory") && reason.contains("OTP_SMS=outbox"), "{reason}");
        settings.store = StoreKind::Firestore;
        let reason = dev_adapters_refused(&settings, true).expect("outbox still refused");
        assert!(!reason.contains("OTP_STORE=memory") && reason.contains("OTP_SMS=outbox"), "{reason}");
        settings.sms = SmsKind::Twilio;
        assert_eq!(dev_adapters_refused(&settings, true), None);
    }

    #[tokio::test]
    async fn a_refused_start_answers_503() {
        let api = refuse(Settings::default(), "test".into());
        let request =
            http::Request::builder().method("POST").header("content-type", "application/json").body("{}").unwrap();
        let response = api.handle(crate::Endpoint::VerifyOtp, &request, None).await;
        assert_eq!(response.status(), 503);
    }
}
