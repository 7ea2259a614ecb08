//! moto, the local AWS SSM that `scripts/test` starts (`OTP_TEST_SSM_ENDPOINT`), and the
//! real SDK client pointed at it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_ssm::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_ssm::config::{BehaviorVersion, ConfigBag, Credentials, Intercept, Region};
use aws_sdk_ssm::types::ParameterType;

use otp_core::secrets as names;

use crate::secrets::{ACCOUNT_SID, AUTH_TOKEN, FROM, GCP_CREDENTIALS, PEPPER, SESSION_SECRET, TOKEN_SIGNING_KEY};

/// moto's address. Without one the test fails, unless the run opts out with
/// `OTP_SKIP_MOTO=1`: then it is skipped, loudly (`scripts/test` always starts moto).
pub fn endpoint() -> Option<String> {
    if let Some(endpoint) = std::env::var("OTP_TEST_SSM_ENDPOINT").ok().filter(|v| !v.is_empty()) {
        return Some(endpoint);
    }
    assert!(
        std::env::var("OTP_SKIP_MOTO").as_deref() == Ok("1"),
        "OTP_TEST_SSM_ENDPOINT is not set: run scripts/test (it starts moto and sets it), \
         or set OTP_SKIP_MOTO=1 to skip the SSM tests"
    );
    crate::skip_loudly(
        "SSM test without moto (OTP_SKIP_MOTO=1).\n## Run scripts/test (it starts moto), or set \
         OTP_TEST_SSM_ENDPOINT=http://127.0.0.1:PORT to a running `moto_server`.",
    );
    None
}

/// Counts the SDK operations a client runs.
#[derive(Debug, Default, Clone)]
pub struct CallCounter(Arc<AtomicUsize>);

impl CallCounter {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// An SSM client of `endpoint` (moto, or an address where nothing listens), its calls
/// counted by `counter`.
pub fn client(endpoint: &str, counter: Option<CallCounter>) -> aws_sdk_ssm::Client {
    let mut config = aws_sdk_ssm::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint)
        .retry_config(aws_sdk_ssm::config::retry::RetryConfig::standard().with_max_attempts(2))
        .timeout_config(
            aws_sdk_ssm::config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(5))
                .build(),
        );
    if let Some(counter) = counter {
        config = config.interceptor(counter);
    }
    aws_sdk_ssm::Client::from_conf(config.build())
}

/// A prefix no other test uses, so tests share one moto without resetting it.
pub fn prefix(test: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("/otp-test/{test}-{nanos}")
}

/// Stores `value` as the SecureString `prefix/name`.
pub async fn put(admin: &aws_sdk_ssm::Client, prefix: &str, name: &str, value: &str) {
    admin
        .put_parameter()
        .name(format!("{prefix}/{name}"))
        .value(value)
        .r#type(ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {name}: {}", aws_sdk_ssm::error::DisplayErrorContext(e)));
}

/// Stores every test secret under `prefix`, by the names the service reads.
pub async fn put_all(admin: &aws_sdk_ssm::Client, prefix: &str) {
    for (name, value) in [
        (names::SESSION_SECRET, SESSION_SECRET),
        (names::CODE_PEPPER, PEPPER),
        (names::TWILIO_ACCOUNT_SID, ACCOUNT_SID),
        (names::TWILIO_AUTH_TOKEN, AUTH_TOKEN),
        (names::TWILIO_FROM, FROM),
        (names::GCP_CREDENTIALS, GCP_CREDENTIALS),
        (names::TOKEN_SIGNING_KEYS, TOKEN_SIGNING_KEY),
    ] {
        put(admin, prefix, name.ssm, value).await;
    }
}
