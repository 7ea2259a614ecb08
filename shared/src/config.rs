//! Settings from environment variables (API.md, "Settings"), parsed and checked once at
//! start-up into typed values.

use chrono::TimeDelta;

use crate::domain::{CodeLength, CountryAllowList, SendPolicy, WindowLimit};

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub code_length: CodeLength,
    pub policy: SendPolicy,
    /// How many trailing digits a number's range leaves out (`OTP_RANGE_DIGITS`, 1 to 6):
    /// 3 makes blocks of 1000 numbers. Used only with `policy.per_range` on.
    pub range_digits: u8,
    pub token_ttl: TimeDelta,
    pub token_issuer: String,
    pub allowed_countries: CountryAllowList,
    pub allowed_origins: Vec<String>,
    /// Adds the WebOTP line `@domain #code` to every SMS (`OTP_WEBOTP_DOMAIN`).
    pub webotp_domain: Option<String>,
    pub store: StoreKind,
    /// Where the Firestore store keeps its records (read whatever `store` is).
    pub firestore: FirestoreSettings,
    pub sms: SmsKind,
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

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
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
        };
        let range_digits = u8::try_from(env.number("OTP_RANGE_DIGITS", 3, 1)?)
            .ok()
            .filter(|d| *d <= 6)
            .ok_or_else(|| invalid("OTP_RANGE_DIGITS", "must be 1 to 6"))?;
        let allowed_countries = CountryAllowList::parse(&env.text("OTP_ALLOWED_COUNTRIES").unwrap_or_default())
            .map_err(|reason| invalid("OTP_ALLOWED_COUNTRIES", reason))?;
        let allowed_origins = env
            .text("OTP_ALLOWED_ORIGINS")
            .unwrap_or_else(|| "http://localhost:5173".into())
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect::<Vec<_>>();
        if allowed_origins.iter().any(|o| o == "*") {
            return Err(invalid("OTP_ALLOWED_ORIGINS", "list origins; `*` is not allowed"));
        }
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
        Ok(Self {
            code_length,
            policy,
            range_digits,
            token_ttl: env.seconds("OTP_TOKEN_TTL_SECONDS", 3600, 1)?,
            token_issuer: env.text("OTP_TOKEN_ISSUER").unwrap_or_else(|| "otp-service".into()),
            allowed_countries,
            allowed_origins,
            webotp_domain: env.text("OTP_WEBOTP_DOMAIN"),
            store,
            firestore,
            sms,
        })
    }
}

