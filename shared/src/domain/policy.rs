//! The send and verify rules, as pure functions over the records a step reads. A store
//! runs them inside one atomic step, so every backend enforces the same rules.

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};

use super::channel::Channel;
use super::code::{CodeHash, SubjectKey};
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
    /// Failed verifies across codes of the requests without a device token: at the cap
    /// they take no sends.
    pub failures: WindowLimit,
    /// The same, for the requests of one device token (`OTP_MAX_FAILURES_PER_DEVICE`).
    pub device_failures: WindowLimit,
    /// SMS per UTC day, all numbers together (`None`: off).
    pub daily_budget: Option<u32>,
    /// The part of the daily budget that numbers not yet known may use, in percent
    /// (`None`: no such part, as when no number is ever known).
    pub new_numbers_percent: Option<u32>,
    /// SMS per country per UTC hour.
    pub per_country_hour: CountryCap,
    /// Pauses number prefixes whose sends are not approved, for numbers not yet known
    /// (`None`: off).
    pub guard: Option<ConversionGuard>,
    /// `OTP_CAPTCHA_WHEN=under_attack`: a send to a number not yet known asks for the bot
    /// challenge when its prefix is paused or a cap it counts in is far along
    /// ([`CHALLENGE_COUNTRY_PERCENT`], [`CHALLENGE_NEW_SHARE_PERCENT`]), and a solved one
    /// lets it through the pause. Off: the challenge, if any, is asked of every send.
    pub challenge_under_attack: bool,
}

/// Under attack, an unchallenged send to a new number may use this much of its country's
/// hourly cap; beyond it the challenge is asked.
pub const CHALLENGE_COUNTRY_PERCENT: u32 = 50;
/// Under attack, unchallenged sends to new numbers may use this much of their share of the
/// daily budget; beyond it the challenge is asked.
pub const CHALLENGE_NEW_SHARE_PERCENT: u32 = 80;

/// Who asks for a send or a verify, as far as the rules tell requests apart.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// ISO 3166-1 alpha-2 region of the number, or `001`: its country caps.
    pub country: &'a str,
    /// The number's prefix ([`super::phone::E164Phone::prefix`]): its conversion guard.
    pub prefix: &'a str,
    /// The key of the device a valid device token names (`Pepper::device_key`), if any.
    pub device: Option<&'a SubjectKey>,
    /// The request carries a bot challenge that its provider vouched for.
    pub challenged: bool,
}

/// The rules of a verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Verify attempts per client.
    pub per_client: WindowLimit,
    /// Failed verifies across codes, without a device token (an approval resets them).
    pub failures: WindowLimit,
    /// The same, per device token.
    pub device_failures: WindowLimit,
    /// How long an approval makes its number known (`None`: numbers are never known).
    pub known_for: Option<TimeDelta>,
}

/// An approval adds to its prefix's tally at most once per number in this long: the tally
/// spans two hours, so one number approved over and over cannot make a prefix look used.
pub const APPROVAL_COUNTED_EVERY: TimeDelta = TimeDelta::hours(2);

/// The most device lanes a number keeps: each needs an approval of the number, so only its
/// owner makes them; past it the least recently used lane goes.
pub const MAX_DEVICE_LANES: usize = 8;

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

/// The requests to a number that the rules count together: those without a device token,
/// or those of one device token. Each lane has its own code, sends and failed attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lane {
    pub pending: Option<PendingCode>,
    /// Times of the sends inside the current window, oldest first; at most the limit.
    pub sends: Vec<DateTime<Utc>>,
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Times of the failed verifies inside the failures window, across codes.
    pub failures: Vec<DateTime<Utc>>,
}

/// The lane of one device token, under the keyed hash of its device id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceLane {
    pub device: SubjectKey,
    pub lane: Lane,
}

