//! The in-memory store: one mutex around all records, so each port operation is one
//! atomic step. For the local run and tests; it forgets everything on restart and is
//! not shared between Lambda instances.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::quota::{self, BUDGET_SHARDS, COUNTRY_SHARDS, TALLY_SHARDS};
use crate::domain::{
    Channel, ClientRecord, CodeHash, CountryRecords, GuardState, NumberRecord, SendChanges, SendDecision, SendLog,
    SendPolicy, SendRecords, SubjectKey, VerifyChanges, VerifyOutcome, VerifyPolicy,
};
use crate::ports::{OtpStore, SendSubjects, StoreError, VerifySubjects};

/// Records beyond this count trigger a sweep of those no rule needs any more.
const SWEEP_ABOVE: usize = 10_000;

/// A map of records, each with the time after which no rule needs it.
#[derive(Debug)]
struct Expiring<K, T> {
    map: HashMap<K, (T, Option<DateTime<Utc>>)>,
    /// The size at which the next sweep runs: it doubles past what a sweep leaves, so
    /// sweeping costs O(1) per insert, amortised, even when nothing has expired yet.
    sweep_at: usize,
}

impl<K, T> Default for Expiring<K, T> {
    fn default() -> Self {
        Self { map: HashMap::new(), sweep_at: SWEEP_ABOVE }
    }
}

impl<K: Hash + Eq + Clone, T: Clone + Default> Expiring<K, T> {
    fn get(&self, key: &K) -> T {
        self.map.get(key).map(|(record, _)| record.clone()).unwrap_or_default()
    }

    /// Stores `record`; its expiry only ever moves later, since other steps may have
    /// stored parts of it that are needed longer.
    fn put(&mut self, key: &K, record: T, expiry: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        if self.map.len() >= self.sweep_at {
            self.map.retain(|_, (_, expiry)| expiry.is_none_or(|at| at > now));
            self.sweep_at = (self.map.len() * 2).max(SWEEP_ABOVE);
        }
        let kept = self.map.get(key).and_then(|(_, at)| *at);
        self.map.insert(key.clone(), (record, expiry.max(kept)));
    }
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Records>,
}

#[derive(Debug, Default)]
struct Records {
    numbers: Expiring<SubjectKey, NumberRecord>,
    clients: Expiring<SubjectKey, ClientRecord>,
    ranges: Expiring<SubjectKey, SendLog>,
    /// Budget shards, by `quota::budget_counter`.
    budget: Expiring<String, u32>,
    /// Shards of the new numbers' share, by `quota::new_budget_counter`.
    new_budget: Expiring<String, u32>,
    /// Countries' hourly cap shards, by `quota::country_counter`.
    country_sends: Expiring<String, u32>,
    /// Prefixes' hourly tallies of SMS and approvals, by `quota::tally_counter`.
    tally_sends: Expiring<String, u32>,
    tally_approvals: Expiring<String, u32>,
    tally_undelivered: Expiring<String, u32>,
    /// The conversion guard's state per prefix.
    guards: Expiring<String, GuardState>,
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

impl Records {
    /// Every count a send's decision may need: this store holds them all under one lock,
    /// so it reads every shard and never reserves a unit that does not hold.
    fn country_records(&self, country: &str, prefix: &str, capped: bool, now: DateTime<Utc>) -> CountryRecords {
        let tally = |map: &Expiring<String, u32>, at| -> u32 {
            (0..TALLY_SHARDS).map(|shard| map.get(&quota::tally_counter(prefix, at, shard))).sum()
        };
        let before = quota::previous_hour(now);
        let cap_shards = match capped {
            true => (0..COUNTRY_SHARDS)
                .map(|shard| Some(self.country_sends.get(&quota::country_counter(country, now, shard))))
                .collect(),
            false => Vec::new(),
        };
        CountryRecords {
            cap_shards,
            sent: tally(&self.tally_sends, now),
            sent_before: tally(&self.tally_sends, before),
            approvals: tally(&self.tally_approvals, now),
            approvals_before: tally(&self.tally_approvals, before),
            undelivered: tally(&self.tally_undelivered, now),
            undelivered_before: tally(&self.tally_undelivered, before),
            guard: self.guards.get(&prefix.to_owned()),
        }
    }

