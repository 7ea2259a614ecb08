//! Secrets from environment variables (local work), optionally filled with random
//! per-run values (the local run). Names: `OTP_SESSION_SECRET`, `OTP_CODE_PEPPER`,
//! `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`, `TWILIO_FROM` or
//! `TWILIO_MESSAGING_SERVICE_SID`, `OTP_GCP_CREDENTIALS` (service-account JSON) and
//! `OTP_CAPTCHA_SECRET`, `OTP_TEST_NUMBERS` and `OTP_TOKEN_SIGNING_KEYS` (see `secrets::ALL`).

use std::sync::Arc;

use async_trait::async_trait;
use rand::RngCore;
use secrecy::SecretString;

use super::{CODE_PEPPER, PROVIDERS, SESSION_SECRET, TEST_NUMBERS, TOKEN_SIGNING_KEYS, parse_token_keys, secret_value};
use crate::domain::token::TokenKeys;
use crate::ports::{ProviderSecrets, SecretError, SecretSource, Secrets};

/// Reads the service's secrets and the adapters' ([`PROVIDERS`]) from the environment.
#[derive(Clone)]
pub struct EnvSecrets {
    session_secret: Option<String>,
    code_pepper: Option<String>,
    test_numbers: Option<String>,
    token_signing_keys: Option<String>,
    providers: ProviderSecrets,
}

impl std::fmt::Debug for EnvSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvSecrets(<redacted>)")
    }
}

impl EnvSecrets {
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).as_deref().and_then(secret_value);
        let mut providers = ProviderSecrets::default();
        for name in PROVIDERS {
            if let Some(value) = get(name.env) {
                providers.insert(name, SecretString::from(value));
            }
        }
        Self {
            session_secret: get(SESSION_SECRET.env),
            code_pepper: get(CODE_PEPPER.env),
            test_numbers: get(TEST_NUMBERS.env),
            token_signing_keys: get(TOKEN_SIGNING_KEYS.env),
            providers,
        }
    }

    /// Fills each missing service secret with a random value (the signing keys with one
    /// new P-256 key), and returns the names of those it filled (the local run prints them).
    pub fn fill_missing_with_random(&mut self) -> Vec<&'static str> {
        let mut filled = Vec::new();
        for (name, slot) in [(SESSION_SECRET.env, &mut self.session_secret), (CODE_PEPPER.env, &mut self.code_pepper)] {
            if slot.is_none() {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                *slot = Some(hex::encode(bytes));
                filled.push(name);
            }
        }
        if self.token_signing_keys.is_none() {
            self.token_signing_keys = Some(TokenKeys::generate_pem());
            filled.push(TOKEN_SIGNING_KEYS.env);
        }
        filled
    }
}

#[async_trait]
impl SecretSource for EnvSecrets {
    async fn load(&self) -> Result<Arc<Secrets>, SecretError> {
        let missing = |name: &str| SecretError::Missing(name.to_owned());
        Ok(Arc::new(Secrets {
            session_secret: SecretString::from(self.session_secret.clone().ok_or_else(|| missing(SESSION_SECRET.env))?),
            code_pepper: SecretString::from(self.code_pepper.clone().ok_or_else(|| missing(CODE_PEPPER.env))?),
            test_numbers: self.test_numbers.clone().map(SecretString::from),
            token_keys: parse_token_keys(self.token_signing_keys.as_deref())?,
            providers: self.providers.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::twilio::{TwilioSecrets, TwilioSenderId};
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn missing_secrets_are_named_and_random_fill_works() {
        let mut env = EnvSecrets::from_lookup(|_| None);
        match env.load().await {
            Err(SecretError::Missing(name)) => assert_eq!(name, "OTP_SESSION_SECRET"),
            other => panic!("expected a missing secret, got {other:?}"),
        }
        assert_eq!(
            env.fill_missing_with_random(),
            vec!["OTP_SESSION_SECRET", "OTP_CODE_PEPPER", "OTP_TOKEN_SIGNING_KEYS"]
        );
        let a = env.load().await.unwrap();
        let kids = a.token_keys.as_ref().expect("a key for the run").kids().join(",");
        let again = env.load().await.unwrap();
        assert_eq!(
            again.token_keys.clone().expect("the same key").kids().join(","),
            kids,
            "one key per run, not per load"
        );
        assert_ne!(a.session_secret.expose_secret(), a.code_pepper.expose_secret());
        assert_eq!(a.code_pepper.expose_secret().len(), 64);
    }

    #[tokio::test]
    async fn given_values_are_kept_trimmed() {
        let mut env = EnvSecrets::from_lookup(|name| match name {
            "OTP_CODE_PEPPER" => Some(" pepper\n".into()), // trimmed, as SSM's values are
            "TWILIO_ACCOUNT_SID" => Some("AC123".into()),
            "TWILIO_AUTH_TOKEN" => Some("tok".into()),
            "TWILIO_FROM" => Some("+15005550006".into()),
            _ => None,
        });
        assert_eq!(env.fill_missing_with_random(), vec!["OTP_SESSION_SECRET", "OTP_TOKEN_SIGNING_KEYS"]);
        let s = env.load().await.unwrap();
        assert_eq!(s.code_pepper.expose_secret(), "pepper");
        let twilio = TwilioSecrets::from_providers(&s.providers).expect("the three Twilio values");
        assert_eq!(twilio.sender, TwilioSenderId::From("+15005550006".into()));
        assert_eq!(s.providers.get(super::super::TWILIO_AUTH_TOKEN).map(|t| t.expose_secret()), Some("tok"));
        assert!(!s.providers.contains(super::super::CAPTCHA_SECRET), "only what is given");
    }
}
