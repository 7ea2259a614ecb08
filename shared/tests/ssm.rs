//! The SSM secret source with the real `aws-sdk-ssm` client against moto's server
//! (scripts/test starts it and sets `OTP_TEST_SSM_ENDPOINT`): secrets present, missing,
//! rotated, and the secret store unreachable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use otp_core::adapters::twilio::{TwilioSecrets, TwilioSenderId};
use otp_core::ports::{SecretError, SecretSource, Secrets};
use otp_core::secrets::ssm::SsmSecrets;
use otp_core::secrets::{self, Required, SecretCache};
use otp_testkit::moto::{self, CallCounter, client, prefix, put, put_all};
use otp_testkit::{
    ACCOUNT_SID, AUTH_TOKEN, FROM, GCP_CREDENTIALS, PEPPER, SESSION_SECRET, TOKEN_SIGNING_KEY, TestApp, capture_logs,
};
use secrecy::ExposeSecret;

/// The Firestore key the secrets hold, as its adapter reads it.
fn gcp_credentials(secrets: &Secrets) -> Option<String> {
    secrets.providers.get(secrets::GCP_CREDENTIALS).map(|c| c.expose_secret().to_owned())
}

/// Twilio's auth token the secrets hold, as its adapter reads it.
fn auth_token(secrets: &Secrets) -> Option<String> {
    TwilioSecrets::from_providers(&secrets.providers).map(|t| t.auth_token.expose_secret().to_owned())
}

/// What the local run and the test apps need: both functions' secrets.
fn both() -> Required {
    Required { twilio: true, token_keys: true, ..Required::default() }
}

/// Both functions' secrets, with SMS that need no Twilio credentials.
fn no_twilio() -> Required {
    Required { token_keys: true, ..Required::default() }
}

#[tokio::test]
async fn present_secrets_are_read_with_one_call() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("present");
    put_all(&client(&endpoint, None), &prefix).await;
    let counter = CallCounter::default();
    let source = SsmSecrets::with_client(client(&endpoint, Some(counter.clone())), &prefix, both(), |_| None);

    let secrets = source.load().await.expect("all secrets are there");
    assert_eq!(counter.get(), 1, "one GetParameters call for every secret");
    assert_eq!(secrets.session_secret.expose_secret(), SESSION_SECRET);
    assert_eq!(secrets.code_pepper.expose_secret(), PEPPER);
    let twilio = TwilioSecrets::from_providers(&secrets.providers).expect("Twilio credentials");
    assert_eq!(twilio.account_sid.expose_secret(), ACCOUNT_SID);
    assert_eq!(twilio.auth_token.expose_secret(), AUTH_TOKEN);
    assert_eq!(twilio.sender, TwilioSenderId::From(FROM.into()));
    assert_eq!(gcp_credentials(&secrets).as_deref(), Some(GCP_CREDENTIALS));
}

#[tokio::test]
async fn environment_variables_override_single_values() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("overrides");
    let admin = client(&endpoint, None);
    for (name, value) in [
        ("session-secret", SESSION_SECRET),
        ("code-pepper", PEPPER),
        ("twilio-account-sid", ACCOUNT_SID),
        ("twilio-auth-token", AUTH_TOKEN),
        ("twilio-messaging-service-sid", "MG0123456789abcdef0123456789abcdef"),
    ] {
        put(&admin, &prefix, name, value).await;
    }
    let source = SsmSecrets::with_client(client(&endpoint, None), &prefix, both(), |name| match name {
        "OTP_CODE_PEPPER" => Some("pepper-from-env".into()),
        "TWILIO_AUTH_TOKEN" => Some("token-from-env".into()),
        _ => None,
    });
    let secrets = source.load().await.expect("secrets load");
    assert_eq!(secrets.code_pepper.expose_secret(), "pepper-from-env");
    assert_eq!(secrets.session_secret.expose_secret(), SESSION_SECRET);
    let twilio = TwilioSecrets::from_providers(&secrets.providers).expect("Twilio credentials");
    assert_eq!(twilio.auth_token.expose_secret(), "token-from-env");
    assert_eq!(twilio.sender, TwilioSenderId::MessagingService("MG0123456789abcdef0123456789abcdef".into()));
    assert!(gcp_credentials(&secrets).is_none(), "the GCP credentials are optional");
}

