//! Concurrent requests against one number through the handler, on a multi-threaded
//! runtime: the store's atomic steps must hold under every interleaving.

use std::collections::BTreeMap;
use std::sync::Arc;

use otp_core::Endpoint;
use otp_testkit::{TestApp, wrong_code};
use serde_json::json;

const PHONE: &str = "+14155550123";

/// Runs `n` requests at once and counts the answers by (status, error code).
async fn burst(
    app: &Arc<TestApp>,
    n: usize,
    body: impl Fn(usize) -> (Endpoint, serde_json::Value, String),
) -> BTreeMap<(u16, String), usize> {
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (endpoint, body, ip) = body(i);
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let reply = app.post(endpoint, body, &ip).await;
                (reply.status, reply.error_code().to_owned())
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for task in tasks {
        *counts.entry(task.await.expect("request task")).or_insert(0) += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_right_guesses_approve_exactly_once() {
    let app = Arc::new(TestApp::new().await);
    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.last_code(PHONE);
    let counts =
        burst(&app, 50, |_| (Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": code }), "198.51.100.7".into()))
            .await;
    assert_eq!(counts.get(&(200, "<none>".into())), Some(&1), "{counts:?}");
    assert_eq!(counts.get(&(410, "code_expired".into())), Some(&49), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn forty_wrong_guesses_are_judged_at_most_five_times() {
    let app = Arc::new(TestApp::new().await);
    assert_eq!(app.send(PHONE).await.status, 202);
    let code = app.last_code(PHONE);
    let wrong = wrong_code(&code);
    let counts =
        burst(&app, 40, |_| (Endpoint::VerifyOtp, json!({ "phone": PHONE, "code": wrong }), "198.51.100.7".into()))
            .await;
    assert_eq!(counts.get(&(401, "incorrect_code".into())), Some(&4), "{counts:?}");
    assert_eq!(counts.get(&(429, "too_many_attempts".into())), Some(&1), "{counts:?}");
    assert_eq!(counts.get(&(410, "code_expired".into())), Some(&35), "{counts:?}");
    let reply = app.verify(PHONE, &code).await;
    assert_eq!(reply.status, 410, "the code is locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn thirty_sends_to_one_number_send_one_sms() {
    let app = Arc::new(TestApp::new().await);
    let counts = burst(&app, 30, |i| (Endpoint::SendOtp, json!({ "phone": PHONE }), format!("203.0.113.{i}"))).await;
    assert_eq!(counts.get(&(202, "<none>".into())), Some(&1), "{counts:?}");
    assert_eq!(counts.get(&(429, "rate_limited".into())), Some(&29), "{counts:?}");
    assert_eq!(app.outbox().list().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sends_from_one_ip_never_exceed_its_limit() {
    let app = Arc::new(TestApp::new().await);
    let counts = burst(&app, 30, |i| {
        (Endpoint::SendOtp, json!({ "phone": format!("+1415555{:04}", 100 + i) }), "192.0.2.50".into())
    })
    .await;
    assert_eq!(counts.get(&(202, "<none>".into())), Some(&5), "{counts:?}");
    assert_eq!(counts.get(&(429, "rate_limited".into())), Some(&25), "{counts:?}");
    assert_eq!(app.outbox().list().len(), 5);
}
