//! Settings from environment variables (API.md, "Settings" and "Abuse limits"), parsed and
//! checked once at start-up into typed values. This is the one place that reads settings
//! from the environment: every other part gets its settings from here. Three others read
//! the environment, each for what is not a setting: the secret sources
//! (`secrets::env`, `secrets::ssm`: a secret given as a variable, kept out of `Settings`
//! so that it is never in its `Debug`), the log subscriber (`RUST_LOG`, before the
//! settings are read, so that their errors are logged), and the AWS SDK and the Lambda
//! runtime (their own `AWS_*` variables).

use std::collections::BTreeMap;

use chrono::TimeDelta;

mod challenge;
mod url;

pub use challenge::{CaptchaProvider, CaptchaSettings, DEFAULT_ACTION, DEFAULT_MIN_SCORE, MinScore};
pub use url::EndpointUrl;

use crate::domain::phone::NumberTypes;
use crate::domain::{
    Channel, ChannelSet, CodeLength, ConversionGuard, CountryAllowList, CountryCap, E164Phone, OtpCode, SendPolicy,
    VerifyPolicy, WindowLimit,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Firestore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsKind {
    Outbox,
    Twilio,
}

/// The CloudWatch namespace of the metric lines unless `OTP_METRICS_NAMESPACE` names another.
pub const DEFAULT_METRICS_NAMESPACE: &str = "OtpService";

/// Every setting: what the service uses, and what the start-up needs to build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub service: ServiceSettings,
    /// CORS origins, normalised as browsers send them (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    pub store: StoreKind,
    /// Where the Firestore store keeps its records (read whatever `store` is).
    pub firestore: FirestoreSettings,
    pub sms: SmsKind,
    /// Another base URL for Twilio's API, such as a local fake (`TWILIO_API_BASE`).
    pub twilio_api_base: Option<EndpointUrl>,
    /// The public URL of `POST /api/sms-status`, given to Twilio as `StatusCallback`
    /// (`OTP_STATUS_CALLBACK_URL`); unset: no status callbacks.
    pub status_callback_url: Option<EndpointUrl>,
    /// The CloudWatch namespace of the EMF metric lines (`OTP_METRICS_NAMESPACE`).
    pub metrics_namespace: String,
    /// The WhatsApp sender and template (`TWILIO_WHATSAPP_FROM`,
    /// `TWILIO_WHATSAPP_CONTENT_SID`): required with `whatsapp` among the channels and
    /// `OTP_SMS=twilio`.
    pub twilio_whatsapp: Option<WhatsappSender>,
    /// Where secrets live in SSM Parameter Store (`OTP_SSM_PREFIX`); unset: the environment.
    pub ssm_prefix: Option<String>,
    /// The bot challenge on sends (`OTP_CAPTCHA`, `OTP_CAPTCHA_VERIFY_URL`,
    /// `OTP_CAPTCHA_ACTION`, `OTP_CAPTCHA_MIN_SCORE`).
    pub captcha: Option<CaptchaSettings>,
    /// Inside AWS Lambda (`AWS_LAMBDA_FUNCTION_NAME` is set).
    pub in_lambda: bool,
    /// Test numbers are allowed inside Lambda (`OTP_TEST_NUMBERS_IN_LAMBDA=true`).
    pub test_numbers_in_lambda: bool,
    /// The local run's port on 127.0.0.1 (`PORT`, default 3001).
    pub local_port: u16,
    /// The local run's demo page build folder (`OTP_DEMO_DIR`; unset: `web/demo/dist`).
    pub local_demo_dir: Option<std::path::PathBuf>,
}

/// What the service itself uses: the rules, the code and token shapes, the texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSettings {
    pub code_length: CodeLength,
    pub policy: SendPolicy,
    pub verify_policy: VerifyPolicy,
    /// How many trailing digits a number's range leaves out (`OTP_RANGE_DIGITS`, 1 to 6):
    /// 3 makes blocks of 1000 numbers. Used only with `policy.per_range` on.
    pub range_digits: u8,
    pub token_ttl: TimeDelta,
    /// The tokens' `iss` (`OTP_TOKEN_ISSUER`).
    pub token_issuer: String,
    /// The tokens' `aud` (`OTP_TOKEN_AUDIENCE`): the backends that accept them check it.
    pub token_audience: String,
    pub allowed_countries: CountryAllowList,
    /// Number types that may receive codes (`OTP_NUMBER_TYPES`).
    pub number_types: NumberTypes,
    /// Adds the WebOTP line `@domain #code` to every SMS (`OTP_WEBOTP_DOMAIN`).
    pub webotp_domain: Option<String>,
    /// The channels offered, in order (`OTP_CHANNELS`).
    pub channels: ChannelSet,
    /// When the bot challenge, if one is configured, is asked for (`OTP_CAPTCHA_WHEN`).
    pub captcha_when: ChallengeWhen,
    /// How long a device token is valid (`OTP_DEVICE_TOKEN_DAYS`).
    pub device_token_ttl: TimeDelta,
    /// The national digits of a number's prefix for the conversion guard
    /// (`OTP_GUARD_PREFIX_DIGITS`, 0 to 6).
    pub guard_prefix_digits: u8,
}