#[tokio::test]
async fn a_missing_secret_is_named() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("missing");
    let admin = client(&endpoint, None);
    put(&admin, &prefix, "session-secret", SESSION_SECRET).await;
    let source = SsmSecrets::with_client(client(&endpoint, None), &prefix, no_twilio(), |_| None);
    match source.load().await {
        Err(SecretError::Missing(name)) => assert_eq!(name, format!("{prefix}/code-pepper (or OTP_CODE_PEPPER)")),
        other => panic!("expected the pepper to be missing, got {other:?}"),
    }

    // Without Twilio credentials: fine for the outbox, a named gap when Twilio sends.
    put(&admin, &prefix, "code-pepper", PEPPER).await;
    assert!(TwilioSecrets::from_providers(&source.load().await.expect("no Twilio needed").providers).is_none());
    let for_twilio = SsmSecrets::with_client(client(&endpoint, None), &prefix, both(), |_| None);
    match for_twilio.load().await {
        Err(SecretError::Missing(name)) => assert!(name.starts_with(&format!("{prefix}/twilio-account-sid")), "{name}"),
        other => panic!("expected the Twilio SID to be missing, got {other:?}"),
    }
}

/// The service with its secrets from `source`, whether they load or not.
async fn app_over(source: SsmSecrets) -> TestApp {
    TestApp::builder().secrets(source).start_unchecked().await
}

#[tokio::test]
async fn a_missing_secret_is_one_clear_log_line_then_503_until_it_is_there() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("missing-api");
    let admin = client(&endpoint, None);
    put(&admin, &prefix, "session-secret", SESSION_SECRET).await;
    put(&admin, &prefix, "token-signing-keys", TOKEN_SIGNING_KEY).await;
    let (logs, _guard) = capture_logs("info");
    let app = app_over(SsmSecrets::with_client(client(&endpoint, None), &prefix, no_twilio(), |_| None)).await;

    for _ in 0..3 {
        let reply = app.send("+16505550100").await;
        assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"), "{}", reply.body);
        let reply = app.verify("+16505550100", "123456").await;
        assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"), "{}", reply.body);
    }
    let text = logs.text();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("\"level\":\"ERROR\"")).collect();
    assert_eq!(errors.len(), 1, "one clear error, not one per request:\n{text}");
    assert!(errors[0].contains(&format!("{prefix}/code-pepper")), "the error names the parameter: {}", errors[0]);

    // Once the parameter exists the service recovers by itself: no restart, no redeploy.
    put(&admin, &prefix, "code-pepper", PEPPER).await;
    tokio::time::sleep(Duration::from_millis(5_100)).await; // SecretCache retries loading every 5 s
    let reply = app.send("+16505550100").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
}

#[tokio::test]
async fn an_unreachable_secret_store_is_503_not_a_crash() {
    // Needs no moto: nothing listens on the discard port.
    let source =
        SsmSecrets::with_client(client("http://127.0.0.1:9", None), "/otp-test/unreachable", no_twilio(), |_| None);
    match source.load().await {
        Err(SecretError::Unreachable(reason)) => assert!(reason.contains("GetParameters"), "{reason}"),
        other => panic!("expected an unreachable store, got {other:?}"),
    }
    let (logs, _guard) = capture_logs("info");
    let reply = app_over(source).await.send("+16505550100").await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert!(logs.text().contains("secrets could not be loaded"), "{}", logs.text());
}

#[tokio::test]
async fn a_rotation_is_picked_up_after_the_ttl_and_not_before() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("rotation");
    let admin = client(&endpoint, None);
    put_all(&admin, &prefix).await;
    let counter = CallCounter::default();
    let source = SsmSecrets::with_client(client(&endpoint, Some(counter.clone())), &prefix, both(), |_| None);
    // The cache's clock is the test's: the calls to moto take what they take on a busy
    // machine, and the TTL passes when the test says so.
    let ttl = Duration::from_secs(300);
    let base = Instant::now();
    let stepped = Arc::new(AtomicU64::new(0));
    let now = stepped.clone();
    let cache = SecretCache::new(Arc::new(source), Required::default(), ttl)
        .with_clock(Arc::new(move || base + Duration::from_millis(now.load(Ordering::SeqCst))));
    cache.prime().await.expect("secrets load");

    put(&admin, &prefix, "twilio-auth-token", "rotated-token").await;
    for _ in 0..5 {
        let secrets = cache.current().await.expect("cached secrets");
        let token = auth_token(&secrets);
        assert_eq!(token.as_deref(), Some(AUTH_TOKEN), "within the TTL the cached value serves");
    }
    assert_eq!(counter.get(), 1, "SSM is read once, not per request");
    stepped.store(ttl.as_millis() as u64 - 1, Ordering::SeqCst);
    let secrets = cache.current().await.expect("cached secrets");
    let token = auth_token(&secrets);
    assert_eq!((token.as_deref(), counter.get()), (Some(AUTH_TOKEN), 1), "a millisecond before the TTL: cached");

    stepped.store(ttl.as_millis() as u64, Ordering::SeqCst);
    let secrets = cache.current().await.expect("refreshed secrets");
    let token = auth_token(&secrets);
    assert_eq!(token.as_deref(), Some("rotated-token"), "after the TTL the rotated value serves");
    assert_eq!(counter.get(), 2);
}

