//! Assembling the service from settings and adapters, once per cold start. Failures
//! do not crash: the `Api` then answers `503` to every request and the log says why.

use std::sync::Arc;
use std::time::Duration;

use crate::adapters::clock::SystemClock;
use crate::adapters::env_secrets::EnvSecrets;
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

/// Builds the service around a secret cache that other parts (the Twilio sender) share.
/// Priming the cache is the caller's business, so it can overlap other start-up work.
pub fn assemble_cached(
    settings: Settings,
    store: Arc<dyn OtpStore>,
    sms: Arc<dyn SmsSender>,
    clock: Arc<dyn Clock>,
    secrets: Arc<SecretCache>,
) -> Api {
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
    if running_in_lambda() && (settings.store == StoreKind::Memory || settings.sms == SmsKind::Outbox) {
        return refuse(
            settings,
            "OTP_STORE=memory and OTP_SMS=outbox are for local runs and tests; set OTP_STORE=firestore and OTP_SMS=twilio"
                .into(),
        );
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
    let store = async {
        match settings.store {
            StoreKind::Memory => Ok(Arc::new(MemoryStore::new()) as Arc<dyn OtpStore>),
            StoreKind::Firestore => Err("OTP_STORE=firestore is not available in this build".to_owned()),
        }
    };
    // Secrets load (SSM: one call) while the rest of start-up proceeds. A failure is
    // logged inside and retried on later requests, which answer 503 meanwhile.
    let (_, store) = tokio::join!(secrets.prime(), store);
    match store {
        Ok(store) => assemble_cached(settings, store, sms, clock, secrets),
        Err(reason) => refuse(settings, reason),
    }
}

fn refuse(settings: Settings, reason: String) -> Api {
    tracing::error!(%reason, "the service cannot start; every request answers 503");
    Api::new(Cors::new(&settings.allowed_origins), Err(StartupError(reason)))
}
