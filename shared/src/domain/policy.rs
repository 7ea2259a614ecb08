//! The send and verify rules, as pure functions over the records a step reads. A store
//! runs them inside one atomic step, so every backend enforces the same rules.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use super::channel::Channel;
use super::code::CodeHash;
use super::quota::{
    BUDGET_SHARDS, COUNTRY_SHARDS, ConversionGuard, CountryCap, CountryRecords, GuardState, ShardedCap, next_day,
    next_hour,
};

/// At most `max` events in any sliding window of `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    pub max: u32,
    pub window: TimeDelta,
}

/// The rules a send must pass, and the life of the code it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendPolicy {
    pub code_ttl: TimeDelta,
    pub max_attempts: u32,
    pub resend_cooldown: TimeDelta,
    pub per_number: WindowLimit,
    pub per_client: WindowLimit,
    /// Sends to any number of one range (see `Pepper::range_key`), against SMS pumping;
    /// `None`: off, and no range record is read or written.
    pub per_range: Option<WindowLimit>,
    /// Failed verifies per number across codes: at the cap the number takes no sends.
    pub failures: WindowLimit,
    /// SMS per UTC day, all numbers together (`None`: off).
    pub daily_budget: Option<u32>,
    /// SMS per country per UTC hour.
    pub per_country_hour: CountryCap,
    /// Pauses countries whose sends are not approved (`None`: off).
    pub guard: Option<ConversionGuard>,
}

/// The rules of a verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Verify attempts per client.
    pub per_client: WindowLimit,
    /// Failed verifies per number across codes (an approval resets them).
    pub failures: WindowLimit,
}

/// The code waiting for a number: only its hash, with its expiry and tries left, and the
/// channel it went out on (the session token's `amr` says how the number was reached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    pub hash: CodeHash,
    pub channel: Channel,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempts_left: u32,
}

/// What the store keeps per phone number (under its keyed hash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberRecord {
    pub pending: Option<PendingCode>,
    /// Times of the sends inside the current window, oldest first; at most the limit.
    pub sends: Vec<DateTime<Utc>>,
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Times of the failed verifies inside the failures window, across codes.
    pub failures: Vec<DateTime<Utc>>,
}

/// What the store keeps per client IP (under its keyed hash): its sends and its verify
/// attempts inside their windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientRecord {
    pub sends: Vec<DateTime<Utc>>,
    pub verifies: Vec<DateTime<Utc>>,
}

/// A sliding log of sends: what the store keeps per number range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendLog {
    pub sends: Vec<DateTime<Utc>>,
}

/// Everything a send is decided on, as one atomic step reads it. The optional parts are
/// present exactly when their limit is on (see [`SendPolicy::reads`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendRecords {
    pub number: NumberRecord,
    pub client: ClientRecord,
    pub range: Option<SendLog>,
    /// Today's budget shards, as far as the step read them (`None`: not read; a store
    /// that reads none reserves blindly and checks the unit with [`SendPolicy::held`]).
    pub budget: Option<Vec<Option<u32>>>,
    pub country: Option<CountryRecords>,
}

/// Which optional records a send of one country needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendReads {
    pub range: bool,
    pub budget: bool,
    pub country: bool,
}

/// Which limit refused a send or a verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    Cooldown,
    Number,
    /// The number reached its failed-attempt cap.
    NumberLocked,
    Client,
    Range,
    CountryHour,
    CountryPaused,
    DailyBudget,
}

impl LimitScope {
    /// The name logs and alarms use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cooldown => "cooldown",
            Self::Number => "number",
            Self::NumberLocked => "number_locked",
            Self::Client => "client",
            Self::Range => "range",
            Self::CountryHour => "country_hour",
            Self::CountryPaused => "country_paused",
            Self::DailyBudget => "daily_budget",
        }
    }
}

/// The shards an allowed send took one unit from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reservation {
    pub budget_shard: Option<usize>,
    pub country_shard: Option<usize>,
}

/// A reservation whose unit did not hold in a shard that was full after all (it was not
/// read, or filled since): which of its units exceeded their shard's quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overdrawn {
    pub budget_shard: Option<usize>,
    pub country_shard: Option<usize>,
}

