//! What the store tests share: subjects, the policy, the stores under test, and running
//! calls concurrently.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use otp_core::adapters::firestore::{FirestoreAuth, FirestoreConfig, FirestoreStore};
use otp_core::adapters::memory::MemoryStore;
use otp_core::domain::{
    CodeHash, CodeLength, OtpCode, Pepper, SendDecision, SendPolicy, SubjectKey, VerifyOutcome, VerifyPolicy,
    WindowLimit,
};
use otp_core::ports::{OtpStore, SendSubjects, StoreError, VerifySubjects};
use rand::RngCore;

pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_532_400, 0).unwrap_or_default() // 2026-11-24T15:00:00Z
}

pub fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

/// The contract's default send policy, as the settings build it (their test checks each
/// value): every limit on but the per-range one.
pub fn policy() -> SendPolicy {
    otp_core::Settings::default().service.policy
}

/// The contract's default verify policy.
pub fn verify_policy() -> VerifyPolicy {
    otp_core::Settings::default().service.verify_policy
}

/// The country the subjects' numbers belong to.
pub const COUNTRY: &str = "US";

/// The default policy with the per-range limit on: `max` sends per hour to one range.
pub fn range_policy(max: u32) -> SendPolicy {
    SendPolicy { per_range: Some(WindowLimit { max, window: secs(3600) }), ..policy() }
}

/// Range digits of the tests: blocks of 1000 numbers, as `OTP_RANGE_DIGITS` by default.
pub const RANGE_DIGITS: u8 = 3;

/// A number and a client no other test uses (a random pepper keys them), and codes.
pub struct Subjects {
    pub pepper: Pepper,
    pub number: SubjectKey,
    pub client: SubjectKey,
}

impl Subjects {
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let pepper = Pepper::new(key.to_vec());
        Self { number: pepper.number_key("+14155550123"), client: pepper.client_key("203.0.113.7"), pepper }
    }

    pub fn hash(&self, code: &str) -> CodeHash {
        let code = OtpCode::parse(code, CodeLength::default()).unwrap_or_else(|e| panic!("test code: {e}"));
        self.pepper.hash_code("+14155550123", &code)
    }

    pub fn other_number(&self, i: u32) -> SubjectKey {
        self.pepper.number_key(&format!("+1415555{:04}", 1000 + i))
    }

    pub fn other_client(&self, i: u32) -> SubjectKey {
        self.pepper.client_key(&format!("198.51.100.{i}"))
    }

    pub async fn send(&self, store: &dyn OtpStore, code: &str, now: DateTime<Utc>) -> SendDecision {
        self.send_from(store, &self.client, code, now).await
    }

    pub async fn send_from(
        &self,
        store: &dyn OtpStore,
        client: &SubjectKey,
        code: &str,
        now: DateTime<Utc>,
    ) -> SendDecision {
        self.record(store, &self.number, client, None, self.hash(code), &policy(), now).await.unwrap()
    }

    /// One send step with every part given.
    #[allow(clippy::too_many_arguments)]
    pub async fn record(
        &self,
        store: &dyn OtpStore,
        number: &SubjectKey,
        client: &SubjectKey,
        range: Option<&SubjectKey>,
        code: CodeHash,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> Result<SendDecision, StoreError> {
        let subjects = SendSubjects { number, client, range, country: COUNTRY };
        store.record_send(&subjects, code, policy, now).await
    }

    /// One verify step of `code` for `number` from `client`.
    pub async fn judge_for(
        &self,
        store: &dyn OtpStore,
        number: &SubjectKey,
        client: &SubjectKey,
        code: &CodeHash,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError> {
        let subjects = VerifySubjects { number, client, country: COUNTRY };
        store.judge_attempt(&subjects, code, &verify_policy(), now).await
    }

    pub async fn send_to(
        &self,
        store: &dyn OtpStore,
        number: &SubjectKey,
        code: &str,
        now: DateTime<Utc>,
    ) -> SendDecision {
        self.record(store, number, &self.client, None, self.hash(code), &policy(), now).await.unwrap()
    }

    pub fn range_of(&self, phone: &str) -> SubjectKey {
        self.pepper.range_key(phone, RANGE_DIGITS)
    }

    /// A send to `phone` from `client` under `policy`, always keyed by its range: with the
    /// limit off the store must ignore the key.
    pub async fn send_in_range(
        &self,
        store: &dyn OtpStore,
        phone: &str,
        client: &SubjectKey,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> SendDecision {
        let range = self.range_of(phone);
        let number = self.pepper.number_key(phone);
        self.record(store, &number, client, Some(&range), self.hash("123456"), policy, now).await.unwrap()
    }

    pub async fn judge(&self, store: &dyn OtpStore, code: &str, now: DateTime<Utc>) -> VerifyOutcome {
        self.judge_for(store, &self.number, &self.client, &self.hash(code), now).await.unwrap()
    }
}

pub fn memory_store() -> Arc<dyn OtpStore> {
    Arc::new(MemoryStore::new())
}

/// The emulator's address. Without one the test fails, unless the run opts out with
/// `OTP_SKIP_EMULATOR=1`: then it is skipped, loudly (`scripts/test` always starts it).
pub fn emulator_host(test: &str) -> Option<String> {
    if let Some(host) = std::env::var("FIRESTORE_EMULATOR_HOST").ok().filter(|h| !h.trim().is_empty()) {
        return Some(host);
    }
    assert!(
        std::env::var("OTP_SKIP_EMULATOR").as_deref() == Ok("1"),
        "FIRESTORE_EMULATOR_HOST is not set: run scripts/test (it starts the Firestore emulator), \
         or set OTP_SKIP_EMULATOR=1 to skip the Firestore tests"
    );
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n################################################################\n\
         ## SKIPPED Firestore test `{test}` (OTP_SKIP_EMULATOR=1).\n\
         ## Run scripts/test, which starts the emulator, to run it.\n\
         ################################################################"
    );
    None
}

/// A fresh project on the emulator per store, so tests never see each other's records.
/// Calls may take far longer than production's 3 s: an emulator on a loaded machine
/// (CI's two cores shared with a build) is slow, and no test here is about its speed.
pub fn firestore_config() -> FirestoreConfig {
    FirestoreConfig {
        call_timeout: std::time::Duration::from_secs(20),
        ..FirestoreConfig::new(format!("demo-test-{:016x}", rand::rng().next_u64()))
    }
}

pub fn firestore_store_with(host: String, config: FirestoreConfig) -> FirestoreStore {
    FirestoreStore::new(config, FirestoreAuth::Emulator(host))
}

pub async fn firestore_store(test: &str) -> Option<Arc<dyn OtpStore>> {
    let host = emulator_host(test)?;
    Some(Arc::new(firestore_store_with(host, firestore_config())))
}

/// Runs `n` calls at once (released together) and returns their results in order.
pub async fn concurrently<T, F, Fut>(n: u32, call: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let start = Arc::new(tokio::sync::Barrier::new(usize::try_from(n).unwrap_or(usize::MAX)));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (start, call) = (start.clone(), call(i));
            tokio::spawn(async move {
                start.wait().await;
                call.await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(value)) => results.push(value),
            Ok(Err(error)) => panic!("a concurrent store call failed: {error}"),
            Err(error) => panic!("a concurrent store call panicked: {error}"),
        }
    }
    results
}
