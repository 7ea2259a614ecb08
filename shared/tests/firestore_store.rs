//! What only the Firestore store has: its round trips per operation, its bounded retry
//! under contention, and the documents it leaves in Firestore. On the real emulator
//! (`FIRESTORE_EMULATOR_HOST`); without it they fail, unless `OTP_SKIP_EMULATOR=1` skips them loudly.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use firestore::gcloud_sdk::google::firestore::v1::value::ValueType;
use firestore::gcloud_sdk::google::firestore::v1::{CommitRequest, Document, GetDocumentRequest, Value, Write, write};
use firestore::{FirestoreDb, FirestoreDbOptions};
use otp_core::adapters::firestore::{EXPIRE_AT, FirestoreConfig, FirestoreStore};
use otp_core::domain::{Channel, LimitScope, SendDecision, VerifyOutcome};
use otp_core::ports::{OtpStore, StoreError};
use otp_testkit::emulator;
use otp_testkit::store::{Subjects, concurrently, policy, range_policy, verify_policy};
use otp_testkit::{secs, t0};

fn store(test: &str) -> Option<(FirestoreStore, FirestoreConfig)> {
    let host = emulator::host(test)?;
    let config = emulator::config();
    Some((emulator::store(host, config.clone()), config))
}

/// Runs `op` alone and returns how many round trips it took.
async fn trips<T>(store: &FirestoreStore, op: impl Future<Output = T>) -> (T, u64) {
    let before = store.round_trips();
    let out = op.await;
    (out, store.round_trips() - before)
}

