//! The send and verify rules, as pure functions over a number's and a client's records.
//! A store runs them inside one atomic step, so every backend enforces the same rules.

use chrono::{DateTime, TimeDelta, Utc};

use super::code::CodeHash;

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
}

/// The code waiting for a number: only its hash, with its expiry and tries left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    pub hash: CodeHash,
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
}

/// What the store keeps per client IP (under its keyed hash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpRecord {
    pub sends: Vec<DateTime<Utc>>,
}

/// What the store keeps per number range: the same sliding log of sends as a client's.
pub type RangeRecord = IpRecord;

/// Which limit refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    Cooldown,
    Number,
    Client,
    Range,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// The send is recorded and its code is now the pending one.
    Allowed { expires_at: DateTime<Utc> },
    /// Nothing changed; try again after this many seconds (at least 1).
    RateLimited { retry_after_seconds: u64, scope: LimitScope },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The code matched; it is gone now, so it can never approve again.
    Approved,
    /// Wrong code; this many tries are left.
    Incorrect { attempts_remaining: u32 },
    /// Wrong code, and it was the last try: the code is void.
    AttemptsExhausted,
    /// No code is pending: never sent, expired, used, or voided.
    NoPendingCode,
}

impl SendPolicy {
    /// Decides a send at `now`. If allowed, the records are updated: the send is
    /// counted and `code` replaces any pending code, with a fresh attempt count. `range`
    /// is the record of the number's range; with `per_range` off it is left untouched.
    pub fn apply(
        &self,
        number: &mut NumberRecord,
        client: &mut IpRecord,
        range: &mut RangeRecord,
        code: CodeHash,
        now: DateTime<Utc>,
    ) -> SendDecision {
        prune(&mut number.sends, self.per_number.window, now);
        prune(&mut client.sends, self.per_client.window, now);
        if let Some(per_range) = self.per_range {
            prune(&mut range.sends, per_range.window, now);
        }

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
        consider(window_wait(&client.sends, self.per_client, now), LimitScope::Client);
        if let Some(per_range) = self.per_range {
            consider(window_wait(&range.sends, per_range, now), LimitScope::Range);
        }

        if let Some((delta, scope)) = wait {
            return SendDecision::RateLimited { retry_after_seconds: whole_seconds_up(delta), scope };
        }

        let expires_at = now + self.code_ttl;
        number.sends.push(now);
        number.last_sent_at = Some(now);
        number.pending =
            Some(PendingCode { hash: code, created_at: now, expires_at, attempts_left: self.max_attempts });
        client.sends.push(now);
        if self.per_range.is_some() {
            range.sends.push(now);
        }
        SendDecision::Allowed { expires_at }
    }

    /// When a number's record holds nothing any rule still needs, and may be dropped.
    pub fn number_record_expiry(&self, record: &NumberRecord) -> Option<DateTime<Utc>> {
        let last_send = record.last_sent_at.map(|t| t + self.per_number.window.max(self.resend_cooldown));
        let pending = record.pending.as_ref().map(|p| p.expires_at);
        last_send.max(pending)
    }

    /// When a client's record holds nothing any rule still needs.
    pub fn client_record_expiry(&self, record: &IpRecord) -> Option<DateTime<Utc>> {
        record.sends.last().map(|t| *t + self.per_client.window)
    }

    /// When a range's record holds nothing any rule still needs (`None` with the limit off:
    /// no such record is kept then).
    pub fn range_record_expiry(&self, record: &RangeRecord) -> Option<DateTime<Utc>> {
        let per_range = self.per_range?;
        record.sends.last().map(|t| *t + per_range.window)
    }
}

impl PendingCode {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }
}

