//! What a decided step changes, as every store writes it: the policy decides, then says
//! here which records to write, with what, and until when a rule needs each. The stores
//! destructure these structs whole, so a record or counter added here is a compile error
//! in each store until it writes it too.

use chrono::{DateTime, Utc};

use super::policy::{
    ClientRecord, NumberRecord, SendDecision, SendLog, SendPolicy, SendRecords, VerifyOutcome, VerifyPolicy,
};
use super::quota::{self, GuardState};

/// A record to write, and the time after which no rule needs it (`None`: no rule needs it
/// at any later time it knows of; the store keeps any later expiry it already holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write<T> {
    pub record: T,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One unit reserved in one shard of a shared cap: the store adds it blindly (no read,
/// no precondition) and hands the count it made to [`SendPolicy::held`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardUnit {
    pub shard: usize,
    pub expires_at: DateTime<Utc>,
}

/// What a send changes. A refusal changes nothing, but the pause the guard calls for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendChanges {
    pub number: Option<Write<NumberRecord>>,
    pub client: Option<Write<ClientRecord>>,
    /// The number range's log, with the per-range limit on.
    pub range: Option<Write<SendLog>>,
    /// Today's budget shard that takes the SMS (`quota::budget_counter`).
    pub budget: Option<ShardUnit>,
    /// Today's shard of the new numbers' share that takes it (`quota::new_budget_counter`):
    /// a send to a number not yet known.
    pub new_budget: Option<ShardUnit>,
    /// This hour's country cap shard that takes the SMS (`quota::country_counter`).
    pub country_sent: Option<ShardUnit>,
    /// The prefix's tally shard the SMS is counted in for the conversion guard, blindly
    /// (`quota::random_tally_counter`): its id and expiry. With the guard on only.
    pub tally: Option<(String, DateTime<Utc>)>,
    /// The guard's new state for the prefix, when it pauses it.
    pub guard: Option<Write<GuardState>>,
}

/// What a verify changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyChanges {
    pub client: Option<Write<ClientRecord>>,
    pub number: Option<Write<NumberRecord>>,
    /// An approval, added to one of the hour's tally shards of the number's prefix, blindly
    /// (`quota::random_tally_counter`): its id and expiry. Once per number in
    /// `policy::APPROVAL_COUNTED_EVERY`.
    pub approval: Option<(String, DateTime<Utc>)>,
}

impl SendPolicy {
    /// The changes of `decision`, made on `records` by [`SendPolicy::apply`] at `now`.
    /// `prefix` is the number's guard prefix.
    pub fn changes(
        &self,
        decision: &SendDecision,
        records: SendRecords,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> SendChanges {
        match decision {
            SendDecision::Allowed { reserved, .. } => {
                let SendRecords { number, client, range, .. } = records;
                SendChanges {
                    number: Some(Write { expires_at: self.number_record_expiry(&number), record: number }),
                    client: Some(Write { expires_at: self.client_record_expiry(&client), record: client }),
                    range: range.map(|log| Write { expires_at: self.range_record_expiry(&log), record: log }),
                    budget: reserved
                        .budget_shard
                        .map(|shard| ShardUnit { shard, expires_at: quota::budget_counter_expiry(now) }),
                    new_budget: reserved
                        .new_shard
                        .map(|shard| ShardUnit { shard, expires_at: quota::budget_counter_expiry(now) }),
                    country_sent: reserved
                        .country_shard
                        .map(|shard| ShardUnit { shard, expires_at: quota::country_counter_expiry(now) }),
                    tally: self
                        .guard
                        .map(|_| (quota::random_tally_counter(prefix, now), quota::country_counter_expiry(now))),
                    guard: None,
                }
            }
            SendDecision::RateLimited { paused, .. } | SendDecision::ChallengeRequired { paused } => SendChanges {
                guard: paused
                    .map(|trip| Write { record: trip.state, expires_at: Some(quota::guard_expiry(&trip.state)) }),
                ..SendChanges::default()
            },
        }
    }
}

impl VerifyPolicy {
    /// The changes of `outcome` for a number of `prefix`, judged by [`VerifyPolicy::apply`]
    /// at `now`: `before` is the number's record as read (`None`: there was none), `number`
    /// and `client` the records as judged. A refused attempt changes nothing; a number
    /// that had no record and gained nothing gets none.
    pub fn changes(
        &self,
        outcome: &VerifyOutcome,
        before: Option<&NumberRecord>,
        number: NumberRecord,
        client: ClientRecord,
        prefix: &str,
        now: DateTime<Utc>,
    ) -> VerifyChanges {
        if let VerifyOutcome::RateLimited { .. } = outcome {
            return VerifyChanges::default();
        }
        let number_changed = before != Some(&number) && (before.is_some() || number != NumberRecord::default());
        let counted = number.approval_counted_at != before.and_then(|b| b.approval_counted_at);
        VerifyChanges {
            client: Some(Write { expires_at: self.client_record_expiry(&client), record: client }),
            approval: (matches!(outcome, VerifyOutcome::Approved { .. }) && counted)
                .then(|| (quota::random_tally_counter(prefix, now), quota::country_counter_expiry(now))),
            number: number_changed.then(|| Write { expires_at: self.number_record_expiry(&number), record: number }),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::policy::WindowLimit;
    use crate::domain::{Channel, CodeHash, CodeLength, OtpCode, Pepper};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_795_532_400, 0).unwrap_or_default()
    }