/// What the store keeps per phone number (under its keyed hash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NumberRecord {
    /// The requests without a (valid) device token.
    pub lane: Lane,
    /// One lane per device token that sent to the number, most recently used last.
    pub devices: Vec<DeviceLane>,
    /// Until when the number is known (a code to it was approved within
    /// `OTP_KNOWN_NUMBER_DAYS`).
    pub known_until: Option<DateTime<Utc>>,
    /// When an approval of the number was last added to its prefix's tally.
    pub approval_counted_at: Option<DateTime<Utc>>,
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
    /// Today's shards of the new numbers' share of the budget, read like `budget` (with
    /// the budget and the share on).
    pub new_budget: Option<Vec<Option<u32>>>,
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
    /// The conversion guard pauses the number's prefix (numbers not yet known).
    PrefixPaused,
    DailyBudget,
    /// Numbers not yet known have spent their share of the daily budget.
    NewNumbersBudget,
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
            Self::PrefixPaused => "prefix_paused",
            Self::DailyBudget => "daily_budget",
            Self::NewNumbersBudget => "new_numbers_budget",
        }
    }
}

/// The shards an allowed send took one unit from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reservation {
    pub budget_shard: Option<usize>,
    /// The shard of the new numbers' share (a send to a number not yet known).
    pub new_shard: Option<usize>,
    pub country_shard: Option<usize>,
    /// The units were taken within the levels of an unchallenged send under attack
    /// ([`CHALLENGE_COUNTRY_PERCENT`], [`CHALLENGE_NEW_SHARE_PERCENT`]), so they hold
    /// only within those.
    pub unchallenged: bool,
}

/// A reservation whose unit did not hold in a shard that was full after all (it was not
/// read, or filled since): which of its units exceeded their shard's quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Overdrawn {
    pub budget_shard: Option<usize>,
    pub new_shard: Option<usize>,
    pub country_shard: Option<usize>,
}