impl NumberRecord {
    /// Judges one attempt with `candidate` at `now`, and updates the record: a match
    /// or the last wrong try removes the code, a wrong try spends one attempt.
    pub fn judge(&mut self, candidate: &CodeHash, now: DateTime<Utc>) -> VerifyOutcome {
        let Some(pending) = self.pending.as_mut() else {
            return VerifyOutcome::NoPendingCode;
        };
        if pending.is_expired(now) || pending.attempts_left == 0 {
            self.pending = None;
            return VerifyOutcome::NoPendingCode;
        }
        if pending.hash.matches(candidate) {
            self.pending = None;
            return VerifyOutcome::Approved;
        }
        pending.attempts_left -= 1;
        if pending.attempts_left == 0 {
            self.pending = None;
            VerifyOutcome::AttemptsExhausted
        } else {
            VerifyOutcome::Incorrect { attempts_remaining: pending.attempts_left }
        }
    }

    /// Removes the pending code if it is still `code` (its SMS could not be sent).
    /// The send stays counted, so a failing send buys no extra tries.
    pub fn withdraw(&mut self, code: &CodeHash) -> bool {
        if self.pending.as_ref().is_some_and(|p| p.hash.matches(code)) {
            self.pending = None;
            true
        } else {
            false
        }
    }
}

fn prune(sends: &mut Vec<DateTime<Utc>>, window: TimeDelta, now: DateTime<Utc>) {
    sends.retain(|t| *t + window > now);
}

/// How long until a send fits in the window again, if it does not now.
fn window_wait(sends: &[DateTime<Utc>], limit: WindowLimit, now: DateTime<Utc>) -> Option<TimeDelta> {
    let max = usize::try_from(limit.max).unwrap_or(usize::MAX);
    if sends.len() < max {
        return None;
    }
    // The send that must leave the window before another fits.
    let blocking = sends[sends.len() - max];
    Some(blocking + limit.window - now)
}

