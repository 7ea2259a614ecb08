//! The in-memory store: one mutex around all records, so each port operation is one
//! atomic step. For the local run and tests; it forgets everything on restart and is
//! not shared between Lambda instances.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{CodeHash, IpRecord, NumberRecord, SendDecision, SendPolicy, SubjectKey, VerifyOutcome};
use crate::ports::{OtpStore, StoreError};

/// Records beyond this count trigger a sweep of those no rule needs any more.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    numbers: HashMap<SubjectKey, (NumberRecord, Option<DateTime<Utc>>)>,
    clients: HashMap<SubjectKey, (IpRecord, Option<DateTime<Utc>>)>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        // A panic while holding the lock cannot leave a record half-updated (updates
        // are made on copies and stored whole), so a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn sweep<T>(map: &mut HashMap<SubjectKey, (T, Option<DateTime<Utc>>)>, now: DateTime<Utc>) {
    if map.len() > SWEEP_ABOVE {
        map.retain(|_, (_, expiry)| expiry.is_none_or(|at| at > now));
    }
}

#[async_trait]
impl OtpStore for MemoryStore {
    async fn record_send(
        &self,
        number: &SubjectKey,
        client: &SubjectKey,
        code: CodeHash,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> Result<SendDecision, StoreError> {
        let mut records = self.records();
        sweep(&mut records.numbers, now);
        sweep(&mut records.clients, now);
        let mut number_record = records.numbers.get(number).map(|(r, _)| r.clone()).unwrap_or_default();
        let mut client_record = records.clients.get(client).map(|(r, _)| r.clone()).unwrap_or_default();
        let decision = policy.apply(&mut number_record, &mut client_record, code, now);
        if let SendDecision::Allowed { .. } = decision {
            let number_expiry = policy.number_record_expiry(&number_record);
            let client_expiry = policy.client_record_expiry(&client_record);
            records.numbers.insert(number.clone(), (number_record, number_expiry));
            records.clients.insert(client.clone(), (client_record, client_expiry));
        }
        Ok(decision)
    }

    async fn judge_attempt(
        &self,
        number: &SubjectKey,
        candidate: &CodeHash,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError> {
        let mut records = self.records();
        let Some((record, _)) = records.numbers.get_mut(number) else {
            return Ok(VerifyOutcome::NoPendingCode);
        };
        let mut updated = record.clone();
        let outcome = updated.judge(candidate, now);
        *record = updated;
        Ok(outcome)
    }

    async fn withdraw_code(&self, number: &SubjectKey, code: &CodeHash) -> Result<(), StoreError> {
        if let Some((record, _)) = self.records().numbers.get_mut(number) {
            record.withdraw(code);
        }
        Ok(())
    }
}