/// The largest per-number, per-client or per-range send limit (see `Env::send_limit`).
pub const MAX_SEND_LIMIT: u32 = 10_000;

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

    /// A send limit. The store keeps one time per send in the window (a sliding log), in
    /// one record per number or client, so the limit bounds that record's size: Firestore
    /// refuses documents over 1 MiB, and this cap keeps a record near 100 KiB.
    fn send_limit(&self, name: &'static str, default: u32) -> Result<u32, ConfigError> {
        let value = self.count(name, default)?;
        if value > MAX_SEND_LIMIT {
            return Err(invalid(name, format!("must be at most {MAX_SEND_LIMIT}")));
        }
        Ok(value)
    }

    /// A send limit that is off by default: unset or 0 is `None`, else as `send_limit`.
    fn optional_send_limit(&self, name: &'static str) -> Result<Option<u32>, ConfigError> {
        if self.number(name, 0, 0)? == 0 {
            return Ok(None);
        }
        self.send_limit(name, 1).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = Settings::default();
        assert_eq!(s.code_length.get(), 6);
        assert_eq!(s.policy.code_ttl, TimeDelta::seconds(600));
        assert_eq!(s.policy.max_attempts, 5);
        assert_eq!(s.policy.resend_cooldown, TimeDelta::seconds(60));
        assert_eq!(s.policy.per_number, WindowLimit { max: 5, window: TimeDelta::seconds(3600) });
        assert_eq!(s.policy.per_client, WindowLimit { max: 5, window: TimeDelta::seconds(900) });
        assert_eq!(s.policy.per_range, None, "the per-range limit is off by default");
        assert_eq!(s.range_digits, 3);
        assert_eq!(s.token_ttl, TimeDelta::seconds(3600));
        assert_eq!(s.token_issuer, "otp-service");
        assert_eq!(s.allowed_countries, CountryAllowList::default());
        assert_eq!(s.allowed_origins, vec!["http://localhost:5173".to_string()]);
        assert_eq!((s.store, s.sms), (StoreKind::Memory, SmsKind::Outbox));
        assert_eq!(
            s.firestore,
            FirestoreSettings {
                project_id: None,
                database_id: "(default)".into(),
                collection_prefix: "otp_".into(),
                emulator_host: None,
            }
        );
    }

    #[test]
    fn every_variable_is_read() {
        let s = with(&[
            ("OTP_CODE_LENGTH", "8"),
            ("OTP_CODE_TTL_SECONDS", "120"),
            ("OTP_MAX_ATTEMPTS", "3"),
            ("OTP_RESEND_COOLDOWN_SECONDS", "0"),
            ("OTP_SENDS_PER_NUMBER", "2"),
            ("OTP_SENDS_PER_NUMBER_WINDOW_SECONDS", "60"),
            ("OTP_SENDS_PER_IP", "9"),
            ("OTP_SENDS_PER_IP_WINDOW_SECONDS", "30"),
            ("OTP_SENDS_PER_RANGE", "40"),
            ("OTP_SENDS_PER_RANGE_WINDOW_SECONDS", "7200"),
            ("OTP_RANGE_DIGITS", "4"),
            ("OTP_TOKEN_TTL_SECONDS", "90"),
            ("OTP_TOKEN_ISSUER", "acme"),
            ("OTP_ALLOWED_COUNTRIES", "us,gb"),
            ("OTP_ALLOWED_ORIGINS", "https://a.example, https://b.example/"),
            ("OTP_WEBOTP_DOMAIN", "a.example"),
            ("OTP_STORE", "firestore"),
            ("OTP_FIRESTORE_PROJECT_ID", "acme-prod"),
            ("OTP_FIRESTORE_DATABASE_ID", "otp"),
            ("OTP_FIRESTORE_COLLECTION_PREFIX", "staging_"),
            ("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8080"),
            ("OTP_SMS", "twilio"),
        ])
        .unwrap();
        assert_eq!(s.code_length.get(), 8);
        assert_eq!(s.policy.code_ttl, TimeDelta::seconds(120));
        assert_eq!(s.policy.max_attempts, 3);
        assert_eq!(s.policy.resend_cooldown, TimeDelta::zero());
        assert_eq!(s.policy.per_number, WindowLimit { max: 2, window: TimeDelta::seconds(60) });
        assert_eq!(s.policy.per_client, WindowLimit { max: 9, window: TimeDelta::seconds(30) });
        assert_eq!(s.policy.per_range, Some(WindowLimit { max: 40, window: TimeDelta::seconds(7200) }));
        assert_eq!(s.range_digits, 4);
        assert_eq!(s.token_ttl, TimeDelta::seconds(90));
        assert_eq!(s.token_issuer, "acme");
        assert_eq!(s.allowed_countries, CountryAllowList::parse("GB,US").unwrap());
        assert_eq!(s.allowed_origins, vec!["https://a.example", "https://b.example"]);
        assert_eq!(s.webotp_domain.as_deref(), Some("a.example"));
        assert_eq!((s.store, s.sms), (StoreKind::Firestore, SmsKind::Twilio));
        assert_eq!(
            s.firestore,
            FirestoreSettings {
                project_id: Some("acme-prod".into()),
                database_id: "otp".into(),
                collection_prefix: "staging_".into(),
                emulator_host: Some("127.0.0.1:8080".into()),
            }
        );
    }

    #[test]
    fn the_per_range_limit_is_off_at_zero_and_capped_like_the_others() {
        assert_eq!(with(&[("OTP_SENDS_PER_RANGE", "0")]).unwrap().policy.per_range, None);
        assert_eq!(with(&[("OTP_SENDS_PER_RANGE", " ")]).unwrap().policy.per_range, None);
        assert_eq!(
            with(&[("OTP_SENDS_PER_RANGE", "1")]).unwrap().policy.per_range,
            Some(WindowLimit { max: 1, window: TimeDelta::seconds(3600) })
        );
        assert_eq!(
            with(&[("OTP_SENDS_PER_RANGE", &MAX_SEND_LIMIT.to_string())]).unwrap().policy.per_range,
            Some(WindowLimit { max: MAX_SEND_LIMIT, window: TimeDelta::seconds(3600) })
        );
        assert_eq!(with(&[("OTP_RANGE_DIGITS", "1")]).unwrap().range_digits, 1);
        assert_eq!(with(&[("OTP_RANGE_DIGITS", "6")]).unwrap().range_digits, 6);
    }

    #[test]
    fn firestore_needs_a_project_id() {
        let err = with(&[("OTP_STORE", "firestore")]).unwrap_err();
        assert_eq!(err.variable, "OTP_FIRESTORE_PROJECT_ID");
        assert!(with(&[("OTP_STORE", "memory")]).is_ok(), "the memory store needs none");
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("OTP_CODE_LENGTH", "3"),
            ("OTP_CODE_LENGTH", "11"),
            ("OTP_CODE_LENGTH", "six"),
            ("OTP_MAX_ATTEMPTS", "0"),
            ("OTP_CODE_TTL_SECONDS", "-5"),
            ("OTP_CODE_TTL_SECONDS", "99999999999"),
            ("OTP_SENDS_PER_IP", "0"),
            ("OTP_SENDS_PER_IP", "10001"),
            ("OTP_SENDS_PER_NUMBER", "1000000"),
            ("OTP_SENDS_PER_RANGE", "10001"),
            ("OTP_SENDS_PER_RANGE", "-1"),
            ("OTP_SENDS_PER_RANGE", "many"),
            ("OTP_SENDS_PER_RANGE_WINDOW_SECONDS", "0"),
            ("OTP_RANGE_DIGITS", "0"),
            ("OTP_RANGE_DIGITS", "7"),
            ("OTP_RANGE_DIGITS", "300"),
            ("OTP_ALLOWED_COUNTRIES", "US,Atlantis"),
            ("OTP_ALLOWED_ORIGINS", "*"),
            ("OTP_STORE", "redis"),
            ("OTP_FIRESTORE_COLLECTION_PREFIX", "a/b"),
            ("OTP_SMS", "carrier-pigeon"),
        ] {
            let err = with(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}");
        }
    }
}