/// When the bot challenge is asked for (`OTP_CAPTCHA_WHEN`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChallengeWhen {
    /// Of every send.
    #[default]
    Always,
    /// Only of sends to numbers not yet known in a paused prefix, or past the levels of
    /// `policy::CHALLENGE_COUNTRY_PERCENT` / `CHALLENGE_NEW_SHARE_PERCENT`.
    UnderAttack,
}

/// Who WhatsApp codes come from, and the approved authentication template they fill in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatsappSender {
    /// `whatsapp:+E164`.
    pub from: String,
    /// The Content SID of the template (`HX` and 32 hex digits).
    pub content_sid: String,
}

/// The Firestore database of the store: `OTP_FIRESTORE_PROJECT_ID` (required with
/// `OTP_STORE=firestore`), `OTP_FIRESTORE_DATABASE_ID`, `OTP_FIRESTORE_COLLECTION_PREFIX`,
/// and `FIRESTORE_EMULATOR_HOST`, which points the store at the emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirestoreSettings {
    pub project_id: Option<String>,
    pub database_id: String,
    pub collection_prefix: String,
    pub emulator_host: Option<String>,
}

/// Test numbers and their fixed codes. The list is a secret (`test-numbers` in SSM,
/// `OTP_TEST_NUMBERS` locally: see `secrets`), read with the other secrets; this is its
/// shape once parsed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TestNumbers(BTreeMap<String, OtpCode>);

