//! Secrets from AWS SSM Parameter Store: every parameter under one prefix, read with one
//! `GetParameters` call (decrypted). Environment variables of API.md's names override
//! single values for local work. The `SecretCache` decides when to read again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_ssm::error::DisplayErrorContext;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::OnceCell;

use super::{
    ALL, CODE_PEPPER, PROVIDERS, Required, SESSION_SECRET, SecretName, TEST_NUMBERS, TOKEN_SIGNING_KEYS,
    TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM, TWILIO_MESSAGING_SERVICE_SID, has_twilio, parse_token_keys,
    secret_value,
};
use crate::ports::{ProviderSecrets, SecretError, SecretSource, Secrets};

/// Reads the service's secrets from SSM under `prefix` (`/otp-service/prod`).
pub struct SsmSecrets {
    client: OnceCell<aws_sdk_ssm::Client>,
    prefix: String,
    /// Values the environment gives, by variable name.
    overrides: HashMap<&'static str, SecretString>,
    /// What the function needs: it asks SSM for exactly the secrets its role may read.
    required: Required,
}

impl std::fmt::Debug for SsmSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmSecrets").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl SsmSecrets {
    /// With the SDK's default configuration (region and credentials from the Lambda
    /// environment), built at the first load so that building it overlaps other start-up work.
    pub fn from_env(prefix: &str, required: Required) -> Self {
        Self::build(OnceCell::new(), prefix, required, |name| std::env::var(name).ok())
    }

    /// With a ready client (tests, or a caller with its own configuration); `lookup`
    /// gives the overriding environment.
    pub fn with_client(
        client: aws_sdk_ssm::Client,
        prefix: &str,
        required: Required,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        Self::build(OnceCell::new_with(Some(client)), prefix, required, lookup)
    }

    fn build(
        client: OnceCell<aws_sdk_ssm::Client>,
        prefix: &str,
        required: Required,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let overrides = ALL
            .iter()
            .filter_map(|name| Some((name.env, SecretString::from(secret_value(&lookup(name.env)?)?))))
            .collect();
        Self { client, prefix: prefix.trim_end_matches('/').to_owned(), overrides, required }
    }

    /// The full parameter name of `name`.
    pub fn parameter(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    async fn client(&self) -> &aws_sdk_ssm::Client {
        self.client
            .get_or_init(|| async {
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .connect_timeout(Duration::from_secs(2))
                            .operation_timeout(Duration::from_secs(6))
                            .build(),
                    )
                    .load()
                    .await;
                aws_sdk_ssm::Client::new(&config)
            })
            .await
    }

    /// The names SSM must be asked for: those the function reads that no environment
    /// variable overrides. The sender is one secret in two forms, so a sender in the
    /// environment replaces both.
    fn wanted(&self) -> Vec<String> {
        let sender_overridden = self.overrides.contains_key(TWILIO_FROM.env)
            || self.overrides.contains_key(TWILIO_MESSAGING_SERVICE_SID.env);
        ALL.iter()
            .filter(|name| self.required.reads(**name))
            .filter(|name| !self.overrides.contains_key(name.env))
            .filter(|name| !(sender_overridden && (**name == TWILIO_FROM || **name == TWILIO_MESSAGING_SERVICE_SID)))
            .map(|name| self.parameter(name.ssm))
            .collect()
    }

    async fn fetch(&self, names: Vec<String>) -> Result<HashMap<String, SecretString>, SecretError> {
        if names.is_empty() {
            return Ok(HashMap::new());
        }
        let output =
            self.client().await.get_parameters().set_names(Some(names)).with_decryption(true).send().await.map_err(
                |error| SecretError::Unreachable(format!("SSM GetParameters: {}", DisplayErrorContext(error))),
            )?;
        let mut values = HashMap::new();
        for parameter in output.parameters() {
            if let (Some(name), Some(value)) = (parameter.name(), parameter.value().and_then(secret_value)) {
                values.insert(name.to_owned(), SecretString::from(value));
            }
        }
        Ok(values)
    }
}