/// A country the conversion guard pauses with this decision, and the figures why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardTrip {
    pub until: DateTime<Utc>,
    pub sends: u32,
    pub approvals: u32,
    /// The guard's state to store for the country.
    pub state: GuardState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// The send is recorded and its code is now the pending one.
    Allowed { expires_at: DateTime<Utc>, reserved: Reservation },
    /// Nothing of the send is recorded; try again after this many seconds (at least 1).
    /// `paused`: the conversion guard pauses the country now, which the store records.
    RateLimited { retry_after_seconds: u64, scope: LimitScope, paused: Option<GuardTrip> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The code matched; it is gone now, so it can never approve again. `channel`: the
    /// one it was sent on.
    Approved { channel: Channel },
    /// Wrong code; this many tries are left (of the code, or of the number's cap).
    Incorrect { attempts_remaining: u32 },
    /// Wrong code, and it was the last try of the code or of the number: the code is void.
    AttemptsExhausted,
    /// The number is at its failed-attempt cap: the code is void and nothing was judged.
    NumberLocked,
    /// No code is pending: never sent, expired, used, or voided.
    NoPendingCode,
    /// The client made too many attempts; nothing was judged or changed.
    RateLimited { retry_after_seconds: u64 },
}

impl SendPolicy {
    /// The optional records a send to a number of `country` needs read.
    pub fn reads(&self, country: &str) -> SendReads {
        SendReads {
            range: self.per_range.is_some(),
            budget: self.daily_budget.is_some(),
            country: self.per_country_hour.for_country(country).is_some() || self.guard.is_some(),
        }
    }

    /// Decides a send at `now` to a number of `country`. If allowed, `records` are
    /// updated: the send is counted everywhere, one unit of each shared cap is reserved
    /// in a shard chosen by `pick` (random, so concurrent senders spread over shards), and
    /// `code`, sent on `channel`, replaces any pending code with a fresh attempt count. If
    /// refused, nothing changes but a pause the guard calls for (`paused`). Every channel
    /// counts alike, toward every limit and cap: one send, one unit.
    pub fn apply(
        &self,
        records: &mut SendRecords,
        country: &str,
        code: CodeHash,
        channel: Channel,
        now: DateTime<Utc>,
        pick: u32,
    ) -> SendDecision {
        let reads = self.reads(country);
        let SendRecords { number, client, range, budget, country: country_records } = records;
        prune(&mut number.sends, self.per_number.window, now);
        prune(&mut number.failures, self.failures.window, now);
        prune(&mut client.sends, self.per_client.window, now);

        let mut wait: Option<(TimeDelta, LimitScope)> = None;
        let mut consider = |delta: Option<TimeDelta>, scope| {
            if let Some(delta) = delta
                && wait.is_none_or(|(w, _)| delta > w)
            {
                wait = Some((delta, scope));
            }
        };
        consider(
            number.last_sent_at.map(|last| last + self.resend_cooldown - now).filter(|d| *d > TimeDelta::zero()),
            LimitScope::Cooldown,
        );
        consider(window_wait(&number.sends, self.per_number, now), LimitScope::Number);
        consider(window_wait(&number.failures, self.failures, now), LimitScope::NumberLocked);
        consider(window_wait(&client.sends, self.per_client, now), LimitScope::Client);
        let range = match (self.per_range, reads.range) {
            (Some(per_range), true) => {
                let range = range.get_or_insert_default();
                prune(&mut range.sends, per_range.window, now);
                consider(window_wait(&range.sends, per_range, now), LimitScope::Range);
                Some(range)
            }
            _ => None,
        };
        let budget_shard = match (self.budget_cap(), reads.budget) {
            (Some(cap), true) => {
                // No counts at all: a day with nothing counted yet.
                let counts = budget.get_or_insert_with(|| vec![Some(0); BUDGET_SHARDS]);
                counts.resize(BUDGET_SHARDS, Some(0));
                let shard = cap.shard_to_try(counts, pick);
                consider(shard.is_none().then(|| next_day(now) - now), LimitScope::DailyBudget);
                shard.map(|s| (counts, s))
            }
            _ => None,
        };
        let mut paused = None;
        let country_shard = match reads.country {
            true => {
                let records = country_records.get_or_insert_default();
                // A country without a cap reserves nothing: only the guard's tally counts it.
                let shard = match self.country_cap(country) {
                    Some(cap) => {
                        records.cap_shards.resize(COUNTRY_SHARDS, Some(0));
                        let shard = cap.shard_to_try(&records.cap_shards, pick.rotate_left(16));
                        consider(shard.is_none().then(|| next_hour(now) - now), LimitScope::CountryHour);
                        shard
                    }
                    None => None,
                };
                match records.guard.paused_until.filter(|until| *until > now) {
                    Some(until) => consider(Some(until - now), LimitScope::CountryPaused),
                    None => {
                        if let Some(guard) = self.guard {
                            let last_hour = records.last_hour(now);
                            if guard.trips(last_hour) {
                                let recent = records.guard.recent_trips(now);
                                let pause = guard.pause_after(recent);
                                let until = now + pause;
                                records.guard = GuardState {
                                    paused_until: Some(until),
                                    trips: recent + 1,
                                    last_trip_at: Some(now),
                                };
                                paused = Some(GuardTrip {
                                    until,
                                    sends: last_hour.sends.round() as u32,
                                    approvals: last_hour.approvals.round() as u32,
                                    state: records.guard,
                                });
                                consider(Some(pause), LimitScope::CountryPaused);
                            }
                        }
                    }
                }
                Some((records, shard))
            }
            false => None,
        };

        if let Some((delta, scope)) = wait {
            return SendDecision::RateLimited { retry_after_seconds: whole_seconds_up(delta), scope, paused };
        }

        let expires_at = now + self.code_ttl;
        number.sends.push(now);
        number.last_sent_at = Some(now);
        number.pending =
            Some(PendingCode { hash: code, channel, created_at: now, expires_at, attempts_left: self.max_attempts });
        client.sends.push(now);
        if let Some(range) = range {
            range.sends.push(now);
        }
        let mut reserved = Reservation::default();
        if let Some((counts, shard)) = budget_shard {
            counts[shard] = counts[shard].map(|c| c + 1);
            reserved.budget_shard = Some(shard);
        }
        if let Some((records, shard)) = country_shard {
            if let Some(shard) = shard {
                records.cap_shards[shard] = records.cap_shards[shard].map(|c| c + 1);
                reserved.country_shard = Some(shard);
            }
            records.sent += 1;
        }
        SendDecision::Allowed { expires_at, reserved }
    }