impl TestNumbers {
    /// `+E164=code` pairs, each number valid and each code of the configured length. A
    /// reason never repeats a number or a code.
    pub fn parse(list: &str, length: CodeLength) -> Result<Self, String> {
        let mut numbers = BTreeMap::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (number, code) = item.split_once('=').ok_or("each entry is +E164=code")?;
            // Parsed with every number type allowed: a test number is often a fictional range.
            let phone = E164Phone::parse_any_type(number, None).map_err(|e| format!("a test number: {e}"))?;
            let code = OtpCode::parse(code.trim(), length)
                .map_err(|_| format!("a test code must be {} digits", length.get()))?;
            numbers.insert(phone.as_str().to_owned(), code);
        }
        Ok(Self(numbers))
    }

    /// The test number `raw` names, if any: a test number need not be a valid number.
    pub fn find(&self, raw: &str) -> Option<E164Phone> {
        let raw = raw.trim();
        let normalised = raw.strip_prefix("00").map_or_else(|| raw.to_owned(), |rest| format!("+{rest}"));
        E164Phone::parse_any_type(&normalised, None).ok().filter(|phone| self.0.contains_key(phone.as_str()))
    }

    /// The fixed code of `phone`, if it is a test number.
    pub fn code_for(&self, phone: &E164Phone) -> Option<&OtpCode> {
        self.0.get(phone.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for TestNumbers {
    // The codes are fixed but still codes: logs get the count only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestNumbers({})", self.0.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self::from_lookup(|_| None).unwrap_or_else(|e| unreachable!("defaults are valid: {e}"))
    }
}

impl Default for ServiceSettings {
    fn default() -> Self {
        Settings::default().service
    }
}

/// The default CORS origin (API.md).
const DEFAULT_ORIGIN: &str = "http://localhost:5173";

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The CORS origins alone, for the answers of a service whose other settings failed.
    pub fn origins_from_env() -> Result<Vec<String>, ConfigError> {
        origins(&Env(&|name: &str| std::env::var(name).ok()))
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let service = service_settings(&env)?;
        let store = match env.text("OTP_STORE").as_deref() {
            None | Some("memory") => StoreKind::Memory,
            Some("firestore") => StoreKind::Firestore,
            Some(_) => return Err(invalid("OTP_STORE", "must be `memory` or `firestore`")),
        };
        let firestore = FirestoreSettings {
            project_id: env.text("OTP_FIRESTORE_PROJECT_ID"),
            database_id: env.text("OTP_FIRESTORE_DATABASE_ID").unwrap_or_else(|| "(default)".into()),
            collection_prefix: env.text("OTP_FIRESTORE_COLLECTION_PREFIX").unwrap_or_else(|| "otp_".into()),
            emulator_host: env.text("FIRESTORE_EMULATOR_HOST"),
        };
        if store == StoreKind::Firestore && firestore.project_id.is_none() {
            return Err(invalid("OTP_FIRESTORE_PROJECT_ID", "is required with OTP_STORE=firestore"));
        }
        // Document ids cannot contain `/`, and collection names are the prefix plus a word.
        if !firestore.collection_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(invalid("OTP_FIRESTORE_COLLECTION_PREFIX", "use letters, digits, `_` and `-` only"));
        }
        let sms = match env.text("OTP_SMS").as_deref() {
            None | Some("outbox") => SmsKind::Outbox,
            Some("twilio") => SmsKind::Twilio,
            Some(_) => return Err(invalid("OTP_SMS", "must be `outbox` or `twilio`")),
        };
        let captcha = challenge::captcha_settings(|name| env.text(name))
            .map_err(|(variable, reason)| invalid(variable, reason))?;
        let mut service = service;
        service.policy.challenge_under_attack = captcha.is_some() && service.captcha_when == ChallengeWhen::UnderAttack;
        let twilio_api_base = match env.text("TWILIO_API_BASE") {
            None => None,
            Some(raw) => Some(EndpointUrl::parse(&raw).map_err(|reason| invalid("TWILIO_API_BASE", reason))?),
        };
        let status_callback_url = match env.text("OTP_STATUS_CALLBACK_URL") {
            None => None,
            Some(raw) => Some(EndpointUrl::parse(&raw).map_err(|reason| invalid("OTP_STATUS_CALLBACK_URL", reason))?),
        };
        let twilio_whatsapp = whatsapp_sender(&env)?;
        if sms == SmsKind::Twilio && service.channels.contains(Channel::Whatsapp) && twilio_whatsapp.is_none() {
            return Err(invalid(
                "TWILIO_WHATSAPP_FROM",
                "TWILIO_WHATSAPP_FROM and TWILIO_WHATSAPP_CONTENT_SID are required with whatsapp in OTP_CHANNELS",
            ));
        }
        let test_numbers_in_lambda = match env.text("OTP_TEST_NUMBERS_IN_LAMBDA").as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(invalid("OTP_TEST_NUMBERS_IN_LAMBDA", "must be `true` or `false`")),
        };
        Ok(Self {
            service,
            allowed_origins: origins(&env)?,
            store,
            firestore,
            sms,
            twilio_api_base,
            status_callback_url,
            metrics_namespace: env
                .text("OTP_METRICS_NAMESPACE")
                .unwrap_or_else(|| DEFAULT_METRICS_NAMESPACE.to_owned()),
            twilio_whatsapp,
            ssm_prefix: env.text("OTP_SSM_PREFIX"),
            captcha,
            in_lambda: env.text("AWS_LAMBDA_FUNCTION_NAME").is_some(),
            test_numbers_in_lambda,
            local_port: u16::try_from(env.number("PORT", 3001, 0)?)
                .map_err(|_| invalid("PORT", "must be a port number"))?,
            local_demo_dir: env.text("OTP_DEMO_DIR").map(std::path::PathBuf::from),
        })
    }
}