#[tokio::test]
async fn parts_reading_through_the_cache_cause_no_second_call() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("shared-cache");
    put_all(&client(&endpoint, None), &prefix).await;
    let counter = CallCounter::default();
    let source = SsmSecrets::with_client(client(&endpoint, Some(counter.clone())), &prefix, both(), |_| None);
    let cache = Arc::new(SecretCache::new(Arc::new(source), Required::default(), Duration::from_secs(300)));
    // As wiring::build does it: the store's read of its credentials races the prime.
    let as_source: Arc<dyn SecretSource> = cache.clone();
    let (primed, for_store) = tokio::join!(cache.prime(), as_source.load());
    assert!(primed.is_ok());
    assert_eq!(gcp_credentials(&for_store.expect("the store gets the secrets")).as_deref(), Some(GCP_CREDENTIALS));
    assert_eq!(counter.get(), 1, "one GetParameters for the service and the store together");
}

#[tokio::test]
async fn test_numbers_come_from_ssm_in_the_one_call_and_the_environment_overrides_them() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("test-numbers");
    let admin = client(&endpoint, None);
    put_all(&admin, &prefix).await;
    let source = SsmSecrets::with_client(client(&endpoint, None), &prefix, no_twilio(), |_| None);
    assert!(source.load().await.expect("secrets load").test_numbers.is_none(), "the parameter is optional");

    put(&admin, &prefix, "test-numbers", "+15555550100=424242").await;
    let counter = CallCounter::default();
    let source = SsmSecrets::with_client(client(&endpoint, Some(counter.clone())), &prefix, no_twilio(), |_| None);
    let app = TestApp::builder().secrets(source).start().await;
    let reply = app.send("+15555550100").await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert!(app.outbox().list().is_empty(), "a test number is never texted");
    assert_eq!(app.verify("+15555550100", "424242").await.status, 200, "its code is the one in SSM");
    assert_eq!(counter.get(), 1, "read in the one GetParameters of every secret, then cached");

    // For local work the variable gives the list instead, as for every secret.
    let source = SsmSecrets::with_client(client(&endpoint, None), &prefix, no_twilio(), |name| {
        (name == "OTP_TEST_NUMBERS").then(|| "+15555550199=171717".to_owned())
    });
    let secrets = source.load().await.expect("secrets load");
    let list = secrets.test_numbers.clone().expect("the variable's list");
    assert_eq!(list.expose_secret(), "+15555550199=171717");
}

#[tokio::test]
async fn test_numbers_in_ssm_that_do_not_parse_are_a_clear_start_up_error_then_503() {
    let Some(endpoint) = moto::endpoint() else { return };
    let prefix = prefix("test-numbers-unfit");
    let admin = client(&endpoint, None);
    put_all(&admin, &prefix).await;
    put(&admin, &prefix, "test-numbers", "+15555550100=4242").await; // 4 digits, codes have 6
    let (logs, _guard) = capture_logs("info");
    let app = app_over(SsmSecrets::with_client(client(&endpoint, None), &prefix, no_twilio(), |_| None)).await;
    assert!(app.problems.iter().any(|p| p.contains("test-numbers")), "{:?}", app.problems);
    let reply = app.send("+16505550100").await;
    assert_eq!((reply.status, reply.error_code()), (503, "service_unavailable"), "{}", reply.body);
    assert!(!logs.text().contains("5555550100") && !logs.text().contains("=4242"), "never the list: {}", logs.text());
}
