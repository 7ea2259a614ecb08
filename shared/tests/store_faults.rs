//! With Firestore unreachable (nothing listening) or silent (a listener that never
//! answers), send and verify answer `503 service_unavailable` with `Retry-After` within a
//! bounded time, through the same handler as Lambda. Needs no emulator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use otp_core::Endpoint;
use otp_core::adapters::firestore::{FirestoreAuth, FirestoreConfig, FirestoreStore};
use otp_core::ports::{OtpStore, StoreError};
use otp_core::secrets::env::EnvSecrets;
use otp_testkit::TestApp;
use otp_testkit::secrets::secrets_with;
use serde_json::json;

const CALL_TIMEOUT: Duration = Duration::from_millis(800);

fn store_at(address: String) -> Arc<FirestoreStore> {
    let config = FirestoreConfig { call_timeout: CALL_TIMEOUT, ..FirestoreConfig::new("demo-faults") };
    Arc::new(FirestoreStore::new(config, FirestoreAuth::Emulator(address)))
}

/// The service on `store`, answering through the same handler as Lambda.
async fn app_on(store: Arc<dyn OtpStore>) -> TestApp {
    TestApp::builder().store(store).start().await
}

/// Both endpoints answer 503 with Retry-After, each within `bound`, and no SMS goes out.
async fn both_endpoints_answer_503(store: Arc<dyn OtpStore>, bound: Duration) {
    let app = app_on(store).await;
    for (endpoint, body) in [
        (Endpoint::SendOtp, json!({ "phone": "+14155550123" })),
        (Endpoint::VerifyOtp, json!({ "phone": "+14155550123", "code": "123456" })),
    ] {
        let started = Instant::now();
        let reply = app.post(endpoint, body, "203.0.113.7").await;
        let took = started.elapsed();
        assert_eq!(reply.status, 503, "{endpoint:?}: {}", reply.body);
        assert_eq!(reply.error_code(), "service_unavailable");
        assert!(reply.header("retry-after").is_some(), "{endpoint:?}: no Retry-After");
        assert!(took < bound, "{endpoint:?} took {took:?}, more than {bound:?}");
    }
    assert!(app.outbox().list().is_empty(), "no SMS without a recorded send");
}

#[tokio::test]
async fn nothing_listening_answers_503_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener); // the port is closed now: connections are refused
    let store = store_at(address);
    both_endpoints_answer_503(store.clone(), Duration::from_secs(5)).await;
    assert!(matches!(store.connect_now().await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn a_silent_server_answers_503_after_the_call_timeout() {
    // Accepts connections and never says a word, like a black-holed network path.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.push(stream);
        }
    });
    // Bounds are generous multiples of the call timeout, so that a loaded machine cannot
    // fail them; what they rule out is waiting for the function's whole timeout.
    both_endpoints_answer_503(store_at(address.clone()), CALL_TIMEOUT * 6).await;

    // Many at once on a fresh store: none waits behind the others' attempts to connect.
    let app = Arc::new(app_on(store_at(address)).await);
    let started = Instant::now();
    let calls: Vec<_> = (0..10u8)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post(Endpoint::SendOtp, json!({ "phone": "+14155550123" }), &format!("198.51.100.{i}")).await
            })
        })
        .collect();
    for call in calls {
        let reply = call.await.unwrap_or_else(|e| panic!("handler panicked: {e}"));
        assert_eq!(reply.status, 503);
    }
    assert!(started.elapsed() < CALL_TIMEOUT * 6, "10 concurrent sends took {:?}", started.elapsed());
    held.abort();
}

#[tokio::test]
async fn unusable_credentials_fail_without_showing_them_and_a_missing_secret_is_unavailable() {
    use otp_core::ports::SecretSource;
    let config = FirestoreConfig { call_timeout: CALL_TIMEOUT, ..FirestoreConfig::new("demo-faults") };
    let with_credentials =
        |json: &'static str| -> Arc<dyn SecretSource> { Arc::new(secrets_with(&[("OTP_GCP_CREDENTIALS", json)])) };
    let store = FirestoreStore::new(
        config.clone(),
        FirestoreAuth::Secrets(with_credentials(r#"{"type":"service_account","private_key":"s3cr3t-key"}"#)),
    );
    match store.connect_now().await {
        Err(StoreError::Other(reason)) => assert!(!reason.contains("s3cr3t"), "{reason}"),
        other => panic!("expected unusable credentials, got {other:?}"),
    }
    let missing: Arc<dyn SecretSource> = Arc::new(EnvSecrets::from_lookup(|_| None));
    let store = FirestoreStore::new(config, FirestoreAuth::Secrets(missing));
    assert!(matches!(store.connect_now().await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn connections_that_hang_answer_503_without_queueing() {
    // A listener that never accepts, its backlog filled: further connects hang, as toward
    // a black-holed address.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_millis(200), tokio::net::TcpStream::connect(address)).await
        {
            fillers.push(stream);
        }
    }
    let store = store_at(address.to_string());
    let started = Instant::now();
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.connect_now().await })
        })
        .collect();
    for call in calls {
        assert!(matches!(call.await.unwrap(), Err(StoreError::Unavailable(_))));
    }
    // Ten queued tries would take ten timeouts; concurrent ones take one, and the bound
    // leaves a loaded machine four more.
    assert!(started.elapsed() < CALL_TIMEOUT * 5, "10 concurrent connects took {:?}", started.elapsed());
    both_endpoints_answer_503(store_at(address.to_string()), CALL_TIMEOUT * 5).await;
    drop((listener, fillers));
}