    /// The daily budget as shards, if it is on.
    pub fn budget_cap(&self) -> Option<ShardedCap> {
        self.daily_budget.map(|total| ShardedCap { total, shards: BUDGET_SHARDS })
    }

    /// The hourly SMS cap of `country` as shards, if it has one.
    pub fn country_cap(&self, country: &str) -> Option<ShardedCap> {
        self.per_country_hour.for_country(country).map(|total| ShardedCap { total, shards: COUNTRY_SHARDS })
    }

    /// Whether the units `reserved` for a send of `country` hold, given the counts their
    /// blind increments brought the shards to (`budget_count`, `country_count`: `None`
    /// where nothing was reserved). A unit beyond its shard's quota does not hold: the
    /// store gives the whole reservation back, undoes the send and decides it again.
    pub fn held(
        &self,
        country: &str,
        reserved: &Reservation,
        budget_count: Option<u32>,
        country_count: Option<u32>,
    ) -> Result<(), Overdrawn> {
        let over = |cap: Option<ShardedCap>, shard: Option<usize>, count: Option<u32>| match (cap, shard, count) {
            (Some(cap), Some(shard), Some(count)) if !cap.holds(shard, count) => Some(shard),
            _ => None,
        };
        let overdrawn = Overdrawn {
            budget_shard: over(self.budget_cap(), reserved.budget_shard, budget_count),
            country_shard: over(self.country_cap(country), reserved.country_shard, country_count),
        };
        match overdrawn {
            Overdrawn { budget_shard: None, country_shard: None } => Ok(()),
            _ => Err(overdrawn),
        }
    }

    /// When a number's record holds nothing any rule still needs, and may be dropped.
    pub fn number_record_expiry(&self, record: &NumberRecord) -> Option<DateTime<Utc>> {
        let last_send = record.last_sent_at.map(|t| t + self.per_number.window.max(self.resend_cooldown));
        let pending = record.pending.as_ref().map(|p| p.expires_at);
        let failures = record.failures.last().map(|t| *t + self.failures.window);
        last_send.max(pending).max(failures)
    }

    /// When a client's sends are needed by no rule any more.
    pub fn client_record_expiry(&self, record: &ClientRecord) -> Option<DateTime<Utc>> {
        record.sends.last().map(|t| *t + self.per_client.window)
    }

    /// When a range's record holds nothing any rule still needs (`None` with the limit off:
    /// no such record is kept then).
    pub fn range_record_expiry(&self, record: &SendLog) -> Option<DateTime<Utc>> {
        let per_range = self.per_range?;
        record.sends.last().map(|t| *t + per_range.window)
    }
}

