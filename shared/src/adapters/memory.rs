//! The in-memory store: one mutex around all records, so each port operation is one
//! atomic step. For the local run and tests; it forgets everything on restart and is
//! not shared between Lambda instances.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    CodeHash, IpRecord, NumberRecord, RangeRecord, SendDecision, SendPolicy, SubjectKey, VerifyOutcome,
};
use crate::ports::{OtpStore, StoreError};

/// Records beyond this count trigger a sweep of those no rule needs any more.
const SWEEP_ABOVE: usize = 10_000;

/// A map of records, each with the time after which no rule needs it.
#[derive(Debug)]
struct Expiring<T> {
    map: HashMap<SubjectKey, (T, Option<DateTime<Utc>>)>,
    /// The size at which the next sweep runs: it doubles past what a sweep leaves, so
    /// sweeping costs O(1) per insert, amortised, even when nothing has expired yet.
    sweep_at: usize,
}

impl<T> Default for Expiring<T> {
    fn default() -> Self {
        Self { map: HashMap::new(), sweep_at: SWEEP_ABOVE }
    }
}

impl<T: Clone + Default> Expiring<T> {
    fn get(&self, key: &SubjectKey) -> T {
        self.map.get(key).map(|(record, _)| record.clone()).unwrap_or_default()
    }

    fn put(&mut self, key: &SubjectKey, record: T, expiry: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, (_, expiry)| expiry.is_none_or(|at| at > now));
            self.sweep_at = (self.map.len() * 2).max(SWEEP_ABOVE);
        }
        self.map.insert(key.clone(), (record, expiry));
    }
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    numbers: Expiring<NumberRecord>,
    clients: Expiring<IpRecord>,
    ranges: Expiring<RangeRecord>,
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

#[async_trait]
impl OtpStore for MemoryStore {
    async fn record_send(
        &self,
        number: &SubjectKey,
        client: &SubjectKey,
        range: Option<&SubjectKey>,
        code: CodeHash,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> Result<SendDecision, StoreError> {
        let mut records = self.records();
        let mut number_record = records.numbers.get(number);
        let mut client_record = records.clients.get(client);
        // Without a range key the limit is off: a scratch record, never stored.
        let mut range_record = range.map(|key| records.ranges.get(key)).unwrap_or_default();
        let decision = policy.apply(&mut number_record, &mut client_record, &mut range_record, code, now);
        if let SendDecision::Allowed { .. } = decision {
            let number_expiry = policy.number_record_expiry(&number_record);
            let client_expiry = policy.client_record_expiry(&client_record);
            records.numbers.put(number, number_record, number_expiry, now);
            records.clients.put(client, client_record, client_expiry, now);
            if let Some(range) = range {
                let range_expiry = policy.range_record_expiry(&range_record);
                records.ranges.put(range, range_record, range_expiry, now);
            }
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
        let Some((record, _)) = records.numbers.map.get_mut(number) else {
            return Ok(VerifyOutcome::NoPendingCode);
        };
        let mut updated = record.clone();
        let outcome = updated.judge(candidate, now);
        *record = updated;
        Ok(outcome)
    }

    async fn withdraw_code(&self, number: &SubjectKey, code: &CodeHash) -> Result<(), StoreError> {
        if let Some((record, _)) = self.records().numbers.map.get_mut(number) {
            record.withdraw(code);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    #[test]
    fn sweeps_drop_only_records_no_rule_needs() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let mut map = Expiring::<IpRecord>::default();
        let pepper = crate::domain::Pepper::new(b"test".to_vec());
        let key = |i: usize| pepper.client_key(&i.to_string());
        for i in 0..SWEEP_ABOVE {
            // Even keys expire at once, odd keys much later.
            let expiry = now + TimeDelta::seconds(if i % 2 == 0 { 1 } else { 1_000 });
            map.put(&key(i), IpRecord::default(), Some(expiry), now);
        }
        assert_eq!(map.map.len(), SWEEP_ABOVE);
        map.put(&key(SWEEP_ABOVE), IpRecord::default(), None, now + TimeDelta::seconds(2));
        assert_eq!(map.map.len(), SWEEP_ABOVE / 2 + 1);
        assert!(map.map.contains_key(&key(1)) && !map.map.contains_key(&key(0)));
        assert_eq!(map.sweep_at, SWEEP_ABOVE, "the next sweep waits for the map to grow again");
    }
}
