//! The caps that hold across all numbers and clients: the daily SMS budget, the hourly
//! cap per country and the conversion guard. Each cap is split over shards whose quotas
//! add up to the cap exactly, so no single record takes every send. A send reserves one
//! unit in one shard: the store adds it without reading the shard first (a blind
//! increment, which no other writer can conflict with) and the unit holds only if the
//! shard's new count is within its quota ([`ShardedCap::holds`]); a unit that does not
//! hold is given back and the send tries a shard with room. A unit is kept only when the
//! count it made is within the quota, so kept units never exceed any shard's quota,
//! whatever the interleaving (docs/FIRESTORE.md has the argument).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeDelta, Timelike, Utc};

/// Shards of the daily budget: each takes about 1/16 of the sends. Sized for a peak of
/// 16 allowed sends per second at Firestore's sustained write rate of about one per
/// second per document (docs/SCALE.md derives it and says when to raise it).
pub const BUDGET_SHARDS: usize = 16;
/// Shards of a country's hourly SMS cap: the same peak, all in one country.
pub const COUNTRY_SHARDS: usize = 16;
/// Shards of a country's hourly tally (SMS and approvals, the conversion guard's
/// figures): blind increments, read whole by every send the guard judges.
pub const TALLY_SHARDS: usize = 2;

/// A cap of `total` split over `shards` counters whose quotas add up to `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardedCap {
    pub total: u32,
    pub shards: usize,
}

impl ShardedCap {
    /// The share of shard `index`: the first `total % shards` shards hold one more.
    pub fn quota(&self, index: usize) -> u32 {
        let shards = u32::try_from(self.shards.max(1)).unwrap_or(u32::MAX);
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        self.total / shards + u32::from(index < self.total % shards)
    }

    /// A shard to reserve a unit from, chosen by `pick` (random, so concurrent senders
    /// spread over the shards) among those not known to be full; `known[i]` is shard `i`'s
    /// count if the step read it, `None` if it did not (a shard not read may have room).
    /// `None` when every shard is known full: the cap is reached.
    pub fn shard_to_try(&self, known: &[Option<u32>], pick: u32) -> Option<usize> {
        let open: Vec<usize> = (0..self.shards)
            .filter(|&i| known.get(i).copied().flatten().is_none_or(|count| count < self.quota(i)))
            .collect();
        if open.is_empty() {
            return None;
        }
        let pick = usize::try_from(pick).unwrap_or(0) % open.len();
        Some(open[pick])
    }

    /// The cap at `percent` of its total (rounded down), over the same shards: a lower
    /// level of it, or a share.
    pub fn scaled(&self, percent: u32) -> ShardedCap {
        let total = u64::from(self.total) * u64::from(percent.min(100)) / 100;
        ShardedCap { total: u32::try_from(total).unwrap_or(self.total), shards: self.shards }
    }

    /// Whether a unit that brought shard `index` to `count` is within its quota.
    pub fn holds(&self, index: usize, count: u32) -> bool {
        count <= self.quota(index)
    }
}

/// The per-country hourly cap: a default for every country (`None`: off) and exceptions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryCap {
    pub default: Option<u32>,
    /// ISO code (or `001`) to its own cap; `None` lifts the cap for that country.
    pub overrides: BTreeMap<String, Option<u32>>,
}

impl CountryCap {
    pub fn for_country(&self, country: &str) -> Option<u32> {
        self.overrides.get(country).copied().unwrap_or(self.default)
    }

    pub fn is_off(&self) -> bool {
        self.default.is_none() && self.overrides.values().all(Option::is_none)
    }
}

/// Pauses a country whose sends stop turning into sign-ins: with at least `min_sends`
/// sends in the last hour and fewer than `min_conversion_percent` % of them approved.
/// The first pause lasts `pause`; each further one within a day of the last one's end
/// doubles, up to a day: a pumping run that waits out one pause meets a longer one, where
/// a fixed pause would let it through again at every end. The day runs from the end of the
/// pause, not from its trip: counted from the trip, a 24 h pause would end with its trips
/// forgotten, and the next run would start again at the first, shortest pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConversionGuard {
    pub min_sends: u32,
    pub min_conversion_percent: u32,
    pub pause: TimeDelta,
}

/// The longest pause, and how long after a pause's end its trips count toward the doubling.
pub const GUARD_MEMORY: TimeDelta = TimeDelta::days(1);

/// Figures of the last hour for one country, from its current and previous hourly
/// counters: the previous hour is weighted by the part of it still within the last 60
/// minutes (a sliding window over fixed buckets).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastHour {
    pub sends: f64,
    pub approvals: f64,
}

