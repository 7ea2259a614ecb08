//! With Firestore unreachable (nothing listening) or silent (a listener that never
//! answers), send and verify answer `503 service_unavailable` with `Retry-After` within a
//! bounded time, through the same handler as Lambda. Needs no emulator.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use otp_core::adapters::clock::SystemClock;
use otp_core::adapters::firestore::{FirestoreAuth, FirestoreConfig, FirestoreStore};
use otp_core::adapters::outbox::Outbox;
use otp_core::ports::{Clock, OtpStore, StoreError};
use otp_core::secrets::env::EnvSecrets;
use otp_core::wiring::Overrides;
use otp_core::{Api, Endpoint, Settings};

const CALL_TIMEOUT: Duration = Duration::from_millis(800);

fn store_at(address: String) -> Arc<FirestoreStore> {
    let config = FirestoreConfig { call_timeout: CALL_TIMEOUT, ..FirestoreConfig::new("demo-faults") };
    Arc::new(FirestoreStore::new(config, FirestoreAuth::Emulator(address)))
}

async fn api_with(store: Arc<dyn OtpStore>) -> (Api, Arc<Outbox>) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let outbox = Arc::new(Outbox::new(clock.clone(), false));
    let secrets = EnvSecrets::from_lookup(|name| match name {
        "OTP_SESSION_SECRET" => Some("session-secret-for-tests-0123456789abcdef".into()),
        "OTP_CODE_PEPPER" => Some("pepper-for-tests-0123456789abcdef-0123456".into()),
        _ => None,
    });
    let overrides = Overrides {
        clock: Some(clock),
        secrets: Some(Arc::new(secrets)),
        store: Some(store),
        sms: Some(outbox.clone()),
        ..Default::default()
    };
    let app = otp_core::wiring::build(Settings::default(), overrides).await;
    (app.api, outbox)
}

fn post(endpoint: Endpoint, body: &str) -> http::Request<String> {
    http::Request::builder()
        .method("POST")
        .uri(endpoint.path())
        .header("content-type", "application/json")
        .body(body.to_owned())
        .unwrap_or_else(|e| panic!("test request: {e}"))
}

/// Both endpoints answer 503 with Retry-After, each within `bound`, and no SMS goes out.
async fn both_endpoints_answer_503(store: Arc<dyn OtpStore>, bound: Duration) {
    let (api, outbox) = api_with(store).await;
    let client = Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)));
    for (endpoint, body) in [
        (Endpoint::SendOtp, r#"{"phone":"+14155550123"}"#),
        (Endpoint::VerifyOtp, r#"{"phone":"+14155550123","code":"123456"}"#),
    ] {
        let started = Instant::now();
        let response = api.handle(endpoint, &post(endpoint, body), client).await;
        let took = started.elapsed();
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE, "{endpoint:?}: {}", response.body());
        let json: serde_json::Value = serde_json::from_str(response.body()).unwrap_or_default();
        assert_eq!(json["error"]["code"], "service_unavailable");
        assert!(response.headers().get(http::header::RETRY_AFTER).is_some(), "{endpoint:?}: no Retry-After");
        assert!(took < bound, "{endpoint:?} took {took:?}, more than {bound:?}");
    }
    assert!(outbox.list().is_empty(), "no SMS without a recorded send");
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
    let (api, _) = api_with(store_at(address)).await;
    let api = Arc::new(api);
    let started = Instant::now();
    let calls: Vec<_> = (0..10u8)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                let client = Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)));
                api.handle(Endpoint::SendOtp, &post(Endpoint::SendOtp, r#"{"phone":"+14155550123"}"#), client).await
            })
        })
        .collect();
    for call in calls {
        let response = call.await.unwrap_or_else(|e| panic!("handler panicked: {e}"));
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
    }
    assert!(started.elapsed() < CALL_TIMEOUT * 6, "10 concurrent sends took {:?}", started.elapsed());
    held.abort();
}

#[tokio::test]
async fn unusable_credentials_fail_without_showing_them_and_a_missing_secret_is_unavailable() {
    use otp_core::ports::SecretSource;
    let config = FirestoreConfig { call_timeout: CALL_TIMEOUT, ..FirestoreConfig::new("demo-faults") };
    let with_credentials = |json: &'static str| -> Arc<dyn SecretSource> {
        Arc::new(EnvSecrets::from_lookup(move |name| match name {
            "OTP_SESSION_SECRET" => Some("session-secret-for-tests-0123456789abcdef".into()),
            "OTP_CODE_PEPPER" => Some("pepper-for-tests-0123456789abcdef-0123456".into()),
            "OTP_GCP_CREDENTIALS" => Some(json.into()),
            _ => None,
        }))
    };
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
    // Ten queued tries would take ten timeouts.
    assert!(started.elapsed() < CALL_TIMEOUT * 2, "10 concurrent connects took {:?}", started.elapsed());
    both_endpoints_answer_503(store_at(address.to_string()), CALL_TIMEOUT * 2).await;
    drop((listener, fillers));
}