    fn add(map: &mut Expiring<String, u32>, key: &str, delta: u32, expiry: DateTime<Utc>, now: DateTime<Utc>) {
        let key = key.to_owned();
        let count = map.get(&key).saturating_add(delta);
        map.put(&key, count, Some(expiry), now);
    }
}

#[async_trait]
impl OtpStore for MemoryStore {
    async fn record_send(
        &self,
        subjects: &SendSubjects<'_>,
        code: CodeHash,
        channel: Channel,
        policy: &SendPolicy,
        now: DateTime<Utc>,
    ) -> Result<SendDecision, StoreError> {
        let mut records = self.records();
        let reads = policy.reads(subjects.country);
        let mut step = SendRecords {
            number: records.numbers.get(subjects.number),
            client: records.clients.get(subjects.client),
            range: subjects.range.filter(|_| reads.range).map(|key| records.ranges.get(key)),
            budget: reads.budget.then(|| {
                (0..BUDGET_SHARDS).map(|shard| Some(records.budget.get(&quota::budget_counter(now, shard)))).collect()
            }),
            new_budget: (reads.budget && policy.new_numbers_cap().is_some()).then(|| {
                (0..BUDGET_SHARDS)
                    .map(|shard| Some(records.new_budget.get(&quota::new_budget_counter(now, shard))))
                    .collect()
            }),
            country: reads.country.then(|| {
                let capped = policy.country_cap(subjects.country).is_some();
                records.country_records(subjects.country, subjects.prefix, capped, now)
            }),
        };
        let pick = rand::random::<u32>();
        let decision = policy.apply(&mut step, subjects.asker(), code, channel, now, pick);
        let SendChanges { number, client, range, budget, new_budget, country_sent, tally, guard } =
            policy.changes(&decision, step, subjects.prefix, now);
        // Every shard was read under the lock, so the unit reserved in one always holds.
        if let Some(write) = number {
            records.numbers.put(subjects.number, write.record, write.expires_at, now);
        }
        if let Some(write) = client {
            records.clients.put(subjects.client, write.record, write.expires_at, now);
        }
        if let (Some(key), Some(write)) = (subjects.range, range) {
            records.ranges.put(key, write.record, write.expires_at, now);
        }
        if let Some(unit) = budget {
            Records::add(&mut records.budget, &quota::budget_counter(now, unit.shard), 1, unit.expires_at, now);
        }
        if let Some(unit) = new_budget {
            let key = quota::new_budget_counter(now, unit.shard);
            Records::add(&mut records.new_budget, &key, 1, unit.expires_at, now);
        }
        if let Some(unit) = country_sent {
            let key = quota::country_counter(subjects.country, now, unit.shard);
            Records::add(&mut records.country_sends, &key, 1, unit.expires_at, now);
        }
        if let Some((key, expiry)) = tally {
            Records::add(&mut records.tally_sends, &key, 1, expiry, now);
        }
        if let Some(write) = guard {
            records.guards.put(&subjects.prefix.to_owned(), write.record, write.expires_at, now);
        }
        Ok(decision)
    }

    async fn judge_attempt(
        &self,
        subjects: &VerifySubjects<'_>,
        candidate: &CodeHash,
        policy: &VerifyPolicy,
        now: DateTime<Utc>,
    ) -> Result<VerifyOutcome, StoreError> {
        let mut records = self.records();
        let before = records.numbers.map.get(subjects.number).map(|(record, _)| record.clone());
        let mut number = before.clone().unwrap_or_default();
        let mut client = records.clients.get(subjects.client);
        let outcome = policy.apply(&mut number, &mut client, candidate, subjects.device, now);
        let VerifyChanges { client, number, approval } =
            policy.changes(&outcome, before.as_ref(), number, client, subjects.prefix, now);
        if let Some(write) = client {
            records.clients.put(subjects.client, write.record, write.expires_at, now);
        }
        if let Some(write) = number {
            records.numbers.put(subjects.number, write.record, write.expires_at, now);
        }
        if let Some((key, expiry)) = approval {
            Records::add(&mut records.tally_approvals, &key, 1, expiry, now);
        }
        Ok(outcome)
    }

    async fn count_undelivered(
        &self,
        prefix: &str,
        sent_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if !quota::in_tally(sent_at, now) {
            return Ok(());
        }
        let key = quota::random_tally_counter(prefix, sent_at);
        Records::add(&mut self.records().tally_undelivered, &key, 1, quota::country_counter_expiry(sent_at), now);
        Ok(())
    }

    async fn withdraw_code(
        &self,
        number: &SubjectKey,
        code: &CodeHash,
        created_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some((record, _)) = self.records().numbers.map.get_mut(number) {
            record.withdraw(code, created_at);
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
        let mut map = Expiring::<SubjectKey, ClientRecord>::default();
        let pepper = crate::domain::Pepper::new(b"test".to_vec());
        let key = |i: usize| pepper.client_key(&i.to_string());
        for i in 0..SWEEP_ABOVE {
            // Even keys expire at once, odd keys much later.
            let expiry = now + TimeDelta::seconds(if i % 2 == 0 { 1 } else { 1_000 });
            map.put(&key(i), ClientRecord::default(), Some(expiry), now);
        }
        assert_eq!(map.map.len(), SWEEP_ABOVE);
        map.put(&key(SWEEP_ABOVE), ClientRecord::default(), None, now + TimeDelta::seconds(2));
        assert_eq!(map.map.len(), SWEEP_ABOVE / 2 + 1);
        assert!(map.map.contains_key(&key(1)) && !map.map.contains_key(&key(0)));
        assert_eq!(map.sweep_at, SWEEP_ABOVE, "the next sweep waits for the map to grow again");
    }
}