impl ConversionGuard {
    /// The length of a pause that follows `recent_trips` trips within [`GUARD_MEMORY`].
    pub fn pause_after(&self, recent_trips: u32) -> TimeDelta {
        let factor = 1i32.checked_shl(recent_trips.min(16)).unwrap_or(i32::MAX);
        self.pause.checked_mul(factor).unwrap_or(GUARD_MEMORY).min(GUARD_MEMORY.max(self.pause))
    }

    /// Whether the figures call for a pause.
    pub fn trips(&self, last_hour: LastHour) -> bool {
        last_hour.sends >= f64::from(self.min_sends)
            && last_hour.approvals * 100.0 < last_hour.sends * f64::from(self.min_conversion_percent)
    }
}

/// What the store holds for one country, as a send reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountryRecords {
    /// This UTC hour's units of the country's SMS cap, per shard, as far as the step read
    /// them (`None`: not read). Empty when the country has no cap.
    pub cap_shards: Vec<Option<u32>>,
    /// SMS this UTC hour (the tally, all its shards together).
    pub sent: u32,
    /// SMS of the previous UTC hour.
    pub sent_before: u32,
    /// Approvals this UTC hour and the previous one, all shards together.
    pub approvals: u32,
    pub approvals_before: u32,
    /// The SMS of this UTC hour and the previous one that the provider reported as not
    /// reaching the phone for a carrier's reason (`DeliveryFailure::is_carrier_problem`):
    /// left out of the guard's sends, since no one could have approved them.
    pub undelivered: u32,
    pub undelivered_before: u32,
    /// The conversion guard's state for the country.
    pub guard: GuardState,
}

/// What the conversion guard remembers of a country.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardState {
    /// Until when the country is paused.
    pub paused_until: Option<DateTime<Utc>>,
    /// Trips in a row, each within [`GUARD_MEMORY`] of the end of the pause before.
    pub trips: u32,
    pub last_trip_at: Option<DateTime<Utc>>,
}

impl GuardState {
    /// Trips that still count toward the next pause's length at `now`: those whose last
    /// pause ended less than [`GUARD_MEMORY`] ago (a state written before pauses were kept
    /// falls back to its last trip).
    pub fn recent_trips(&self, now: DateTime<Utc>) -> u32 {
        match self.paused_until.or(self.last_trip_at) {
            Some(end) if now - end < GUARD_MEMORY => self.trips,
            _ => 0,
        }
    }
}

impl CountryRecords {
    pub fn last_hour(&self, now: DateTime<Utc>) -> LastHour {
        let into_hour = f64::from(now.minute() * 60 + now.second()) / 3600.0;
        let weight = 1.0 - into_hour;
        let (sent, sent_before) =
            (self.sent.saturating_sub(self.undelivered), self.sent_before.saturating_sub(self.undelivered_before));
        LastHour {
            sends: f64::from(sent) + f64::from(sent_before) * weight,
            approvals: f64::from(self.approvals) + f64::from(self.approvals_before) * weight,
        }
    }
}

/// The UTC day of `now` as the store names its budget counters: `20261124`.
pub fn day_stamp(now: DateTime<Utc>) -> String {
    format!("{:04}{:02}{:02}", now.year(), now.month(), now.day())
}

/// The UTC hour of `now` as the store names its hourly counters: `2026112415`.
pub fn hour_stamp(now: DateTime<Utc>) -> String {
    format!("{}{:02}", day_stamp(now), now.hour())
}

/// The start of the next UTC day after `now`.
pub fn next_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let start = now.date_naive().and_hms_opt(0, 0, 0).map(|d| d.and_utc()).unwrap_or(now);
    start + TimeDelta::days(1)
}

/// The start of the next UTC hour after `now`.
pub fn next_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    let start = now.with_minute(0).and_then(|t| t.with_second(0)).and_then(|t| t.with_nanosecond(0)).unwrap_or(now);
    start + TimeDelta::hours(1)
}

/// The same time an hour earlier, to name the previous hour's counters.
pub fn previous_hour(now: DateTime<Utc>) -> DateTime<Utc> {
    now - TimeDelta::hours(1)
}

/// Whether an event at `at` is still in the tally's two hours (this one and the last) at
/// `now`.
pub fn in_tally(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    at <= now && hour_stamp(at) >= hour_stamp(previous_hour(now))
}

/// When a budget counter of the day of `now` is needed by no rule any more.
pub fn budget_counter_expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    next_day(now)
}

/// When an hourly country counter of the hour of `now` is needed by no rule any more:
/// an hour after its hour ends, while it is the previous hour's.
pub fn country_counter_expiry(now: DateTime<Utc>) -> DateTime<Utc> {
    next_hour(now) + TimeDelta::hours(1)
}