#[tokio::test]
async fn each_operation_takes_at_most_two_round_trips() {
    let Some((store, _)) = store("each_operation_takes_at_most_two_round_trips") else { return };
    let s = Subjects::new();
    store.connect_now().await.unwrap();

    let read_before = store.documents_read();
    let (d, n) = trips(&store, s.send(&store, "123456", t0())).await;
    assert!(matches!(d, SendDecision::Allowed { .. }));
    assert_eq!(n, 2, "allowed send: one batch read of every record it needs, one commit");
    assert_eq!(
        store.documents_read() - read_before,
        7,
        "number, client, the guard and the country's tally shards of this hour and the last; no cap shard"
    );
    let (d, n) = trips(&store, s.send(&store, "654321", t0() + secs(1))).await;
    assert!(matches!(d, SendDecision::RateLimited { .. }));
    assert_eq!(n, 1, "refused send: the read alone");
    let (o, n) = trips(&store, s.judge(&store, "000000", t0() + secs(2))).await;
    assert_eq!(o, VerifyOutcome::Incorrect { attempts_remaining: 4 });
    assert_eq!(n, 2, "wrong code: read, commit");
    let (o, n) = trips(&store, s.judge(&store, "123456", t0() + secs(3))).await;
    assert_eq!(o, VerifyOutcome::Approved { channel: Channel::Sms });
    assert_eq!(n, 2, "right code: read, commit");
    let (o, n) = trips(&store, s.judge(&store, "123456", t0() + secs(4))).await;
    assert_eq!(o, VerifyOutcome::NoPendingCode);
    assert_eq!(n, 2, "no code: read, and the client's attempt committed (the per-client verify limit)");
    let (o, n) = trips(&store, Subjects::new().judge(&store, "123456", t0())).await;
    assert_eq!(o, VerifyOutcome::NoPendingCode);
    assert_eq!(n, 2, "unknown number: read, and the client's attempt committed");

    let t = Subjects::new();
    t.send(&store, "111111", t0()).await;
    let (r, n) = trips(&store, store.withdraw_code(&t.number, &t.hash("222222"), t0())).await;
    assert!(r.is_ok());
    assert_eq!(n, 1, "withdraw of another code: the read alone");
    let (r, n) = trips(&store, store.withdraw_code(&t.number, &t.hash("111111"), t0())).await;
    assert!(r.is_ok());
    assert_eq!(n, 2, "withdraw: read, commit");
    assert_eq!(store.conflicts(), 0, "nothing ran concurrently");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_really_conflict_and_are_retried() {
    let Some((store, _)) = store("concurrent_writers_really_conflict_and_are_retried") else { return };
    let store = Arc::new(store);
    let s = Arc::new(Subjects::new());
    s.send(&*store, "123456", t0()).await;
    let outcomes = concurrently(40, |i| {
        let (store, s) = (store.clone(), s.clone());
        async move { s.judge_for(&*store, &s.number, &s.other_client(i), &s.hash("000000"), t0() + secs(1)).await }
    })
    .await;
    assert_eq!(outcomes.iter().filter(|o| **o == VerifyOutcome::AttemptsExhausted).count(), 1);
    // Without real conflicts the exact counts of the conformance tests would prove nothing.
    assert!(store.conflicts() > 0, "the 40 guesses should have collided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contention_retries_are_bounded() {
    let Some(host) = emulator::host("contention_retries_are_bounded") else { return };
    // One try only: every lost race surfaces as `Contention` at once, instead of a retry.
    let store = Arc::new(emulator::store(host, FirestoreConfig { max_attempts: 1, ..emulator::config() }));
    let s = Arc::new(Subjects::new());
    s.send(&*store, "123456", t0()).await;
    let started = Instant::now();
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                s.judge_for(&*store, &s.number, &s.other_client(i), &s.hash("000000"), t0() + secs(1)).await
            })
        })
        .collect();
    let mut contention = 0;
    let mut judged = 0;
    for task in tasks {
        match task.await.unwrap() {
            Err(StoreError::Contention) => contention += 1,
            Ok(VerifyOutcome::Incorrect { .. } | VerifyOutcome::AttemptsExhausted) => judged += 1,
            Ok(VerifyOutcome::NoPendingCode) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(contention > 0, "with one try some of 40 racing guesses must give up");
    assert!(judged <= 5, "never more judged tries than the code has: {judged}");
    assert!(store.round_trips() <= 2 + 2 * 40, "one read and at most one commit each");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Near the cap: a budget of 16 is one unit per shard, so sends soon land in full shards.
/// Each such unit is given back (`overdrawn`) and its send decided again from a read of
/// the 16 shards; exactly 16 are allowed. Once this instance has seen every shard full, a
/// send is refused in one round trip (the read, with the shards) and adds nothing.
#[tokio::test]
async fn near_the_cap_units_in_full_shards_are_given_back_and_past_it_one_read_refuses() {
    let Some((store, _)) = store("near_the_cap_units_in_full_shards_are_given_back_and_past_it_one_read_refuses")
    else {
        return;
    };
    store.connect_now().await.unwrap();
    let s = Subjects::new();
    let p = otp_core::domain::SendPolicy { daily_budget: Some(16), guard: None, new_numbers_percent: None, ..policy() };
    let mut allowed = 0;
    for i in 0..16 {
        let d = s.record(&store, &s.other_number(i), &s.other_client(i), None, s.hash("123456"), &p, t0()).await;
        allowed += u32::from(matches!(d, Ok(SendDecision::Allowed { .. })));
    }
    assert_eq!(allowed, 16, "one at a time, every unit of the budget is found");
    let first_refusal =
        s.record(&store, &s.other_number(16), &s.other_client(16), None, s.hash("654321"), &p, t0()).await;
    assert!(matches!(first_refusal, Ok(SendDecision::RateLimited { scope: LimitScope::DailyBudget, .. })));
    assert!(store.overdrawn() > 0, "with one unit per shard some sends met a full shard");
    let (reads, read_before) = (store.round_trips(), store.documents_read());
    let refused = s.record(&store, &s.other_number(17), &s.other_client(17), None, s.hash("123456"), &p, t0()).await;
    assert!(matches!(refused, Ok(SendDecision::RateLimited { scope: LimitScope::DailyBudget, .. })), "{refused:?}");
    assert_eq!(store.round_trips() - reads, 1, "past the cap: the read alone");
    assert_eq!(store.documents_read() - read_before, 7 + 16, "the usual 7 and the 16 budget shards");
}

/// A step that gives up on contention answers `503` with `Retry-After`, on the service's
/// HTTP edge. With one try per step, 20 sends at once to one number from 20 addresses race
/// for its record: one is allowed, those that read before it committed and lost their own
/// commit give up at once, the others meet the cooldown.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_send_that_gives_up_on_contention_answers_503_with_retry_after() {
    let Some(host) = emulator::host("a_send_that_gives_up_on_contention_answers_503_with_retry_after") else { return };
    let store = emulator::store(host, FirestoreConfig { max_attempts: 1, ..emulator::config() });
    let app = otp_testkit::TestApp::builder().store(Arc::new(store)).start().await;
    // Whether 20 racing sends meet in one commit depends on the scheduler: on a busy machine
    // a round may run them one after another (about one round in ten here). So race again,
    // to a new number each round, until a send gives up; every round must hold the rest.
    let mut gave_up = Vec::new();
    for round in 0..10 {
        let phone = format!("+1415555{:04}", 123 + round);
        let replies = futures_util::future::join_all((0..20).map(|i| {
            let (app, phone) = (&app, phone.clone());
            async move {
                let ip = format!("198.51.{round}.{i}");
                app.post(otp_core::Endpoint::SendOtp, serde_json::json!({ "phone": phone }), &ip).await
            }
        }))
        .await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 202).count(), 1, "round {round}: {statuses:?}");
        assert!(statuses.iter().all(|s| matches!(s, 202 | 429 | 503)), "round {round}: {statuses:?}");
        gave_up.extend(replies.into_iter().filter(|r| r.status == 503));
        if !gave_up.is_empty() {
            break;
        }
    }
    assert!(!gave_up.is_empty(), "with one try, some of 20 racing sends give up within 10 rounds");
    for reply in gave_up {
        assert_eq!(reply.error_code(), "service_unavailable", "{}", reply.body);
        assert_eq!(reply.header("retry-after"), Some("5"), "{}", reply.body);
    }
}

