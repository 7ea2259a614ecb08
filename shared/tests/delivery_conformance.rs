//! One set of delivery-record tests, run against every `DeliveryLog`: the memory records,
//! and the Firestore store's on the real emulator (`FIRESTORE_EMULATOR_HOST`, which
//! `scripts/test` starts; `OTP_SKIP_EMULATOR=1` skips those runs loudly).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use otp_core::adapters::memory_delivery::MemoryDeliveryLog;
use otp_core::domain::delivery::{DELIVERY_RECORD_TTL, DeliveryRecord, DeliveryState, StatusApplied, StatusReport};
use otp_core::domain::{Channel, Pepper, SubjectKey};
use otp_core::ports::DeliveryLog;
use otp_testkit::secs;
use otp_testkit::store::concurrently;
use rand::RngCore;

macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(std::sync::Arc::new(super::MemoryDeliveryLog::new())).await;
                }
            )*
        }
        mod firestore {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(store) = otp_testkit::emulator::fresh_store(stringify!($test)) {
                        super::$test(std::sync::Arc::new(store)).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    a_state_moves_only_forward,
    a_final_state_never_changes_and_keeps_its_error_code,
    an_unknown_message_changes_nothing,
    a_second_record_of_one_sid_keeps_the_first,
    a_record_is_forgotten_after_its_ttl,
    concurrent_callbacks_of_one_message_advance_it_once_per_state,
);

fn t0() -> DateTime<Utc> {
    otp_testkit::t0_ns()
}

/// A message key no other test uses.
fn key() -> SubjectKey {
    let mut pepper = [0u8; 32];
    rand::rng().fill_bytes(&mut pepper);
    Pepper::new(pepper.to_vec()).message_key("SM0123456789abcdef0123456789abcdef")
}

fn report(state: DeliveryState) -> StatusReport {
    StatusReport { state, error_code: None }
}

fn state_of(applied: &StatusApplied) -> Option<DeliveryState> {
    match applied {
        StatusApplied::Advanced { record, .. } => Some(record.state),
        _ => None,
    }
}

async fn apply(log: &dyn DeliveryLog, key: &SubjectKey, report: StatusReport, at: DateTime<Utc>) -> StatusApplied {
    log.apply_status(key, &report, at).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn record(log: &dyn DeliveryLog, key: &SubjectKey, record: &DeliveryRecord) {
    log.record_sent(key, record).await.unwrap_or_else(|e| panic!("{e}"));
}

async fn a_state_moves_only_forward(log: Arc<dyn DeliveryLog>) {
    let k = key();
    record(&*log, &k, &DeliveryRecord::sent("BR", "55-119", Channel::Sms, t0())).await;
    assert_eq!(apply(&*log, &k, report(DeliveryState::Queued), t0() + secs(1)).await, StatusApplied::Unchanged);
    let sent = apply(&*log, &k, report(DeliveryState::Sent), t0() + secs(2)).await;
    assert!(
        matches!(&sent, StatusApplied::Advanced { from: DeliveryState::Queued, record } if record.state == DeliveryState::Sent && record.country == "BR"),
        "{sent:?}"
    );
    assert_eq!(
        apply(&*log, &k, report(DeliveryState::Sent), t0() + secs(3)).await,
        StatusApplied::Unchanged,
        "a repeat"
    );
    assert_eq!(apply(&*log, &k, report(DeliveryState::Queued), t0() + secs(3)).await, StatusApplied::Unchanged, "late");
    let delivered = apply(&*log, &k, report(DeliveryState::Delivered), t0() + secs(7)).await;
    assert_eq!(state_of(&delivered), Some(DeliveryState::Delivered));
    // Firestore keeps microseconds: the latency is whole seconds here, exact on both.
    assert_eq!(delivered.delivery_latency().map(|l| l.num_seconds()), Some(7));
    assert_eq!(delivered.delivery_failure(), None);
}

async fn a_final_state_never_changes_and_keeps_its_error_code(log: Arc<dyn DeliveryLog>) {
    let k = key();
    record(&*log, &k, &DeliveryRecord::sent("IN", "91-98", Channel::Whatsapp, t0())).await;
    // Out of order: the final state first.
    let undelivered = StatusReport { state: DeliveryState::Undelivered, error_code: Some(30003) };
    let applied = apply(&*log, &k, undelivered, t0() + secs(4)).await;
    let failure = applied.delivery_failure().expect("the guard's event");
    assert_eq!((failure.country.as_str(), failure.channel, failure.error_code), ("IN", Channel::Whatsapp, Some(30003)));
    assert_eq!(failure.prefix, "91-98", "the guard's prefix, as the send recorded it");
    for late in [DeliveryState::Sent, DeliveryState::Delivered, DeliveryState::Failed, DeliveryState::Undelivered] {
        let applied = apply(&*log, &k, StatusReport { state: late, error_code: Some(30008) }, t0() + secs(5)).await;
        assert_eq!(applied, StatusApplied::Unchanged, "{late:?} after undelivered");
    }
}

async fn an_unknown_message_changes_nothing(log: Arc<dyn DeliveryLog>) {
    let k = key();
    assert_eq!(apply(&*log, &k, report(DeliveryState::Delivered), t0()).await, StatusApplied::Unknown);
    // Nor did it leave a record behind that a later send would find.
    record(&*log, &k, &DeliveryRecord::sent("US", "1-415", Channel::Voice, t0() + secs(1))).await;
    let applied = apply(&*log, &k, report(DeliveryState::Sent), t0() + secs(2)).await;
    assert!(matches!(applied, StatusApplied::Advanced { from: DeliveryState::Queued, .. }), "{applied:?}");
}

async fn a_second_record_of_one_sid_keeps_the_first(log: Arc<dyn DeliveryLog>) {
    let k = key();
    record(&*log, &k, &DeliveryRecord::sent("KE", "254-712", Channel::Sms, t0())).await;
    apply(&*log, &k, report(DeliveryState::Sent), t0() + secs(1)).await;
    record(&*log, &k, &DeliveryRecord::sent("GB", "44-791", Channel::Voice, t0() + secs(2))).await;
    let applied = apply(&*log, &k, report(DeliveryState::Delivered), t0() + secs(3)).await;
    let StatusApplied::Advanced { from, record } = applied else { panic!("advanced: {applied:?}") };
    assert_eq!((from, record.country.as_str(), record.channel), (DeliveryState::Sent, "KE", Channel::Sms));
    assert_eq!(record.prefix, "254-712");
}

async fn a_record_is_forgotten_after_its_ttl(log: Arc<dyn DeliveryLog>) {
    let k = key();
    record(&*log, &k, &DeliveryRecord::sent("FR", "33-612", Channel::Sms, t0())).await;
    let late = t0() + DELIVERY_RECORD_TTL + secs(1);
    assert_eq!(apply(&*log, &k, report(DeliveryState::Delivered), late).await, StatusApplied::Unknown);
    let inside = t0() + DELIVERY_RECORD_TTL - secs(1);
    assert_eq!(
        state_of(&apply(&*log, &k, report(DeliveryState::Delivered), inside).await),
        Some(DeliveryState::Delivered)
    );
}

async fn concurrent_callbacks_of_one_message_advance_it_once_per_state(log: Arc<dyn DeliveryLog>) {
    let k = key();
    record(&*log, &k, &DeliveryRecord::sent("BR", "55-119", Channel::Sms, t0())).await;
    // Twilio's retries and our concurrent instances: eight each of sent and delivered.
    let outcomes = concurrently(16, |i| {
        let (log, k) = (log.clone(), k.clone());
        async move {
            let state = if i % 2 == 0 { DeliveryState::Sent } else { DeliveryState::Delivered };
            log.apply_status(&k, &report(state), t0() + secs(1)).await
        }
    })
    .await;
    let delivered = outcomes.iter().filter(|o| state_of(o) == Some(DeliveryState::Delivered)).count();
    let sent = outcomes.iter().filter(|o| state_of(o) == Some(DeliveryState::Sent)).count();
    assert_eq!(delivered, 1, "delivered once: {outcomes:?}");
    assert!(sent <= 1, "sent at most once, and never after delivered: {outcomes:?}");
    for outcome in &outcomes {
        if let StatusApplied::Advanced { from, .. } = outcome {
            assert_ne!(*from, DeliveryState::Delivered, "nothing moved on from delivered");
        }
    }
    assert_eq!(apply(&*log, &k, report(DeliveryState::Sent), t0() + secs(2)).await, StatusApplied::Unchanged);
}
