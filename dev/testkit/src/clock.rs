//! The tests' clock: it moves only when told to, so limits and expiry are tested to the
//! second.

use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use otp_core::ports::Clock;

/// Where every test clock starts: 2026-11-24T15:00:00Z.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_532_400, 0).unwrap_or_default()
}

/// [`t0`] plus 123,456,789 ns: an instant with sub-microsecond digits, which the memory
/// store keeps and Firestore drops (it stores microseconds). A store test that starts
/// here sees any comparison that only holds at one precision.
pub fn t0_ns() -> DateTime<Utc> {
    t0() + TimeDelta::nanoseconds(123_456_789)
}

pub fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    pub fn advance(&self, by: TimeDelta) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
}

impl Default for ManualClock {
    /// A clock at [`t0`].
    fn default() -> Self {
        Self::new(t0())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_starts_at_t0_and_moves_only_when_told() {
        assert_eq!(t0().to_rfc3339(), "2026-11-24T15:00:00+00:00");
        let clock = ManualClock::default();
        assert_eq!(clock.now(), t0());
        clock.advance(secs(90));
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(90));
    }

    #[test]
    fn t0_ns_has_digits_below_the_microsecond() {
        assert_eq!(t0_ns().timestamp_subsec_nanos() % 1_000, 789);
        assert_eq!(t0_ns().timestamp(), t0().timestamp());
    }
}