#[async_trait]
impl SecretSource for SsmSecrets {
    async fn load(&self) -> Result<Arc<Secrets>, SecretError> {
        let mut fetched = self.fetch(self.wanted()).await?;
        let mut take = |name: SecretName| -> Option<SecretString> {
            self.overrides.get(name.env).cloned().or_else(|| fetched.remove(&self.parameter(name.ssm)))
        };
        let missing =
            |name: SecretName| SecretError::Missing(format!("{} (or {})", self.parameter(name.ssm), name.env));

        let session_secret = take(SESSION_SECRET).ok_or_else(|| missing(SESSION_SECRET))?;
        let code_pepper = take(CODE_PEPPER).ok_or_else(|| missing(CODE_PEPPER))?;
        let test_numbers = take(TEST_NUMBERS);
        let token_keys = parse_token_keys(take(TOKEN_SIGNING_KEYS).as_ref().map(|pem| pem.expose_secret()))?;
        let mut providers = ProviderSecrets::default();
        for name in PROVIDERS {
            if let Some(value) = take(name) {
                providers.insert(name, value);
            }
        }
        if self.required.twilio && !has_twilio(&providers) {
            let first_missing = [TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN].into_iter().find(|n| !providers.contains(*n));
            return Err(match first_missing {
                Some(name) => missing(name),
                None => SecretError::Missing(format!(
                    "{} or {} (or {} / {})",
                    self.parameter(TWILIO_FROM.ssm),
                    self.parameter(TWILIO_MESSAGING_SERVICE_SID.ssm),
                    TWILIO_FROM.env,
                    TWILIO_MESSAGING_SERVICE_SID.env
                )),
            });
        }
        Ok(Arc::new(Secrets { session_secret, code_pepper, test_numbers, token_keys, providers }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline(lookup: impl Fn(&str) -> Option<String>) -> SsmSecrets {
        offline_for(Required { twilio: true, captcha: true, ..Required::default() }, lookup)
    }

    fn offline_for(required: Required, lookup: impl Fn(&str) -> Option<String>) -> SsmSecrets {
        // Never used to call: these tests only look at which names would be asked for.
        let config = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .build();
        SsmSecrets::with_client(aws_sdk_ssm::Client::from_conf(config), "/otp/test/", required, lookup)
    }

    #[test]
    fn asks_ssm_only_for_what_the_environment_does_not_give() {
        let all = offline(|_| None).wanted();
        assert_eq!(all.len(), 9, "every secret but the signing keys: {all:?}");
        assert!(all.contains(&"/otp/test/test-numbers".to_owned()), "asked for with the others, in the one call");
        assert!(all.contains(&"/otp/test/session-secret".to_owned()));
        assert!(all.contains(&"/otp/test/twilio-messaging-service-sid".to_owned()));

        let some = offline(|name| match name {
            "OTP_CODE_PEPPER" => Some("pepper".into()),
            "TWILIO_FROM" => Some("+15005550006".into()),
            "OTP_SESSION_SECRET" => Some("   ".into()), // blank counts as unset
            _ => None,
        })
        .wanted();
        assert_eq!(
            some,
            [
                "session-secret",
                "twilio-account-sid",
                "twilio-auth-token",
                "gcp-credentials",
                "captcha-secret",
                "test-numbers"
            ]
            .map(|n| format!("/otp/test/{n}"))
        );
    }

    #[test]
    fn verify_otp_asks_for_the_signing_keys_and_never_for_the_twilio_credentials() {
        let wanted = offline_for(Required { token_keys: true, ..Required::default() }, |_| None).wanted();
        assert_eq!(
            wanted,
            ["session-secret", "code-pepper", "gcp-credentials", "test-numbers", "token-signing-keys"]
                .map(|n| format!("/otp/test/{n}"))
        );
    }
}