fn service_settings<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<ServiceSettings, ConfigError> {
    let code_length = {
        let digits = env.number("OTP_CODE_LENGTH", 6, 0)?;
        u8::try_from(digits)
            .ok()
            .and_then(CodeLength::new)
            .ok_or_else(|| invalid("OTP_CODE_LENGTH", "must be 4 to 10"))?
    };
    // Off unless set: it needs a limit fitted to real traffic, or it blocks a busy block
    // of numbers along with the pumping. Its other settings are checked even while it is
    // off, so a bad value does not wait for the day it is turned on.
    let range_window = env.seconds("OTP_SENDS_PER_RANGE_WINDOW_SECONDS", 3600, 1)?;
    let per_range =
        env.optional_send_limit("OTP_SENDS_PER_RANGE")?.map(|max| WindowLimit { max, window: range_window });
    let failures = WindowLimit {
        max: env.capped_count("OTP_MAX_FAILURES_PER_NUMBER", 20, MAX_FAILURES)?,
        window: env.seconds("OTP_FAILURES_WINDOW_SECONDS", 86_400, 1)?,
    };
    let device_failures =
        WindowLimit { max: env.capped_count("OTP_MAX_FAILURES_PER_DEVICE", 10, MAX_FAILURES)?, ..failures };
    let known_for = match env.number("OTP_KNOWN_NUMBER_DAYS", 90, 0)? {
        0 => None,
        days => Some(
            i64::try_from(days)
                .ok()
                .filter(|d| *d <= 3650)
                .map(TimeDelta::days)
                .ok_or_else(|| invalid("OTP_KNOWN_NUMBER_DAYS", "must be 0 to 3650"))?,
        ),
    };
    let new_percent = env.number("OTP_SMS_PER_DAY_NEW_PERCENT", 50, 0)?;
    if new_percent > 100 {
        return Err(invalid("OTP_SMS_PER_DAY_NEW_PERCENT", "must be 0 to 100"));
    }
    let device_token_days = env.number("OTP_DEVICE_TOKEN_DAYS", 90, 1)?;
    let device_token_ttl = i64::try_from(device_token_days)
        .ok()
        .filter(|d| *d <= 3650)
        .map(TimeDelta::days)
        .ok_or_else(|| invalid("OTP_DEVICE_TOKEN_DAYS", "must be 1 to 3650"))?;
    let guard_prefix_digits = u8::try_from(env.number("OTP_GUARD_PREFIX_DIGITS", 3, 0)?)
        .ok()
        .filter(|d| *d <= 6)
        .ok_or_else(|| invalid("OTP_GUARD_PREFIX_DIGITS", "must be 0 to 6"))?;
    let captcha_when = match env.text("OTP_CAPTCHA_WHEN").as_deref() {
        None | Some("always") => ChallengeWhen::Always,
        Some("under_attack") => ChallengeWhen::UnderAttack,
        Some(_) => return Err(invalid("OTP_CAPTCHA_WHEN", "must be `always` or `under_attack`")),
    };
    let guard_pause = env.seconds("OTP_GUARD_PAUSE_SECONDS", 3600, 1)?;
    let guard_percent = env.number("OTP_GUARD_MIN_CONVERSION_PERCENT", 20, 0)?;
    if guard_percent > 100 {
        return Err(invalid("OTP_GUARD_MIN_CONVERSION_PERCENT", "must be 0 to 100"));
    }
    let guard = match env.number("OTP_GUARD_MIN_SENDS", 30, 0)? {
        0 => None,
        min_sends => Some(ConversionGuard {
            min_sends: u32::try_from(min_sends).map_err(|_| invalid("OTP_GUARD_MIN_SENDS", "is too large"))?,
            min_conversion_percent: guard_percent as u32,
            pause: guard_pause,
        }),
    };
    let policy = SendPolicy {
        code_ttl: env.seconds("OTP_CODE_TTL_SECONDS", 600, 1)?,
        max_attempts: env.count("OTP_MAX_ATTEMPTS", 5)?,
        resend_cooldown: env.seconds("OTP_RESEND_COOLDOWN_SECONDS", 60, 0)?,
        per_number: WindowLimit {
            max: env.send_limit("OTP_SENDS_PER_NUMBER", 5)?,
            window: env.seconds("OTP_SENDS_PER_NUMBER_WINDOW_SECONDS", 3600, 1)?,
        },
        per_client: WindowLimit {
            max: env.send_limit("OTP_SENDS_PER_IP", 5)?,
            window: env.seconds("OTP_SENDS_PER_IP_WINDOW_SECONDS", 900, 1)?,
        },
        per_range,
        failures,
        device_failures,
        daily_budget: env.optional_cap("OTP_SMS_PER_DAY", 2000)?,
        // With no number ever known, every number is new: a share would only shrink the budget.
        new_numbers_percent: known_for.map(|_| new_percent as u32),
        per_country_hour: CountryCap {
            default: env.optional_cap("OTP_SMS_PER_COUNTRY_HOUR", 200)?,
            overrides: country_overrides(&env.text("OTP_SMS_PER_COUNTRY_HOUR_OVERRIDES").unwrap_or_default())
                .map_err(|reason| invalid("OTP_SMS_PER_COUNTRY_HOUR_OVERRIDES", reason))?,
        },
        guard,
        // Set once the challenge's own settings are read (`Settings::from_lookup`).
        challenge_under_attack: false,
    };
    let verify_policy = VerifyPolicy {
        per_client: WindowLimit {
            max: env.send_limit("OTP_VERIFIES_PER_IP", 50)?,
            window: env.seconds("OTP_VERIFIES_PER_IP_WINDOW_SECONDS", 900, 1)?,
        },
        failures,
        device_failures,
        known_for,
    };
    let range_digits = u8::try_from(env.number("OTP_RANGE_DIGITS", 3, 1)?)
        .ok()
        .filter(|d| *d <= 6)
        .ok_or_else(|| invalid("OTP_RANGE_DIGITS", "must be 1 to 6"))?;
    let allowed_countries = CountryAllowList::parse(&env.text("OTP_ALLOWED_COUNTRIES").unwrap_or_default())
        .map_err(|reason| invalid("OTP_ALLOWED_COUNTRIES", reason))?;
    let number_types = match env.text("OTP_NUMBER_TYPES") {
        None => NumberTypes::default(),
        Some(list) => NumberTypes::parse(&list).map_err(|reason| invalid("OTP_NUMBER_TYPES", reason))?,
    };
    let webotp_domain = env.text("OTP_WEBOTP_DOMAIN");
    if let Some(domain) = &webotp_domain {
        // The WebOTP line must keep every text within one SMS segment.
        crate::domain::message::check_webotp_domain(domain).map_err(|reason| invalid("OTP_WEBOTP_DOMAIN", reason))?;
    }
    Ok(ServiceSettings {
        code_length,
        policy,
        verify_policy,
        range_digits,
        token_ttl: env.seconds("OTP_TOKEN_TTL_SECONDS", 3600, 1)?,
        token_issuer: env.text("OTP_TOKEN_ISSUER").unwrap_or_else(|| "otp-service".into()),
        token_audience: env.text("OTP_TOKEN_AUDIENCE").unwrap_or_else(|| "otp-service-clients".into()),
        allowed_countries,
        number_types,
        webotp_domain,
        channels: match env.text("OTP_CHANNELS") {
            None => ChannelSet::default(),
            Some(list) => ChannelSet::parse(&list).map_err(|reason| invalid("OTP_CHANNELS", reason))?,
        },
        captcha_when,
        device_token_ttl,
        guard_prefix_digits,
    })
}

