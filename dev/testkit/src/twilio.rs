//! The real Twilio sender against the fake Twilio (`dev/fake-twilio`) over HTTP: what
//! [`crate::Builder::twilio`] starts the app with.

use std::time::Duration;

use otp_core::adapters::twilio::RetryPolicy;
use otp_core::secrets::env::EnvSecrets;
use otp_core::secrets::{TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN};

use crate::secrets::{ACCOUNT_SID, secrets_with};

/// How a test wants its Twilio sender.
pub struct TwilioSetup {
    /// The auth token the service holds (the fake accepts only [`crate::AUTH_TOKEN`]).
    pub auth_token: &'static str,
    /// Longest single call.
    pub attempt_timeout: Duration,
    pub retry: RetryPolicy,
}

impl Default for TwilioSetup {
    fn default() -> Self {
        Self {
            auth_token: crate::AUTH_TOKEN,
            attempt_timeout: Duration::from_secs(2),
            // Short pauses keep the tests fast; the bounds are what they check.
            retry: RetryPolicy {
                max_attempts: 3,
                base_delay: Duration::from_millis(20),
                max_delay: Duration::from_millis(80),
                budget: Duration::from_secs(5),
            },
        }
    }
}

/// The settings of an app on Twilio, before the test's own: Twilio's magic test numbers
/// (+1 500 555 ...) are not mobile numbers, and tests send to one number again at once.
pub const SETTINGS: &[(&str, &str)] =
    &[("OTP_RESEND_COOLDOWN_SECONDS", "0"), ("OTP_NUMBER_TYPES", "mobile,fixed_line_or_mobile,voip,personal,pager")];

/// The test secrets with Twilio credentials: [`ACCOUNT_SID`], `auth_token`, and the sender
/// given as `sender_variable` (`TWILIO_FROM` or `TWILIO_MESSAGING_SERVICE_SID`) = `sender`.
pub fn secrets(auth_token: &str, sender_variable: &str, sender: &str) -> EnvSecrets {
    secrets_with(&[
        (TWILIO_ACCOUNT_SID.env, ACCOUNT_SID),
        (TWILIO_AUTH_TOKEN.env, auth_token),
        (sender_variable, sender),
    ])
}

/// The fake's status callbacks once `count` of them have been sent and answered (each
/// goes out in the background), failing after 10 s.
pub async fn wait_for_callbacks(fake: &fake_twilio::FakeTwilio, count: usize) -> Vec<fake_twilio::Callback> {
    let started = std::time::Instant::now();
    loop {
        let callbacks = fake.callbacks();
        if callbacks.len() >= count {
            return callbacks;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "only {} of {count} callbacks came: {callbacks:#?}",
            callbacks.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