impl VerifyPolicy {
    /// Judges one verify attempt at `now` and updates the records: the client's attempt
    /// is counted (unless refused), then the number's record judges `candidate`.
    pub fn apply(
        &self,
        number: &mut NumberRecord,
        client: &mut ClientRecord,
        candidate: &CodeHash,
        now: DateTime<Utc>,
    ) -> VerifyOutcome {
        prune(&mut client.verifies, self.per_client.window, now);
        if let Some(wait) = window_wait(&client.verifies, self.per_client, now) {
            return VerifyOutcome::RateLimited { retry_after_seconds: whole_seconds_up(wait) };
        }
        client.verifies.push(now);
        number.judge(candidate, now, self.failures)
    }

    /// When a client's verify attempts are needed by no rule any more.
    pub fn client_record_expiry(&self, record: &ClientRecord) -> Option<DateTime<Utc>> {
        record.verifies.last().map(|t| *t + self.per_client.window)
    }

    /// When a number's failures are needed by no rule any more.
    pub fn number_failures_expiry(&self, record: &NumberRecord) -> Option<DateTime<Utc>> {
        record.failures.last().map(|t| *t + self.failures.window)
    }
}

impl PendingCode {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

impl NumberRecord {
    /// Judges one attempt with `candidate` at `now`, and updates the record: a match
    /// removes the code and clears the failures; a wrong try spends one attempt of the
    /// code and counts one failure of the number; the last of either voids the code.
    pub fn judge(&mut self, candidate: &CodeHash, now: DateTime<Utc>, failures: WindowLimit) -> VerifyOutcome {
        prune(&mut self.failures, failures.window, now);
        if window_wait(&self.failures, failures, now).is_some() {
            self.pending = None;
            return VerifyOutcome::NumberLocked;
        }
        let Some(pending) = self.pending.as_mut() else {
            return VerifyOutcome::NoPendingCode;
        };
        if pending.is_expired(now) || pending.attempts_left == 0 {
            self.pending = None;
            return VerifyOutcome::NoPendingCode;
        }
        if pending.hash.matches(candidate) {
            let channel = pending.channel;
            self.pending = None;
            self.failures.clear();
            return VerifyOutcome::Approved { channel };
        }
        pending.attempts_left -= 1;
        self.failures.push(now);
        let failures_left = usize::try_from(failures.max).unwrap_or(usize::MAX).saturating_sub(self.failures.len());
        let left = pending.attempts_left.min(u32::try_from(failures_left).unwrap_or(u32::MAX));
        if left == 0 {
            self.pending = None;
            VerifyOutcome::AttemptsExhausted
        } else {
            VerifyOutcome::Incorrect { attempts_remaining: left }
        }
    }

    /// Removes the pending code if it is still the one created at `created_at` as `code`
    /// (its SMS could not be sent). The send stays counted, so a failing send buys no
    /// extra tries.
    /// The creation times are compared as stores keep them ([`stored_instant`]): read back
    /// from Firestore, a code's time has lost the nanoseconds the caller still holds.
    pub fn withdraw(&mut self, code: &CodeHash, created_at: DateTime<Utc>) -> bool {
        let created_at = stored_instant(created_at);
        if self.pending.as_ref().is_some_and(|p| p.hash.matches(code) && stored_instant(p.created_at) == created_at) {
            self.pending = None;
            true
        } else {
            false
        }
    }
}

/// `at` to the microsecond: the finest precision every store keeps (Firestore's
/// timestamps), so an instant read back from any store equals the written one at it.
/// Every comparison of a stored instant for equality goes through this.
pub fn stored_instant(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

fn prune(sends: &mut Vec<DateTime<Utc>>, window: TimeDelta, now: DateTime<Utc>) {
    sends.retain(|t| *t + window > now);
}

/// How long until one more event fits in the window, if it does not now.
fn window_wait(events: &[DateTime<Utc>], limit: WindowLimit, now: DateTime<Utc>) -> Option<TimeDelta> {
    let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
    if events.len() < max {
        return None;
    }
    // The event that must leave the window before another fits.
    let blocking = events[events.len() - max];
    Some(blocking + limit.window - now)
}

fn whole_seconds_up(delta: TimeDelta) -> u64 {
    let millis = delta.num_milliseconds().max(1);
    u64::try_from(millis).unwrap_or(1).div_ceil(1000)
}

#[cfg(test)]
mod tests;