/// `TWILIO_WHATSAPP_FROM` and `TWILIO_WHATSAPP_CONTENT_SID`: both or neither, each in
/// Twilio's form, checked whatever the channels, so a typo does not wait for the day
/// WhatsApp is turned on.
fn whatsapp_sender<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Option<WhatsappSender>, ConfigError> {
    let (from, content_sid) = match (env.text("TWILIO_WHATSAPP_FROM"), env.text("TWILIO_WHATSAPP_CONTENT_SID")) {
        (None, None) => return Ok(None),
        (Some(from), Some(sid)) => (from, sid),
        (None, Some(_)) => return Err(invalid("TWILIO_WHATSAPP_FROM", "is required with TWILIO_WHATSAPP_CONTENT_SID")),
        (Some(_), None) => {
            return Err(invalid("TWILIO_WHATSAPP_CONTENT_SID", "is required with TWILIO_WHATSAPP_FROM"));
        }
    };
    let number = from.strip_prefix("whatsapp:").unwrap_or_default();
    let e164 = number.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
    });
    if !e164 {
        return Err(invalid("TWILIO_WHATSAPP_FROM", "must be whatsapp:+E164, such as whatsapp:+14155550123"));
    }
    let sid_ok = content_sid.len() == 34
        && content_sid.starts_with("HX")
        && content_sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if !sid_ok {
        return Err(invalid("TWILIO_WHATSAPP_CONTENT_SID", "must be a Content SID: HX and 32 hex digits"));
    }
    Ok(Some(WhatsappSender { from, content_sid }))
}

/// The CORS origins: each `scheme://host[:port]` as a browser sends it in `Origin`.
fn origins<F: Fn(&str) -> Option<String>>(env: &Env<'_, F>) -> Result<Vec<String>, ConfigError> {
    let list = env.text("OTP_ALLOWED_ORIGINS").unwrap_or_else(|| DEFAULT_ORIGIN.into());
    let mut origins = Vec::new();
    for item in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let origin =
            normalise_origin(item).map_err(|reason| invalid("OTP_ALLOWED_ORIGINS", format!("{item:?}: {reason}")))?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    if origins.is_empty() {
        return Err(invalid("OTP_ALLOWED_ORIGINS", "name at least one origin"));
    }
    Ok(origins)
}