/// When a country's guard state is needed by no rule any more: its pause is over and
/// its last trip no longer lengthens the next.
pub fn guard_expiry(state: &GuardState) -> DateTime<Utc> {
    let remembered = state.paused_until.or(state.last_trip_at).map(|end| end + GUARD_MEMORY);
    state.paused_until.max(remembered).unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

/// The counter name of the budget shard `shard` on the day of `now`. The name holds the
/// shard count, so a change of it starts fresh counters instead of mixing two sets of
/// quotas (docs/FIRESTORE.md: deploy such a change at 00:00 UTC).
pub fn budget_counter(now: DateTime<Utc>, shard: usize) -> String {
    format!("{}-{shard}of{BUDGET_SHARDS}", day_stamp(now))
}

/// The counter name of the shard `shard` of the new numbers' share on the day of `now`.
pub fn new_budget_counter(now: DateTime<Utc>, shard: usize) -> String {
    format!("{}-new-{shard}of{BUDGET_SHARDS}", day_stamp(now))
}

/// The counter name of a country's hourly cap shard at the hour of `at`.
pub fn country_counter(country: &str, at: DateTime<Utc>, shard: usize) -> String {
    format!("{country}-{}-{shard}of{COUNTRY_SHARDS}", hour_stamp(at))
}

/// The name of a prefix's hourly tally shard (its SMS and approvals) at the hour of `at`.
pub fn tally_counter(prefix: &str, at: DateTime<Utc>, shard: usize) -> String {
    format!("{prefix}-{}-{shard}", hour_stamp(at))
}

/// The tally shard a send or an approval at `at` adds to: one at random, so concurrent
/// writers of a prefix seldom write the same document.
pub fn random_tally_counter(prefix: &str, at: DateTime<Utc>) -> String {
    tally_counter(prefix, at, rand::random_range(0..TALLY_SHARDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().into()
    }

    #[test]
    fn quotas_add_up_to_the_cap_exactly() {
        for total in [0, 1, 7, 8, 9, 50, 2000, 2001] {
            let cap = ShardedCap { total, shards: BUDGET_SHARDS };
            let sum: u32 = (0..BUDGET_SHARDS).map(|i| cap.quota(i)).sum();
            assert_eq!(sum, total, "{total}");
            let spread = (0..BUDGET_SHARDS).map(|i| cap.quota(i)).max().unwrap()
                - (0..BUDGET_SHARDS).map(|i| cap.quota(i)).min().unwrap();
            assert!(spread <= 1, "{total}: shards differ by at most one");
        }
    }

    #[test]
    fn a_shard_with_room_is_found_until_the_cap_is_reached() {
        let cap = ShardedCap { total: 10, shards: 4 };
        let mut counts = vec![Some(0); 4];
        let mut taken = 0;
        for pick in 0..100u32 {
            match cap.shard_to_try(&counts, pick.wrapping_mul(2_654_435_761)) {
                Some(shard) => {
                    counts[shard] = counts[shard].map(|c| c + 1);
                    taken += 1;
                }
                None => break,
            }
        }
        assert_eq!(taken, 10);
        assert_eq!(counts, vec![Some(3), Some(3), Some(2), Some(2)]);
        assert_eq!(cap.shard_to_try(&counts, 0), None);
        assert_eq!(ShardedCap { total: 0, shards: 4 }.shard_to_try(&[Some(0); 4], 3), None);
    }

    #[test]
    fn picks_spread_over_the_shards_not_known_full() {
        let cap = ShardedCap { total: 100, shards: 4 };
        let picked: std::collections::BTreeSet<_> =
            (0..4).filter_map(|pick| cap.shard_to_try(&[None, Some(25), Some(3), None], pick)).collect();
        assert_eq!(picked, [0, 2, 3].into_iter().collect(), "the full shard 1 is never picked");
        assert_eq!(cap.shard_to_try(&[None; 4], 7), Some(3), "a shard not read may have room");
    }

    #[test]
    fn a_unit_holds_only_within_its_shards_quota() {
        let cap = ShardedCap { total: 10, shards: 4 };
        assert!(cap.holds(0, 3) && !cap.holds(0, 4), "shard 0 has 3");
        assert!(cap.holds(3, 2) && !cap.holds(3, 3), "shard 3 has 2");
        assert!(!ShardedCap { total: 0, shards: 4 }.holds(0, 1));
    }

    #[test]
    fn country_overrides_win_and_can_lift_the_cap() {
        let cap = CountryCap {
            default: Some(200),
            overrides: [("US".to_owned(), Some(1000)), ("GB".to_owned(), None)].into_iter().collect(),
        };
        assert_eq!(cap.for_country("US"), Some(1000));
        assert_eq!(cap.for_country("GB"), None);
        assert_eq!(cap.for_country("FR"), Some(200));
        assert!(!cap.is_off());
        assert!(CountryCap::default().is_off());
    }

    #[test]
    fn pauses_double_up_to_a_day() {
        let guard = ConversionGuard { min_sends: 30, min_conversion_percent: 20, pause: TimeDelta::hours(1) };
        let hours: Vec<i64> = (0..7).map(|n| guard.pause_after(n).num_hours()).collect();
        assert_eq!(hours, [1, 2, 4, 8, 16, 24, 24]);
        let long = ConversionGuard { pause: TimeDelta::days(2), ..guard };
        assert_eq!(long.pause_after(3), TimeDelta::days(2), "a configured pause over a day is kept as it is");
        let state = GuardState { paused_until: None, trips: 3, last_trip_at: Some(at("2026-11-24T10:00:00Z")) };
        assert_eq!(state.recent_trips(at("2026-11-25T09:59:59Z")), 3);
        assert_eq!(state.recent_trips(at("2026-11-25T10:00:00Z")), 0, "a day without a trip forgets them");
        // A day's pause: its trips are remembered for a day after it ends, not after it began.
        let state = GuardState {
            paused_until: Some(at("2026-11-25T10:00:00Z")),
            trips: 6,
            last_trip_at: Some(at("2026-11-24T10:00:00Z")),
        };
        assert_eq!(state.recent_trips(at("2026-11-25T10:00:01Z")), 6, "the next trip after the pause gets 24 h");
        assert_eq!(guard.pause_after(state.recent_trips(at("2026-11-25T10:00:01Z"))), TimeDelta::days(1));
        assert_eq!(state.recent_trips(at("2026-11-26T09:59:59Z")), 6);
        assert_eq!(state.recent_trips(at("2026-11-26T10:00:00Z")), 0, "a day after the pause's end forgets them");
        assert_eq!(guard_expiry(&state), at("2026-11-26T10:00:00Z"));
    }

    #[test]
    fn the_guard_trips_on_enough_sends_with_too_few_approvals() {
        let guard = ConversionGuard { min_sends: 30, min_conversion_percent: 20, pause: TimeDelta::hours(1) };
        assert!(!guard.trips(LastHour { sends: 29.0, approvals: 0.0 }), "too few sends to judge");
        assert!(guard.trips(LastHour { sends: 30.0, approvals: 5.0 }), "5/30 is under 20 %");
        assert!(!guard.trips(LastHour { sends: 30.0, approvals: 6.0 }), "6/30 is 20 %");
        assert!(!guard.trips(LastHour { sends: 1000.0, approvals: 800.0 }));
    }

    #[test]
    fn the_previous_hour_fades_out_over_the_current_one() {
        let records =
            CountryRecords { sent: 10, sent_before: 100, approvals: 2, approvals_before: 40, ..Default::default() };
        let start = records.last_hour(at("2026-11-24T15:00:00Z"));
        assert_eq!(start, LastHour { sends: 110.0, approvals: 42.0 });
        let half = records.last_hour(at("2026-11-24T15:30:00Z"));
        assert_eq!(half, LastHour { sends: 60.0, approvals: 22.0 });
        // SMS that never reached a phone are no sends the guard judges.
        let carrier = CountryRecords { undelivered: 4, undelivered_before: 100, ..records };
        assert_eq!(carrier.last_hour(at("2026-11-24T15:00:00Z")), LastHour { sends: 6.0, approvals: 42.0 });
    }

    #[test]
    fn stamps_and_boundaries_are_utc() {
        let now = at("2026-11-24T23:59:59.5Z");
        assert_eq!(day_stamp(now), "20261124");
        assert_eq!(hour_stamp(now), "2026112423");
        assert_eq!(next_day(now), at("2026-11-25T00:00:00Z"));
        assert_eq!(next_hour(now), at("2026-11-25T00:00:00Z"));
        assert_eq!(next_hour(at("2026-11-24T15:00:00Z")), at("2026-11-24T16:00:00Z"));
        assert_eq!(budget_counter(now, 3), "20261124-3of16");
        assert_eq!(country_counter("US", previous_hour(now), 0), "US-2026112422-0of16");
        assert_eq!(tally_counter("US", previous_hour(now), 1), "US-2026112422-1");
        let shards: Vec<String> = (0..TALLY_SHARDS).map(|shard| tally_counter("US", now, shard)).collect();
        let picked: std::collections::HashSet<String> = (0..200).map(|_| random_tally_counter("US", now)).collect();
        assert!(picked.iter().all(|id| shards.contains(id)), "{picked:?}");
        assert!(picked.len() > 1, "approvals spread over the shards");
    }
}