fn whole_seconds_up(delta: TimeDelta) -> u64 {
    let millis = delta.num_milliseconds().max(1);
    u64::try_from(millis).unwrap_or(1).div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::code::{CodeLength, OtpCode, Pepper};

    fn t0() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z").unwrap().into()
    }

    fn secs(s: i64) -> TimeDelta {
        TimeDelta::seconds(s)
    }

    fn policy() -> SendPolicy {
        SendPolicy {
            code_ttl: secs(600),
            max_attempts: 5,
            resend_cooldown: secs(60),
            per_number: WindowLimit { max: 5, window: secs(3600) },
            per_client: WindowLimit { max: 5, window: secs(900) },
            per_range: None,
        }
    }

    fn with_range(max: u32) -> SendPolicy {
        SendPolicy { per_range: Some(WindowLimit { max, window: secs(3600) }), ..policy() }
    }

    fn hash(code: &str) -> CodeHash {
        Pepper::new(b"k".to_vec()).hash_code("+14155550123", &OtpCode::parse(code, CodeLength::default()).unwrap())
    }

    #[test]
    fn first_send_is_allowed_and_sets_the_code() {
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        let d = policy().apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0());
        assert_eq!(d, SendDecision::Allowed { expires_at: t0() + secs(600) });
        assert_eq!(n.pending.as_ref().unwrap().attempts_left, 5);
        assert_eq!(n.sends, vec![t0()]);
        assert_eq!(c.sends, vec![t0()]);
    }

    #[test]
    fn cooldown_holds_until_its_last_second() {
        let p = policy();
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0());
        let before = n.clone();
        assert_eq!(
            p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("222222"), t0() + secs(1)),
            SendDecision::RateLimited { retry_after_seconds: 59, scope: LimitScope::Cooldown }
        );
        assert_eq!(
            p.apply(
                &mut n,
                &mut c,
                &mut RangeRecord::default(),
                hash("222222"),
                t0() + TimeDelta::milliseconds(59_500)
            ),
            SendDecision::RateLimited { retry_after_seconds: 1, scope: LimitScope::Cooldown }
        );
        assert_eq!(n, before, "a refused send changes nothing");
        assert!(matches!(
            p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("222222"), t0() + secs(60)),
            SendDecision::Allowed { .. }
        ));
    }

    #[test]
    fn per_number_window_slides() {
        let p = policy();
        let mut n = NumberRecord::default();
        for i in 0..5 {
            let mut c = IpRecord::default();
            assert!(matches!(
                p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0() + secs(60 * i)),
                SendDecision::Allowed { .. }
            ));
        }
        let mut c = IpRecord::default();
        let at = t0() + secs(300);
        assert_eq!(
            p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), at),
            SendDecision::RateLimited { retry_after_seconds: 3300, scope: LimitScope::Number }
        );
        assert!(matches!(
            p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0() + secs(3599)),
            SendDecision::RateLimited { retry_after_seconds: 1, scope: LimitScope::Number }
        ));
        assert!(matches!(
            p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0() + secs(3600)),
            SendDecision::Allowed { .. }
        ));
        assert_eq!(n.sends.len(), 5, "the log stays bounded by the limit");
    }

    #[test]
    fn per_client_window_counts_sends_to_any_number() {
        let p = policy();
        let mut c = IpRecord::default();
        for i in 0..5 {
            let mut n = NumberRecord::default();
            assert!(matches!(
                p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0() + secs(i)),
                SendDecision::Allowed { .. }
            ));
        }
        let mut n = NumberRecord::default();
        assert_eq!(
            p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0() + secs(10)),
            SendDecision::RateLimited { retry_after_seconds: 890, scope: LimitScope::Client }
        );
        assert_eq!(n, NumberRecord::default());
        assert!(matches!(
            p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0() + secs(900)),
            SendDecision::Allowed { .. }
        ));
    }

    #[test]
    fn the_longest_wait_is_reported() {
        let p = policy();
        let mut c = IpRecord { sends: vec![t0(); 5] };
        let mut n = NumberRecord { last_sent_at: Some(t0()), sends: vec![t0()], pending: None };
        assert_eq!(
            p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0() + secs(1)),
            SendDecision::RateLimited { retry_after_seconds: 899, scope: LimitScope::Client }
        );
    }

    #[test]
    fn per_range_window_counts_sends_to_any_number_from_any_client() {
        let p = with_range(3);
        let mut r = RangeRecord::default();
        for i in 0..3 {
            let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
            assert!(matches!(
                p.apply(&mut n, &mut c, &mut r, hash("111111"), t0() + secs(i)),
                SendDecision::Allowed { .. }
            ));
        }
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        assert_eq!(
            p.apply(&mut n, &mut c, &mut r, hash("111111"), t0() + secs(10)),
            SendDecision::RateLimited { retry_after_seconds: 3590, scope: LimitScope::Range }
        );
        assert_eq!((n, c), (NumberRecord::default(), IpRecord::default()), "a refused send changes nothing");
        assert_eq!(r.sends.len(), 3);
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        assert!(matches!(
            p.apply(&mut n, &mut c, &mut r, hash("111111"), t0() + secs(3599)),
            SendDecision::RateLimited { retry_after_seconds: 1, scope: LimitScope::Range }
        ));
        assert!(matches!(
            p.apply(&mut n, &mut c, &mut r, hash("111111"), t0() + secs(3600)),
            SendDecision::Allowed { .. }
        ));
        assert_eq!(r.sends.len(), 3, "the log stays bounded by the limit");
    }

    #[test]
    fn per_range_off_leaves_the_range_record_alone() {
        let p = policy();
        let mut r = RangeRecord { sends: vec![t0(); 50] };
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        assert!(matches!(p.apply(&mut n, &mut c, &mut r, hash("111111"), t0()), SendDecision::Allowed { .. }));
        assert_eq!(r, RangeRecord { sends: vec![t0(); 50] }, "neither counted nor pruned");
        assert_eq!(p.range_record_expiry(&r), None);
    }

    #[test]
    fn the_longest_wait_is_reported_with_the_range_too() {
        let p = with_range(2);
        let mut r = RangeRecord { sends: vec![t0(), t0() + secs(5)] };
        let mut c = IpRecord { sends: vec![t0(); 5] };
        let mut n = NumberRecord::default();
        assert_eq!(
            p.apply(&mut n, &mut c, &mut r, hash("111111"), t0() + secs(10)),
            SendDecision::RateLimited { retry_after_seconds: 3590, scope: LimitScope::Range },
            "the range wait (3590 s) outlasts the client's (890 s)"
        );
        let mut r = RangeRecord { sends: vec![t0() - secs(3000), t0() - secs(3000)] };
        assert_eq!(
            p.apply(&mut n, &mut c, &mut r, hash("111111"), t0() + secs(10)),
            SendDecision::RateLimited { retry_after_seconds: 890, scope: LimitScope::Client },
            "the client wait (890 s) outlasts the range's (590 s)"
        );
    }

    #[test]
    fn right_code_approves_once() {
        let p = policy();
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("123456"), t0());
        assert_eq!(n.judge(&hash("123456"), t0() + secs(5)), VerifyOutcome::Approved);
        assert_eq!(n.judge(&hash("123456"), t0() + secs(6)), VerifyOutcome::NoPendingCode);
    }

    #[test]
    fn wrong_codes_spend_attempts_then_void_the_code() {
        let p = policy();
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("123456"), t0());
        for left in (1..5).rev() {
            assert_eq!(n.judge(&hash("000000"), t0()), VerifyOutcome::Incorrect { attempts_remaining: left });
        }
        assert_eq!(n.judge(&hash("000000"), t0()), VerifyOutcome::AttemptsExhausted);
        assert_eq!(n.judge(&hash("123456"), t0()), VerifyOutcome::NoPendingCode, "void even for the right code");
    }

    #[test]
    fn code_expires_at_its_ttl() {
        let p = policy();
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("123456"), t0());
        let mut early = n.clone();
        assert_eq!(early.judge(&hash("123456"), t0() + secs(599)), VerifyOutcome::Approved);
        assert_eq!(n.judge(&hash("123456"), t0() + secs(600)), VerifyOutcome::NoPendingCode);
        assert!(n.pending.is_none());
    }

    #[test]
    fn resend_replaces_the_code_and_resets_attempts() {
        let p = policy();
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0());
        n.judge(&hash("000000"), t0());
        n.judge(&hash("000000"), t0());
        p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("222222"), t0() + secs(60));
        assert_eq!(n.pending.as_ref().unwrap().attempts_left, 5);
        let mut old = n.clone();
        assert_eq!(old.judge(&hash("111111"), t0() + secs(61)), VerifyOutcome::Incorrect { attempts_remaining: 4 });
        assert_eq!(n.judge(&hash("222222"), t0() + secs(61)), VerifyOutcome::Approved);
    }

    #[test]
    fn withdraw_removes_only_the_same_code() {
        let p = policy();
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0());
        assert!(!n.withdraw(&hash("222222")));
        assert!(n.pending.is_some());
        assert!(n.withdraw(&hash("111111")));
        assert!(n.pending.is_none());
        assert_eq!(n.sends.len(), 1, "the failed send still counts");
    }

    #[test]
    fn record_expiry_covers_every_rule() {
        let p = policy();
        let (mut n, mut c) = (NumberRecord::default(), IpRecord::default());
        p.apply(&mut n, &mut c, &mut RangeRecord::default(), hash("111111"), t0());
        assert_eq!(p.number_record_expiry(&n), Some(t0() + secs(3600)));
        assert_eq!(p.client_record_expiry(&c), Some(t0() + secs(900)));
        let p = with_range(3);
        let (mut n, mut c, mut r) = (NumberRecord::default(), IpRecord::default(), RangeRecord::default());
        assert_eq!(p.range_record_expiry(&r), None, "an empty record is needed by no rule");
        p.apply(&mut n, &mut c, &mut r, hash("111111"), t0());
        assert_eq!(p.range_record_expiry(&r), Some(t0() + secs(3600)));
    }
}