/// An origin as browsers serialise it: lower-case scheme and host, no default port, no
/// path. A trailing `/` is tolerated; a path, query, user info or `*` is refused.
pub fn normalise_origin(raw: &str) -> Result<String, &'static str> {
    let raw = raw.trim();
    if raw.contains('*') {
        return Err("list origins; `*` is not allowed");
    }
    let (scheme, rest) = raw.split_once("://").ok_or("must be scheme://host[:port]")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => "443",
        "http" => "80",
        _ => return Err("the scheme must be http or https"),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
        return Err("must be scheme://host[:port], without a path");
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal's colons are inside brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c)) {
        return Err("the host is not valid");
    }
    let host = host.to_ascii_lowercase();
    match port {
        None => Ok(format!("{scheme}://{host}")),
        Some(port) => {
            let number: u16 = port.parse().map_err(|_| "the port is not valid")?;
            if port == default_port || number.to_string() == default_port {
                Ok(format!("{scheme}://{host}"))
            } else {
                Ok(format!("{scheme}://{host}:{number}"))
            }
        }
    }
}

/// `CC:N` pairs; `N = 0` lifts the cap for that country, as 0 turns the default off.
fn country_overrides(list: &str) -> Result<BTreeMap<String, Option<u32>>, String> {
    let mut overrides = BTreeMap::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (country, cap) = item.split_once(':').ok_or_else(|| format!("{item:?} is not CC:N"))?;
        let country =
            crate::domain::phone::parse_region(country).ok_or_else(|| format!("unknown country {country:?}"))?;
        let cap: u32 = cap.trim().parse().map_err(|_| format!("{item:?}: N must be a whole number"))?;
        overrides.insert(country, (cap > 0).then_some(cap));
    }
    Ok(overrides)
}

/// The largest per-number, per-client or per-range send limit (see `Env::send_limit`).
pub const MAX_SEND_LIMIT: u32 = 10_000;
/// The largest failed-attempt cap: each failure in the window is kept in the number's record.
pub const MAX_FAILURES: u32 = 1_000;
/// The largest daily budget or country cap.
pub const MAX_CAP: u32 = 100_000_000;

fn invalid(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError { variable, reason: reason.into() }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    /// A set, non-blank value.
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn number(&self, name: &'static str, default: u64, min: u64) -> Result<u64, ConfigError> {
        let Some(raw) = self.text(name) else { return Ok(default) };
        let value: u64 = raw.parse().map_err(|_| invalid(name, "must be a whole number"))?;
        if value < min {
            return Err(invalid(name, format!("must be at least {min}")));
        }
        Ok(value)
    }

    fn seconds(&self, name: &'static str, default: u64, min: u64) -> Result<TimeDelta, ConfigError> {
        let value = self.number(name, default, min)?;
        // Ten years is far beyond any sensible duration, and keeps date arithmetic in range.
        if value > 315_360_000 {
            return Err(invalid(name, "is too large"));
        }
        Ok(TimeDelta::seconds(value as i64))
    }

    fn count(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        let value = self.number(name, u64::from(default), 1)?;
        u32::try_from(value).map_err(|_| invalid(name, "is too large"))
    }

    fn capped_count(&self, name: &'static str, default: u32, cap: u32) -> Result<u32, ConfigError> {
        let value = self.count(name, default)?;
        if value > cap {
            return Err(invalid(name, format!("must be at most {cap}")));
        }
        Ok(value)
    }

    /// A send limit. The store keeps one time per send in the window (a sliding log), in
    /// one record per number or client, so the limit bounds that record's size: Firestore
    /// refuses documents over 1 MiB, and this cap keeps a record near 100 KiB.
    fn send_limit(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        self.capped_count(name, default, MAX_SEND_LIMIT)
    }

    /// A send limit that is off by default: unset or 0 is `None`, else as `send_limit`.
    fn optional_send_limit(&self, name: &'static str) -> Result<Option<u32>, ConfigError> {
        if self.number(name, 0, 0)? == 0 {
            return Ok(None);
        }
        self.send_limit(name, 1).map(Some)
    }

    /// A shared cap (a count, not a log): 0 turns it off.
    fn optional_cap(&self, name: &'static str, default: u32) -> Result<Option<u32>, ConfigError> {
        let value = self.number(name, u64::from(default), 0)?;
        if value > u64::from(MAX_CAP) {
            return Err(invalid(name, format!("must be at most {MAX_CAP}")));
        }
        Ok((value > 0).then_some(value as u32))
    }
}

#[cfg(test)]
mod tests;