    fn hash(code: &str) -> CodeHash {
        Pepper::new(b"k".to_vec()).hash_code("+14155550123", &OtpCode::parse(code, CodeLength::default()).unwrap())
    }

    fn us() -> crate::domain::Asker<'static> {
        crate::domain::Asker { country: "US", prefix: "1-415", device: None, challenged: false }
    }

    fn policies() -> (SendPolicy, VerifyPolicy) {
        let settings = crate::Settings::default().service;
        (settings.policy, settings.verify_policy)
    }

    #[test]
    fn an_allowed_send_writes_every_record_it_counts_in_and_a_refusal_nothing() {
        let (policy, _) = policies();
        let mut records = SendRecords::default();
        let decision = policy.apply(&mut records, us(), hash("111111"), Channel::Sms, t0(), 7);
        let changes = policy.changes(&decision, records.clone(), "US", t0());
        let SendChanges { number, client, range, budget, new_budget, country_sent, tally, guard } = changes;
        assert_eq!(number.map(|w| w.record), Some(records.number.clone()));
        assert_eq!(client.map(|w| w.expires_at), Some(Some(t0() + TimeDelta::seconds(900))));
        assert_eq!(range, None, "the per-range limit is off by default");
        assert_eq!(new_budget.map(|unit| unit.expires_at), Some(quota::budget_counter_expiry(t0())), "a new number");
        let budget = budget.expect("the default budget is on");
        assert_eq!(budget.expires_at, quota::budget_counter_expiry(t0()));
        assert!(country_sent.is_some(), "the default country cap is on");
        assert_eq!(tally.map(|(id, _)| id.starts_with("US-")), Some(true), "the guard counts the SMS");
        assert_eq!(guard, None);

        // The cooldown refuses the next one: nothing to write.
        let decision = policy.apply(&mut records, us(), hash("222222"), Channel::Sms, t0() + TimeDelta::seconds(1), 7);
        assert!(matches!(decision, SendDecision::RateLimited { paused: None, .. }));
        assert_eq!(policy.changes(&decision, records, "US", t0()), SendChanges::default());
    }

    #[test]
    fn a_verify_writes_what_it_changed_and_counts_an_approval() {
        let (_, verify) = policies();
        let (mut number, mut client) = (NumberRecord::default(), ClientRecord::default());
        // A number with no record and no code: its record stays absent, the client's attempt counts.
        let outcome = verify.apply(&mut number, &mut client, &hash("123456"), None, t0());
        let changes = verify.changes(&outcome, None, number.clone(), client.clone(), "US", t0());
        assert_eq!((changes.number, changes.approval), (None, None));
        assert_eq!(changes.client.map(|w| w.record.verifies.len()), Some(1));

        let (policy, _) = policies();
        let mut records = SendRecords::default();
        policy.apply(&mut records, us(), hash("123456"), Channel::Sms, t0(), 0);
        let before = records.number.clone();
        let mut number = records.number;
        let outcome = verify.apply(&mut number, &mut client, &hash("123456"), None, t0());
        assert_eq!(outcome, VerifyOutcome::Approved { channel: Channel::Sms });
        let changes = verify.changes(&outcome, Some(&before), number, client.clone(), "US", t0());
        assert_eq!(changes.number.map(|w| w.record.lane.pending), Some(None), "the code is gone");
        assert_eq!(changes.approval.map(|(id, _)| id.starts_with("US-")), Some(true));

        let limited = VerifyPolicy { per_client: WindowLimit { max: 1, window: TimeDelta::seconds(60) }, ..verify };
        let outcome = limited.apply(&mut before.clone(), &mut client, &hash("000000"), None, t0());
        assert!(matches!(outcome, VerifyOutcome::RateLimited { .. }));
        assert_eq!(
            limited.changes(&outcome, Some(&before), before.clone(), client, "US", t0()),
            VerifyChanges::default()
        );
    }
}