/// A prefix the conversion guard pauses with this decision, and the figures why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardTrip {
    pub until: DateTime<Utc>,
    pub sends: u32,
    pub approvals: u32,
    /// The guard's state to store for the prefix.
    pub state: GuardState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// The send is recorded and its code is now the pending one.
    Allowed { expires_at: DateTime<Utc>, reserved: Reservation },
    /// Nothing of the send is recorded; try again after this many seconds (at least 1).
    /// `paused`: the conversion guard pauses the prefix now, which the store records.
    RateLimited { retry_after_seconds: u64, scope: LimitScope, paused: Option<GuardTrip> },
    /// Under attack, this send needs a solved bot challenge: nothing of it is recorded
    /// (but the pause it met, as for `RateLimited`).
    ChallengeRequired { paused: Option<GuardTrip> },
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

    /// Decides a send at `now` for `asker`. If allowed, `records` are updated: the send is
    /// counted everywhere (in the lane of the asker's device token, or of the requests
    /// without one), one unit of each shared cap is reserved in a shard chosen by `pick`
    /// (random, so concurrent senders spread over shards), and `code`, sent on `channel`,
    /// replaces the lane's pending code with a fresh attempt count. If refused, nothing
    /// changes but a pause the guard calls for (`paused`). Every channel counts alike,
    /// toward every limit and cap: one send, one unit. A number that is known (approved
    /// within `OTP_KNOWN_NUMBER_DAYS`) is never paused by the guard, and does not count in
    /// the new numbers' share of the budget.
    pub fn apply(
        &self,
        records: &mut SendRecords,
        asker: Asker<'_>,
        code: CodeHash,
        channel: Channel,
        now: DateTime<Utc>,
        pick: u32,
    ) -> SendDecision {
        let reads = self.reads(asker.country);
        let SendRecords { number, client, range, budget, new_budget, country: country_records } = records;
        let known = number.is_known(now);
        // Under attack, an unchallenged send to a new number meets the caps' lower levels.
        let unchallenged = self.challenge_under_attack && !asker.challenged && !known;
        let failures = self.lane_failures(asker.device.is_some());
        number.tidy(now, |lane| self.lane_needed_until(lane));
        let lane = number.lane_mut(asker.device);
        prune(&mut lane.sends, self.per_number.window, now);
        prune(&mut lane.failures, failures.window, now);
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
            lane.last_sent_at.map(|last| last + self.resend_cooldown - now).filter(|d| *d > TimeDelta::zero()),
            LimitScope::Cooldown,
        );
        consider(window_wait(&lane.sends, self.per_number, now), LimitScope::Number);
        consider(window_wait(&lane.failures, failures, now), LimitScope::NumberLocked);
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
        // A cap's unit, from a shard with room at the send's level (the whole cap, or its
        // lower level for an unchallenged send under attack); with no room at the level but
        // some in the cap, the send needs the challenge; with none, it waits.
        let mut challenge = false;
        let mut reserve = |counts: &mut Vec<Option<u32>>,
                           cap: ShardedCap,
                           level_percent: Option<u32>,
                           pick: u32,
                           wait: TimeDelta,
                           scope: LimitScope| {
            let level = level_percent.map_or(cap, |percent| cap.scaled(percent));
            let shard = level.shard_to_try(counts, pick);
            if shard.is_none() {
                match level_percent.is_some() && cap.shard_to_try(counts, pick).is_some() {
                    true => challenge = true,
                    false => consider(Some(wait), scope),
                }
            }
            shard
        };
        let budget_shard = match (self.budget_cap(), reads.budget) {
            (Some(cap), true) => {
                // No counts at all: a day with nothing counted yet.
                let counts = budget.get_or_insert_with(|| vec![Some(0); BUDGET_SHARDS]);
                counts.resize(BUDGET_SHARDS, Some(0));
                reserve(counts, cap, None, pick, next_day(now) - now, LimitScope::DailyBudget).map(|s| (counts, s))
            }
            _ => None,
        };
        let new_shard = match (self.new_numbers_cap(), reads.budget && !known) {
            (Some(cap), true) => {
                let counts = new_budget.get_or_insert_with(|| vec![Some(0); BUDGET_SHARDS]);
                counts.resize(BUDGET_SHARDS, Some(0));
                let level = unchallenged.then_some(CHALLENGE_NEW_SHARE_PERCENT);
                reserve(counts, cap, level, pick.rotate_left(8), next_day(now) - now, LimitScope::NewNumbersBudget)
                    .map(|s| (counts, s))
            }
            _ => None,
        };
        let mut paused = None;
        let country_shard = match reads.country {
            true => {
                let records = country_records.get_or_insert_default();
                // A country without a cap reserves nothing: only the guard's tally counts it.
                let shard = match self.country_cap(asker.country) {
                    Some(cap) => {
                        records.cap_shards.resize(COUNTRY_SHARDS, Some(0));
                        let level = unchallenged.then_some(CHALLENGE_COUNTRY_PERCENT);
                        let hour = next_hour(now) - now;
                        reserve(
                            &mut records.cap_shards,
                            cap,
                            level,
                            pick.rotate_left(16),
                            hour,
                            LimitScope::CountryHour,
                        )
                    }
                    None => None,
                };
                let pause = match records.guard.paused_until.filter(|until| *until > now) {
                    Some(until) => Some(until),
                    None => match self.guard {
                        Some(guard) if guard.trips(records.last_hour(now)) => {
                            let last_hour = records.last_hour(now);
                            let recent = records.guard.recent_trips(now);
                            let until = now + guard.pause_after(recent);
                            records.guard =
                                GuardState { paused_until: Some(until), trips: recent + 1, last_trip_at: Some(now) };
                            paused = Some(GuardTrip {
                                until,
                                sends: last_hour.sends.round() as u32,
                                approvals: last_hour.approvals.round() as u32,
                                state: records.guard,
                            });
                            Some(until)
                        }
                        _ => None,
                    },
                };
                // The pause holds back numbers not yet known; under attack, a solved
                // challenge stands in for it.
                if let Some(until) = pause.filter(|_| !known) {
                    match (self.challenge_under_attack, asker.challenged) {
                        (false, _) => consider(Some(until - now), LimitScope::PrefixPaused),
                        (true, false) => challenge = true,
                        (true, true) => {}
                    }
                }
                Some((records, shard))
            }
            false => None,
        };

        if let Some((delta, scope)) = wait {
            return SendDecision::RateLimited { retry_after_seconds: whole_seconds_up(delta), scope, paused };
        }
        if challenge {
            return SendDecision::ChallengeRequired { paused };
        }

        let expires_at = now + self.code_ttl;
        lane.sends.push(now);
        lane.last_sent_at = Some(now);
        lane.pending =
            Some(PendingCode { hash: code, channel, created_at: now, expires_at, attempts_left: self.max_attempts });
        client.sends.push(now);
        if let Some(range) = range {
            range.sends.push(now);
        }
        let mut reserved = Reservation { unchallenged, ..Reservation::default() };
        if let Some((counts, shard)) = budget_shard {
            counts[shard] = counts[shard].map(|c| c + 1);
            reserved.budget_shard = Some(shard);
        }
        if let Some((counts, shard)) = new_shard {
            counts[shard] = counts[shard].map(|c| c + 1);
            reserved.new_shard = Some(shard);
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

    /// The failed-attempt cap of a lane: a device token's, or that of the requests without.
    pub fn lane_failures(&self, device: bool) -> WindowLimit {
        if device { self.device_failures } else { self.failures }
    }

    /// The daily budget as shards, if it is on.
    pub fn budget_cap(&self) -> Option<ShardedCap> {
        self.daily_budget.map(|total| ShardedCap { total, shards: BUDGET_SHARDS })
    }

    /// The new numbers' share of the daily budget as shards, if the budget and a share
    /// below the whole of it are on (a share of 100 % is the budget: no counter of its own).
    pub fn new_numbers_cap(&self) -> Option<ShardedCap> {
        let (total, percent) = (self.daily_budget?, self.new_numbers_percent.filter(|p| *p < 100)?);
        Some(ShardedCap { total, shards: BUDGET_SHARDS }.scaled(percent))
    }

    /// The hourly SMS cap of `country` as shards, if it has one.
    pub fn country_cap(&self, country: &str) -> Option<ShardedCap> {
        self.per_country_hour.for_country(country).map(|total| ShardedCap { total, shards: COUNTRY_SHARDS })
    }

    /// Whether the units `reserved` for a send of `country` hold, given the counts their
    /// blind increments brought the shards to (`None` where nothing was reserved). A unit
    /// beyond its shard's quota at the send's level does not hold: the store gives the
    /// whole reservation back, undoes the send and decides it again.
    pub fn held(&self, country: &str, reserved: &Reservation, counted: Counted) -> Result<(), Overdrawn> {
        let level = |cap: Option<ShardedCap>, percent| match reserved.unchallenged {
            true => cap.map(|cap| cap.scaled(percent)),
            false => cap,
        };
        let over = |cap: Option<ShardedCap>, shard: Option<usize>, count: Option<u32>| match (cap, shard, count) {
            (Some(cap), Some(shard), Some(count)) if !cap.holds(shard, count) => Some(shard),
            _ => None,
        };
        let overdrawn = Overdrawn {
            budget_shard: over(self.budget_cap(), reserved.budget_shard, counted.budget),
            new_shard: over(
                level(self.new_numbers_cap(), CHALLENGE_NEW_SHARE_PERCENT),
                reserved.new_shard,
                counted.new_budget,
            ),
            country_shard: over(
                level(self.country_cap(country), CHALLENGE_COUNTRY_PERCENT),
                reserved.country_shard,
                counted.country,
            ),
        };
        match overdrawn {
            Overdrawn { budget_shard: None, new_shard: None, country_shard: None } => Ok(()),
            _ => Err(overdrawn),
        }
    }

    /// Until when some rule of a send still needs `lane`.
    fn lane_needed_until(&self, lane: &Lane) -> Option<DateTime<Utc>> {
        let last_send = lane.last_sent_at.map(|t| t + self.per_number.window.max(self.resend_cooldown));
        let pending = lane.pending.as_ref().map(|p| p.expires_at);
        let failures = lane.failures.last().map(|t| *t + self.failures.window.max(self.device_failures.window));
        last_send.max(pending).max(failures)
    }

    /// When a number's record holds nothing any rule still needs, and may be dropped.
    pub fn number_record_expiry(&self, record: &NumberRecord) -> Option<DateTime<Utc>> {
        record.lanes().map(|lane| self.lane_needed_until(lane)).max().flatten().max(record.needed_until())
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

/// The counts a send's blind increments made, per cap (`None`: no unit there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub budget: Option<u32>,
    pub new_budget: Option<u32>,
    pub country: Option<u32>,
}

impl VerifyPolicy {
    /// Judges one verify attempt at `now` in the lane of `device` (or of the requests
    /// without a device token) and updates the records: the client's attempt is counted
    /// (unless refused), then the lane judges `candidate`. An approval makes the number
    /// known, and is marked for its prefix's tally unless one was within
    /// [`APPROVAL_COUNTED_EVERY`].
    pub fn apply(
        &self,
        number: &mut NumberRecord,
        client: &mut ClientRecord,
        candidate: &CodeHash,
        device: Option<&SubjectKey>,
        now: DateTime<Utc>,
    ) -> VerifyOutcome {
        prune(&mut client.verifies, self.per_client.window, now);
        if let Some(wait) = window_wait(&client.verifies, self.per_client, now) {
            return VerifyOutcome::RateLimited { retry_after_seconds: whole_seconds_up(wait) };
        }
        client.verifies.push(now);
        let failures = if device.is_some() { self.device_failures } else { self.failures };
        // A device token that sent nothing yet has no lane, so no code.
        let Some(lane) = number.lane_of(device) else { return VerifyOutcome::NoPendingCode };
        let outcome = lane.judge(candidate, now, failures);
        if let VerifyOutcome::Approved { .. } = outcome {
            if let Some(known_for) = self.known_for {
                number.known_until = number.known_until.max(Some(now + known_for));
            }
            if number.approval_counted_at.is_none_or(|at| now - at >= APPROVAL_COUNTED_EVERY) {
                number.approval_counted_at = Some(now);
            }
        }
        outcome
    }

    /// When a client's verify attempts are needed by no rule any more.
    pub fn client_record_expiry(&self, record: &ClientRecord) -> Option<DateTime<Utc>> {
        record.verifies.last().map(|t| *t + self.per_client.window)
    }

    /// When what a verify changed in a number's record is needed by no rule any more (the
    /// store keeps any later expiry the send set).
    pub fn number_record_expiry(&self, record: &NumberRecord) -> Option<DateTime<Utc>> {
        let window = self.failures.window.max(self.device_failures.window);
        let lanes = record
            .lanes()
            .map(|lane| lane.failures.last().map(|t| *t + window).max(lane.pending.as_ref().map(|p| p.expires_at)))
            .max()
            .flatten();
        lanes.max(record.needed_until())
    }
}

impl PendingCode {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

impl NumberRecord {
    /// Whether the number is known at `now`.
    pub fn is_known(&self, now: DateTime<Utc>) -> bool {
        self.known_until.is_some_and(|until| until > now)
    }

    /// Every lane: the token-less one first.
    pub fn lanes(&self) -> impl Iterator<Item = &Lane> {
        std::iter::once(&self.lane).chain(self.devices.iter().map(|d| &d.lane))
    }

    /// Until when the number's own facts (known, its last counted approval) are needed.
    fn needed_until(&self) -> Option<DateTime<Utc>> {
        self.known_until.max(self.approval_counted_at.map(|at| at + APPROVAL_COUNTED_EVERY))
    }

    /// The lane of `device` (the token-less one for `None`), made if it is new, and moved
    /// last as the most recently used. Past [`MAX_DEVICE_LANES`] the least recently used
    /// device lane goes.
    pub fn lane_mut(&mut self, device: Option<&SubjectKey>) -> &mut Lane {
        let Some(device) = device else { return &mut self.lane };
        let lane = match self.devices.iter().position(|d| &d.device == device) {
            Some(index) => self.devices.remove(index),
            None => {
                if self.devices.len() >= MAX_DEVICE_LANES {
                    self.devices.remove(0);
                }
                DeviceLane { device: device.clone(), lane: Lane::default() }
            }
        };
        self.devices.push(lane);
        let last = self.devices.len() - 1;
        &mut self.devices[last].lane
    }

    /// The lane of `device` if it has one (the token-less one for `None`).
    pub fn lane_of(&mut self, device: Option<&SubjectKey>) -> Option<&mut Lane> {
        match device {
            None => Some(&mut self.lane),
            Some(device) => self.devices.iter_mut().find(|d| &d.device == device).map(|d| &mut d.lane),
        }
    }

    /// Drops the device lanes that no rule needs at `now`, by `needed_until`.
    pub fn tidy(&mut self, now: DateTime<Utc>, needed_until: impl Fn(&Lane) -> Option<DateTime<Utc>>) {
        self.devices.retain(|d| needed_until(&d.lane).is_some_and(|until| until > now));
    }

    /// Removes the pending code if it is still the one created at `created_at` as `code`
    /// in any lane (its SMS could not be sent). The send stays counted, so a failing send
    /// buys no extra tries.
    pub fn withdraw(&mut self, code: &CodeHash, created_at: DateTime<Utc>) -> bool {
        std::iter::once(&mut self.lane)
            .chain(self.devices.iter_mut().map(|d| &mut d.lane))
            .any(|lane| lane.withdraw(code, created_at))
    }

    /// Takes back a send recorded at `at` in `device`'s lane that never went out (its unit
    /// of a shared cap did not hold, so no SMS was sent): its code, if still the one sent,
    /// and its time in the lane's log, so that neither its cooldown nor its place in the
    /// per-number limit outlives it. Unlike [`Self::withdraw`] (an SMS that failed, which
    /// stays counted), nothing of the send is left. Whether anything changed.
    pub fn unsend(&mut self, device: Option<&SubjectKey>, code: &CodeHash, at: DateTime<Utc>) -> bool {
        let Some(lane) = self.lane_of(device) else { return false };
        let withdrawn = lane.withdraw(code, at);
        let removed = remove_one(&mut lane.sends, at);
        if removed && lane.last_sent_at.is_some_and(|last| stored_instant(last) == stored_instant(at)) {
            lane.last_sent_at = lane.sends.iter().copied().max();
        }
        withdrawn || removed
    }
}

impl ClientRecord {
    /// Takes back a send recorded at `at` that never went out (see [`NumberRecord::unsend`]).
    pub fn unsend(&mut self, at: DateTime<Utc>) -> bool {
        remove_one(&mut self.sends, at)
    }
}

impl SendLog {
    /// Takes back a send recorded at `at` that never went out (see [`NumberRecord::unsend`]).
    pub fn unsend(&mut self, at: DateTime<Utc>) -> bool {
        remove_one(&mut self.sends, at)
    }
}

/// Removes one event at `at` (compared as stored, [`stored_instant`]) from `events`.
fn remove_one(events: &mut Vec<DateTime<Utc>>, at: DateTime<Utc>) -> bool {
    let at = stored_instant(at);
    match events.iter().rposition(|t| stored_instant(*t) == at) {
        Some(index) => {
            events.remove(index);
            true
        }
        None => false,
    }
}

impl Lane {
    /// Judges one attempt with `candidate` at `now`, and updates the lane: a match
    /// removes the code and clears the failures; a wrong try spends one attempt of the
    /// code and counts one failure of the lane; the last of either voids the code.
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

    /// Removes the pending code if it is still the one created at `created_at` as `code`.
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