#[tokio::test]
async fn stored_documents_hold_only_hashes_and_an_expiry() {
    let Some((store, config)) = store("stored_documents_hold_only_hashes_and_an_expiry") else { return };
    let s = Subjects::new();
    s.send(&store, "123456", t0()).await;
    s.judge(&store, "000000", t0() + secs(1)).await;

    // A client of our own, as an operator would look: FIRESTORE_EMULATOR_HOST is set here.
    let db = FirestoreDb::with_options(FirestoreDbOptions::new(config.project_id.clone())).await.unwrap();
    let read = |collection: &str, id: &str| {
        let name = format!("{}/otp_{collection}/{id}", db.get_documents_path());
        let db = db.clone();
        async move {
            db.client()
                .get()
                .get_document(GetDocumentRequest { name, ..Default::default() })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let number_doc = read("numbers", s.number.as_str()).await;
    let client_doc = read("clients", s.client.as_str()).await;

    let expire_at =
        |fields: &std::collections::HashMap<_, firestore::gcloud_sdk::google::firestore::v1::Value>| match fields
            .get(EXPIRE_AT)
            .and_then(|v| v.value_type.clone())
        {
            Some(ValueType::TimestampValue(t)) => DateTime::<Utc>::from_timestamp(t.seconds, 0),
            other => panic!("expireAt missing or not a timestamp: {other:?}"),
        };
    assert_eq!(
        expire_at(&number_doc.fields),
        Some(t0() + secs(1) + policy().failures.window),
        "the failure at t0 + 1 s is needed for the failures window"
    );
    assert_eq!(
        expire_at(&client_doc.fields),
        Some(t0() + secs(1) + verify_policy().per_client.window),
        "the verify attempt at t0 + 1 s outlasts the send's window"
    );

    let mut number_fields: Vec<_> = number_doc.fields.keys().cloned().collect();
    number_fields.sort();
    assert_eq!(
        number_fields,
        ["approvalCountedAt", "devices", "expireAt", "failures", "knownUntil", "lastSentAt", "pending", "sends"]
    );
    let mut client_fields: Vec<_> = client_doc.fields.keys().cloned().collect();
    client_fields.sort();
    assert_eq!(client_fields, ["expireAt", "sends", "verifies"]);
    // Names and fields: what we store. (Not the server's create and update times, whose
    // nanoseconds can spell "000000" by chance.)
    let everything = format!("{} {:?} {} {:?}", number_doc.name, number_doc.fields, client_doc.name, client_doc.fields);
    for raw in ["4155550123", "203.0.113.7", "123456", "000000"] {
        assert!(!everything.contains(raw), "{raw} stored in the clear");
    }
}

#[tokio::test]
async fn the_range_record_joins_the_same_read_and_commit_and_only_when_on() {
    let test = "the_range_record_joins_the_same_read_and_commit_and_only_when_on";
    let Some((store, config)) = store(test) else { return };
    let s = Subjects::new();
    store.connect_now().await.unwrap();
    let p = range_policy(1);

    let (d, n) = trips(&store, s.send_in_range(&store, "+14155550100", &s.other_client(0), &p, t0())).await;
    assert!(matches!(d, SendDecision::Allowed { .. }));
    assert_eq!(n, 2, "on, allowed: one batch read of the three records, one commit");
    let (d, n) = trips(&store, s.send_in_range(&store, "+14155550101", &s.other_client(1), &p, t0() + secs(1))).await;
    assert_eq!(d, SendDecision::RateLimited { retry_after_seconds: 3599, scope: LimitScope::Range, paused: None });
    assert_eq!(n, 1, "on, refused: the read alone");
    // Off, the store is handed a range key (send_in_range always gives one) and must
    // neither read nor write its record.
    let (d, n) = trips(&store, s.send_in_range(&store, "+14155552100", &s.other_client(2), &policy(), t0())).await;
    assert!(matches!(d, SendDecision::Allowed { .. }));
    assert_eq!(n, 2, "off: as before");

    let db = FirestoreDb::with_options(FirestoreDbOptions::new(config.project_id.clone())).await.unwrap();
    let get = |collection: &str, id: &str| {
        let name = format!("{}/otp_{collection}/{id}", db.get_documents_path());
        let db = db.clone();
        async move { db.client().get().get_document(GetDocumentRequest { name, ..Default::default() }).await }
    };
    let range_doc = get("ranges", s.range_of("+14155550100").as_str()).await.unwrap().into_inner();
    let mut fields: Vec<_> = range_doc.fields.keys().cloned().collect();
    fields.sort();
    assert_eq!(fields, ["expireAt", "sends"]);
    match range_doc.fields.get(EXPIRE_AT).and_then(|v| v.value_type.clone()) {
        Some(ValueType::TimestampValue(t)) => {
            assert_eq!(DateTime::<Utc>::from_timestamp(t.seconds, 0), Some(t0() + secs(3600)));
        }
        other => panic!("expireAt missing or not a timestamp: {other:?}"),
    }
    assert!(!format!("{range_doc:?}").contains("4155550"), "the range is stored only as its keyed hash");
    let off = get("ranges", s.range_of("+14155552100").as_str()).await;
    assert_eq!(
        off.map(|_| ()).map_err(|status| status.code()),
        Err(firestore::gcloud_sdk::tonic::Code::NotFound),
        "off: no range document"
    );
}

#[tokio::test]
async fn a_malformed_stored_record_is_refused_not_guessed_at() {
    let Some((store, config)) = store("a_malformed_stored_record_is_refused_not_guessed_at") else { return };
    let s = Subjects::new();
    let db = FirestoreDb::with_options(FirestoreDbOptions::new(config.project_id.clone())).await.unwrap();
    let name = format!("{}/otp_numbers/{}", db.get_documents_path(), s.number.as_str());
    let fields = [("sends".to_owned(), Value { value_type: Some(ValueType::StringValue("not a list".into())) })];
    let write = Write {
        operation: Some(write::Operation::Update(Document {
            name,
            fields: fields.into_iter().collect(),
            ..Default::default()
        })),
        ..Default::default()
    };
    db.client()
        .get()
        .commit(CommitRequest { database: db.get_database_path().clone(), writes: vec![write], ..Default::default() })
        .await
        .unwrap();
    assert!(matches!(
        s.judge_for(&store, &s.number, &s.client, &s.hash("123456"), t0()).await,
        Err(StoreError::Other(reason)) if reason.contains("sends")
    ));
    assert!(matches!(
        s.record(&store, &s.number, &s.client, None, s.hash("123456"), &policy(), t0()).await,
        Err(StoreError::Other(_))
    ));
}

/// A code whose SMS may not have gone out is withdrawn on Firestore too, though the service
/// holds its creation time in nanoseconds and Firestore gives it back in microseconds.
#[tokio::test]
async fn the_code_of_a_failed_sms_is_withdrawn_at_the_stores_precision() {
    let Some((store, _)) = store("the_code_of_a_failed_sms_is_withdrawn_at_the_stores_precision") else { return };
    let setup = otp_testkit::twilio::TwilioSetup {
        attempt_timeout: Duration::from_millis(300),
        ..otp_testkit::twilio::TwilioSetup::default()
    };
    let app = otp_testkit::TestApp::builder()
        .store(Arc::new(store))
        .clock(Arc::new(otp_testkit::ManualClock::new(otp_testkit::t0_ns())))
        .twilio(setup)
        .start()
        .await;
    // Twilio takes the message but answers after the call's timeout: the service answers
    // sms_failed and must leave no usable code.
    app.fake_twilio().push_faults([fake_twilio::Fault::Slow { delay_ms: 1_500 }]);
    let phone = "+16505550100";
    let reply = app.send(phone).await;
    assert_eq!((reply.status, reply.error_code()), (502, "sms_failed"), "{}", reply.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.fake_twilio().messages().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = app.fake_twilio().messages();
    assert_eq!(delivered.len(), 1, "the fake created the message");
    let reply = app.verify(phone, &otp_testkit::code_in(&delivered[0].body)).await;
    assert_eq!((reply.status, reply.error_code()), (410, "code_expired"), "{}", reply.body);
}
