//! What the store tests share: subjects, the policies, the stores under test, and running
//! calls concurrently.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use otp_core::adapters::memory::MemoryStore;
use otp_core::domain::{
    Channel, CodeHash, CodeLength, OtpCode, Pepper, SendDecision, SendPolicy, SubjectKey, VerifyOutcome, VerifyPolicy,
    WindowLimit,
};
use otp_core::ports::{OtpStore, SendSubjects, StoreError, VerifySubjects};
use rand::RngCore;

use crate::clock::secs;

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
/// Their guard prefix (`+1 415`, as `OTP_GUARD_PREFIX_DIGITS` 3 makes it).
pub const PREFIX: &str = "1-415";

/// The default policy with the per-range limit on: `max` sends per hour to one range.
pub fn range_policy(max: u32) -> SendPolicy {
    SendPolicy { per_range: Some(WindowLimit { max, window: secs(3600) }), ..policy() }
}

/// Range digits of the tests: blocks of 1000 numbers, as `OTP_RANGE_DIGITS` by default.
pub const RANGE_DIGITS: u8 = 3;

/// The memory store, under test.
pub fn memory() -> Arc<dyn OtpStore> {
    Arc::new(MemoryStore::new())
}

/// A Firestore store of its own on the emulator, under test; `None` when the run skips
/// the emulator (see [`crate::emulator::host`]).
pub fn firestore(test: &str) -> Option<Arc<dyn OtpStore>> {
    crate::emulator::fresh_store(test).map(|store| Arc::new(store) as Arc<dyn OtpStore>)
}

/// A number and a client no other test uses (a random pepper keys them), and codes.
pub struct Subjects {
    pub pepper: Pepper,
    pub number: SubjectKey,
    pub client: SubjectKey,
}

impl Default for Subjects {
    fn default() -> Self {
        Self::new()
    }
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
        let subjects =
            SendSubjects { number, client, range, country: COUNTRY, prefix: PREFIX, device: None, challenged: false };
        store.record_send(&subjects, code, Channel::Sms, policy, now).await
    }

    /// A send of `code` on `channel` to the number, from the client.
    pub async fn send_on(
        &self,
        store: &dyn OtpStore,
        code: &str,
        channel: Channel,
        now: DateTime<Utc>,
    ) -> SendDecision {
        let subjects = SendSubjects {
            number: &self.number,
            client: &self.client,
            range: None,
            country: COUNTRY,
            prefix: PREFIX,
            device: None,
            challenged: false,
        };
        store.record_send(&subjects, self.hash(code), channel, &policy(), now).await.unwrap()
    }

    /// The key of this test's device `i` (the lane a valid device token names).
    pub fn device(&self, i: u8) -> SubjectKey {
        self.pepper.client_key(&format!("device {i}"))
    }

    /// One send step of `code` to `number` from `client` as `device` (`None`: no device
    /// token), `challenged` or not, under `policy`.
    #[allow(clippy::too_many_arguments)]
    pub async fn ask(
        &self,
        store: &dyn OtpStore,
        number: &SubjectKey,
        client: &SubjectKey,
        device: Option<&SubjectKey>,
        challenged: bool,
        code: &str,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> SendDecision {
        let subjects =
            SendSubjects { number, client, range: None, country: COUNTRY, prefix: PREFIX, device, challenged };
        store.record_send(&subjects, self.hash(code), Channel::Sms, policy, now).await.unwrap()
    }

    /// One verify step of `code` for `number` from `client` as `device`, under `policy`.
    #[allow(clippy::too_many_arguments)]
    pub async fn answer(
        &self,
        store: &dyn OtpStore,
        number: &SubjectKey,
        client: &SubjectKey,
        device: Option<&SubjectKey>,
        code: &str,
        policy: &VerifyPolicy,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError> {
        let subjects = VerifySubjects { number, client, country: COUNTRY, prefix: PREFIX, device };
        store.judge_attempt(&subjects, &self.hash(code), policy, now).await
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
        let subjects = VerifySubjects { number, client, country: COUNTRY, prefix: PREFIX, device: None };
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
