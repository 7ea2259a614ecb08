use super::*;
use crate::domain::code::{CodeLength, OtpCode, Pepper};
use crate::domain::quota::{ConversionGuard, CountryCap, GuardState};

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T15:00:00Z").unwrap().into()
}

fn secs(s: i64) -> TimeDelta {
    TimeDelta::seconds(s)
}

/// A request without a device token or a challenge, for a number of `country` (its
/// prefix named after it).
fn asker(country: &str) -> Asker<'_> {
    Asker { country, prefix: country, device: None, challenged: false }
}

fn us() -> Asker<'static> {
    asker("US")
}

fn policy() -> SendPolicy {
    SendPolicy {
        code_ttl: secs(600),
        max_attempts: 5,
        resend_cooldown: secs(60),
        per_number: WindowLimit { max: 5, window: secs(3600) },
        per_client: WindowLimit { max: 5, window: secs(900) },
        per_range: None,
        failures: failures(),
        device_failures: WindowLimit { max: 10, window: secs(86_400) },
        daily_budget: None,
        new_numbers_percent: None,
        per_country_hour: CountryCap::default(),
        guard: None,
        challenge_under_attack: false,
    }
}

fn with_range(max: u32) -> SendPolicy {
    SendPolicy { per_range: Some(WindowLimit { max, window: secs(3600) }), ..policy() }
}

fn hash(code: &str) -> CodeHash {
    Pepper::new(b"k".to_vec()).hash_code("+14155550123", &OtpCode::parse(code, CodeLength::default()).unwrap())
}

fn failures() -> WindowLimit {
    WindowLimit { max: 20, window: secs(86_400) }
}

/// One send of `code` at `at` to a US number, with the range, budget and country caps as
/// `p` has them; the number's and client's records are updated in place.
fn send(p: &SendPolicy, n: &mut NumberRecord, c: &mut ClientRecord, code: CodeHash, at: DateTime<Utc>) -> SendDecision {
    let mut records = SendRecords { number: std::mem::take(n), client: std::mem::take(c), ..Default::default() };
    let decision = p.apply(&mut records, us(), code, Channel::Sms, at, 0);
    (*n, *c) = (records.number, records.client);
    decision
}

fn send_in_range(
    p: &SendPolicy,
    n: &mut NumberRecord,
    c: &mut ClientRecord,
    r: &mut SendLog,
    code: CodeHash,
    at: DateTime<Utc>,
) -> SendDecision {
    let mut records = SendRecords {
        number: std::mem::take(n),
        client: std::mem::take(c),
        range: Some(std::mem::take(r)),
        ..Default::default()
    };
    let decision = p.apply(&mut records, us(), code, Channel::Sms, at, 0);
    (*n, *c, *r) = (records.number, records.client, records.range.unwrap_or_default());
    decision
}

#[test]
fn first_send_is_allowed_and_sets_the_code() {
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    let d = send(&policy(), &mut n, &mut c, hash("111111"), t0());
    assert_eq!(d, SendDecision::Allowed { expires_at: t0() + secs(600), reserved: Reservation::default() });
    assert_eq!(n.lane.pending.as_ref().unwrap().attempts_left, 5);
    assert_eq!(n.lane.sends, vec![t0()]);
    assert_eq!(c.sends, vec![t0()]);
}

#[test]
fn cooldown_holds_until_its_last_second() {
    let p = policy();
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("111111"), t0());
    let before = n.clone();
    assert_eq!(
        send(&p, &mut n, &mut c, hash("222222"), t0() + secs(1)),
        SendDecision::RateLimited { retry_after_seconds: 59, scope: LimitScope::Cooldown, paused: None }
    );
    assert_eq!(
        send(&p, &mut n, &mut c, hash("222222"), t0() + TimeDelta::milliseconds(59_500)),
        SendDecision::RateLimited { retry_after_seconds: 1, scope: LimitScope::Cooldown, paused: None }
    );
    assert_eq!(n, before, "a refused send changes nothing");
    assert!(matches!(send(&p, &mut n, &mut c, hash("222222"), t0() + secs(60)), SendDecision::Allowed { .. }));
}

#[test]
fn per_number_window_slides() {
    let p = policy();
    let mut n = NumberRecord::default();
    for i in 0..5 {
        let mut c = ClientRecord::default();
        assert!(matches!(send(&p, &mut n, &mut c, hash("111111"), t0() + secs(60 * i)), SendDecision::Allowed { .. }));
    }
    let mut c = ClientRecord::default();
    let at = t0() + secs(300);
    assert_eq!(
        send(&p, &mut n, &mut c, hash("111111"), at),
        SendDecision::RateLimited { retry_after_seconds: 3300, scope: LimitScope::Number, paused: None }
    );
    assert!(matches!(
        send(&p, &mut n, &mut c, hash("111111"), t0() + secs(3599)),
        SendDecision::RateLimited { retry_after_seconds: 1, scope: LimitScope::Number, paused: None }
    ));
    assert!(matches!(send(&p, &mut n, &mut c, hash("111111"), t0() + secs(3600)), SendDecision::Allowed { .. }));
    assert_eq!(n.lane.sends.len(), 5, "the log stays bounded by the limit");
}

#[test]
fn per_client_window_counts_sends_to_any_number() {
    let p = policy();
    let mut c = ClientRecord::default();
    for i in 0..5 {
        let mut n = NumberRecord::default();
        assert!(matches!(send(&p, &mut n, &mut c, hash("111111"), t0() + secs(i)), SendDecision::Allowed { .. }));
    }
    let mut n = NumberRecord::default();
    assert_eq!(
        send(&p, &mut n, &mut c, hash("111111"), t0() + secs(10)),
        SendDecision::RateLimited { retry_after_seconds: 890, scope: LimitScope::Client, paused: None }
    );
    assert_eq!(n, NumberRecord::default());
    assert!(matches!(send(&p, &mut n, &mut c, hash("111111"), t0() + secs(900)), SendDecision::Allowed { .. }));
}

#[test]
fn the_longest_wait_is_reported() {
    let p = policy();
    let mut c = ClientRecord { sends: vec![t0(); 5], verifies: vec![] };
    let mut n = NumberRecord {
        lane: Lane { last_sent_at: Some(t0()), sends: vec![t0()], pending: None, failures: vec![] },
        ..Default::default()
    };
    assert_eq!(
        send(&p, &mut n, &mut c, hash("111111"), t0() + secs(1)),
        SendDecision::RateLimited { retry_after_seconds: 899, scope: LimitScope::Client, paused: None }
    );
}

#[test]
fn per_range_window_counts_sends_to_any_number_from_any_client() {
    let p = with_range(3);
    let mut r = SendLog::default();
    for i in 0..3 {
        let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
        assert!(matches!(
            send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0() + secs(i)),
            SendDecision::Allowed { .. }
        ));
    }
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    assert_eq!(
        send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0() + secs(10)),
        SendDecision::RateLimited { retry_after_seconds: 3590, scope: LimitScope::Range, paused: None }
    );
    assert_eq!((n, c), (NumberRecord::default(), ClientRecord::default()), "a refused send changes nothing");
    assert_eq!(r.sends.len(), 3);
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    assert!(matches!(
        send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0() + secs(3599)),
        SendDecision::RateLimited { retry_after_seconds: 1, scope: LimitScope::Range, paused: None }
    ));
    assert!(matches!(
        send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0() + secs(3600)),
        SendDecision::Allowed { .. }
    ));
    assert_eq!(r.sends.len(), 3, "the log stays bounded by the limit");
}

#[test]
fn per_range_off_leaves_the_range_record_alone() {
    let p = policy();
    let mut r = SendLog { sends: vec![t0(); 50] };
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    assert!(matches!(send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0()), SendDecision::Allowed { .. }));
    assert_eq!(r, SendLog { sends: vec![t0(); 50] }, "neither counted nor pruned");
    assert_eq!(p.range_record_expiry(&r), None);
}

#[test]
fn the_longest_wait_is_reported_with_the_range_too() {
    let p = with_range(2);
    let mut r = SendLog { sends: vec![t0(), t0() + secs(5)] };
    let mut c = ClientRecord { sends: vec![t0(); 5], verifies: vec![] };
    let mut n = NumberRecord::default();
    assert_eq!(
        send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0() + secs(10)),
        SendDecision::RateLimited { retry_after_seconds: 3590, scope: LimitScope::Range, paused: None },
        "the range wait (3590 s) outlasts the client's (890 s)"
    );
    let mut r = SendLog { sends: vec![t0() - secs(3000), t0() - secs(3000)] };
    assert_eq!(
        send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0() + secs(10)),
        SendDecision::RateLimited { retry_after_seconds: 890, scope: LimitScope::Client, paused: None },
        "the client wait (890 s) outlasts the range's (590 s)"
    );
}

#[test]
fn right_code_approves_once() {
    let p = policy();
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("123456"), t0());
    assert_eq!(
        n.lane.judge(&hash("123456"), t0() + secs(5), failures()),
        VerifyOutcome::Approved { channel: Channel::Sms }
    );
    assert_eq!(n.lane.judge(&hash("123456"), t0() + secs(6), failures()), VerifyOutcome::NoPendingCode);
}

#[test]
fn wrong_codes_spend_attempts_then_void_the_code() {
    let p = policy();
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("123456"), t0());
    for left in (1..5).rev() {
        assert_eq!(
            n.lane.judge(&hash("000000"), t0(), failures()),
            VerifyOutcome::Incorrect { attempts_remaining: left }
        );
    }
    assert_eq!(n.lane.judge(&hash("000000"), t0(), failures()), VerifyOutcome::AttemptsExhausted);
    assert_eq!(
        n.lane.judge(&hash("123456"), t0(), failures()),
        VerifyOutcome::NoPendingCode,
        "void even for the right code"
    );
}

#[test]
fn code_expires_at_its_ttl() {
    let p = policy();
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("123456"), t0());
    let mut early = n.clone();
    assert_eq!(
        early.lane.judge(&hash("123456"), t0() + secs(599), failures()),
        VerifyOutcome::Approved { channel: Channel::Sms }
    );
    assert_eq!(n.lane.judge(&hash("123456"), t0() + secs(600), failures()), VerifyOutcome::NoPendingCode);
    assert!(n.lane.pending.is_none());
}

#[test]
fn resend_replaces_the_code_and_resets_attempts() {
    let p = policy();
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("111111"), t0());
    n.lane.judge(&hash("000000"), t0(), failures());
    n.lane.judge(&hash("000000"), t0(), failures());
    send(&p, &mut n, &mut c, hash("222222"), t0() + secs(60));
    assert_eq!(n.lane.pending.as_ref().unwrap().attempts_left, 5);
    let mut old = n.clone();
    assert_eq!(
        old.lane.judge(&hash("111111"), t0() + secs(61), failures()),
        VerifyOutcome::Incorrect { attempts_remaining: 4 }
    );
    assert_eq!(
        n.lane.judge(&hash("222222"), t0() + secs(61), failures()),
        VerifyOutcome::Approved { channel: Channel::Sms }
    );
}

#[test]
fn withdraw_removes_only_the_same_code() {
    let p = policy();
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("111111"), t0());
    assert!(!n.withdraw(&hash("222222"), t0()));
    assert!(n.lane.pending.is_some());
    assert!(n.withdraw(&hash("111111"), t0()));
    assert!(n.lane.pending.is_none());
    assert_eq!(n.lane.sends.len(), 1, "the failed send still counts");
}

#[test]
fn unsend_takes_back_a_send_that_never_went_out_and_nothing_else() {
    let p = SendPolicy { per_range: Some(WindowLimit { max: 10, window: secs(3600) }), ..policy() };
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    let mut r = SendLog::default();
    send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0());
    let at = t0() + secs(61) + TimeDelta::nanoseconds(123_456_789);
    assert!(matches!(send_in_range(&p, &mut n, &mut c, &mut r, hash("222222"), at), SendDecision::Allowed { .. }));
    // As read back from Firestore: to the microsecond.
    let mut read = n.clone();
    if let Some(pending) = read.lane.pending.as_mut() {
        pending.created_at = stored_instant(pending.created_at);
    }
    read.lane.sends = read.lane.sends.iter().map(|t| stored_instant(*t)).collect();
    assert!(!read.clone().unsend(None, &hash("333333"), at + secs(1)), "another send: nothing to take back");
    assert!(read.unsend(None, &hash("222222"), at));
    assert_eq!(read.lane.pending, None, "its code is gone (the earlier one was replaced by it)");
    assert_eq!(read.lane.sends, vec![t0()], "the earlier send stays");
    assert_eq!(read.lane.last_sent_at, Some(t0()));
    assert!(c.unsend(at) && r.unsend(at));
    assert_eq!((c.sends.clone(), r.sends.clone()), (vec![t0()], vec![t0()]));
    assert!(!c.unsend(at) && !r.unsend(at), "once only");
    // So the same lane may send again at once: no cooldown of the send that never went out.
    let mut c2 = c.clone();
    assert!(matches!(send(&p, &mut read, &mut c2, hash("444444"), at + secs(1)), SendDecision::Allowed { .. }));
}

#[test]
fn unsend_touches_only_its_own_lane() {
    let p = policy();
    let device = SubjectKey::from_stored("device-7".into());
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("111111"), t0());
    n.lane_mut(Some(&device)).sends.push(t0());
    assert!(!n.unsend(Some(&device), &hash("111111"), t0() + secs(5)), "no send of the device at that time");
    assert!(n.unsend(Some(&device), &hash("111111"), t0()), "the device's send goes");
    assert!(n.lane.pending.is_some() && n.lane.sends == vec![t0()], "the token-less lane keeps its own");
    let stranger = SubjectKey::from_stored("device-8".into());
    assert!(!n.unsend(Some(&stranger), &hash("111111"), t0()), "a device without a lane");
}

#[test]
fn record_expiry_covers_every_rule() {
    let p = policy();
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("111111"), t0());
    assert_eq!(p.number_record_expiry(&n), Some(t0() + secs(3600)));
    assert_eq!(p.client_record_expiry(&c), Some(t0() + secs(900)));
    let p = with_range(3);
    let (mut n, mut c, mut r) = (NumberRecord::default(), ClientRecord::default(), SendLog::default());
    assert_eq!(p.range_record_expiry(&r), None, "an empty record is needed by no rule");
    send_in_range(&p, &mut n, &mut c, &mut r, hash("111111"), t0());
    assert_eq!(p.range_record_expiry(&r), Some(t0() + secs(3600)));
}

fn verify_policy() -> VerifyPolicy {
    VerifyPolicy {
        per_client: WindowLimit { max: 50, window: secs(900) },
        failures: failures(),
        device_failures: WindowLimit { max: 10, window: secs(86_400) },
        known_for: Some(TimeDelta::days(90)),
    }
}

#[test]
fn failures_count_across_codes_and_lock_the_number() {
    let p = policy();
    let v = verify_policy();
    let mut n = NumberRecord::default();
    let mut judged = 0;
    // Four sends a day apart would each reset a per-code count; the number's does not.
    for round in 0..4 {
        let at = t0() + secs(60 * 10 * round);
        let mut c = ClientRecord::default();
        let decision = send(&p, &mut n, &mut c, hash("123456"), at);
        if round < 4 && judged < 20 {
            assert!(matches!(decision, SendDecision::Allowed { .. }), "round {round}: {decision:?}");
        }
        for _ in 0..5 {
            let mut c = ClientRecord::default();
            match v.apply(&mut n, &mut c, &hash("000000"), None, at + secs(1)) {
                VerifyOutcome::Incorrect { .. } | VerifyOutcome::AttemptsExhausted => judged += 1,
                VerifyOutcome::NumberLocked | VerifyOutcome::NoPendingCode => {}
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(judged, 20, "exactly the cap is judged");
    assert_eq!(n.lane.failures.len(), 20);
    assert!(n.lane.pending.is_none(), "the cap voids the code");
    let mut c = ClientRecord::default();
    let locked = send(&p, &mut n, &mut c, hash("654321"), t0() + secs(3600));
    // The first failure was at t0 + 1 s; the window frees 24 h after it.
    assert_eq!(
        locked,
        SendDecision::RateLimited {
            retry_after_seconds: 86_400 + 1 - 3600,
            scope: LimitScope::NumberLocked,
            paused: None
        }
    );
    assert!(n.lane.pending.is_none(), "a refused send sets no code");
    let mut c = ClientRecord::default();
    assert_eq!(v.apply(&mut n, &mut c, &hash("123456"), None, t0() + secs(3600)), VerifyOutcome::NumberLocked);
    let mut c = ClientRecord::default();
    assert!(matches!(send(&p, &mut n, &mut c, hash("654321"), t0() + secs(86_401)), SendDecision::Allowed { .. }));
}

#[test]
fn the_last_failure_of_the_number_voids_the_code_and_approval_resets_the_count() {
    let v = verify_policy();
    let mut n = NumberRecord { lane: Lane { failures: vec![t0(); 18], ..Default::default() }, ..Default::default() };
    let mut c = ClientRecord::default();
    send(&policy(), &mut n, &mut c, hash("123456"), t0());
    assert_eq!(
        v.apply(&mut n, &mut c, &hash("000000"), None, t0()),
        VerifyOutcome::Incorrect { attempts_remaining: 1 },
        "the number's cap leaves 1 try, fewer than the code's 4"
    );
    assert_eq!(v.apply(&mut n, &mut c, &hash("000000"), None, t0()), VerifyOutcome::AttemptsExhausted);
    assert!(n.lane.pending.is_none());

    let mut n = NumberRecord { lane: Lane { failures: vec![t0(); 10], ..Default::default() }, ..Default::default() };
    send(&policy(), &mut n, &mut c, hash("123456"), t0());
    assert_eq!(v.apply(&mut n, &mut c, &hash("123456"), None, t0()), VerifyOutcome::Approved { channel: Channel::Sms });
    assert!(n.lane.failures.is_empty(), "an approval resets the count");
}

#[test]
fn verifies_per_client_are_limited_and_a_refused_attempt_is_not_judged() {
    let v = VerifyPolicy { per_client: WindowLimit { max: 3, window: secs(300) }, ..verify_policy() };
    let mut c = ClientRecord::default();
    let mut n = NumberRecord::default();
    send(&policy(), &mut n, &mut c, hash("123456"), t0());
    for _ in 0..3 {
        let mut other = NumberRecord::default();
        assert_eq!(v.apply(&mut other, &mut c, &hash("000000"), None, t0()), VerifyOutcome::NoPendingCode);
    }
    let before = n.clone();
    assert_eq!(
        v.apply(&mut n, &mut c, &hash("123456"), None, t0() + secs(10)),
        VerifyOutcome::RateLimited { retry_after_seconds: 290 }
    );
    assert_eq!(n, before, "not judged: the right code is still pending");
    assert_eq!(c.verifies.len(), 3, "a refused attempt is not counted either");
    assert_eq!(
        v.apply(&mut n, &mut c, &hash("123456"), None, t0() + secs(300)),
        VerifyOutcome::Approved { channel: Channel::Sms }
    );
    assert_eq!(v.client_record_expiry(&c), Some(t0() + secs(600)));
}

fn capped(budget: Option<u32>, country: Option<u32>) -> SendPolicy {
    SendPolicy {
        per_client: WindowLimit { max: 10_000, window: secs(900) },
        daily_budget: budget,
        per_country_hour: CountryCap { default: country, ..Default::default() },
        ..policy()
    }
}

/// Sends to `count` distinct numbers of `country` from distinct clients, all against the
/// same shared records; returns the decisions.
fn sends_to_many(
    p: &SendPolicy,
    shared: &mut SendRecords,
    country: &str,
    count: u32,
    at: DateTime<Utc>,
) -> Vec<SendDecision> {
    (0..count)
        .map(|i| {
            shared.number = NumberRecord::default();
            shared.client = ClientRecord::default();
            p.apply(shared, asker(country), hash("111111"), Channel::Sms, at, i.wrapping_mul(2_654_435_761))
        })
        .collect()
}

#[test]
fn the_daily_budget_is_exact_and_frees_at_utc_midnight() {
    let p = capped(Some(50), None);
    let mut shared = SendRecords::default();
    let at = DateTime::parse_from_rfc3339("2026-11-24T23:00:00Z").unwrap().into();
    let decisions = sends_to_many(&p, &mut shared, "US", 80, at);
    let allowed = decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    assert_eq!(allowed, 50);
    assert_eq!(shared.budget.as_ref().map(|b| b.iter().flatten().sum::<u32>()), Some(50));
    assert_eq!(
        decisions.last(),
        Some(&SendDecision::RateLimited { retry_after_seconds: 3600, scope: LimitScope::DailyBudget, paused: None })
    );
    let used: std::collections::BTreeSet<_> = decisions
        .iter()
        .filter_map(|d| match d {
            SendDecision::Allowed { reserved, .. } => reserved.budget_shard,
            _ => None,
        })
        .collect();
    assert_eq!(used.len(), crate::domain::quota::BUDGET_SHARDS, "every shard takes a share");
}

#[test]
fn the_country_cap_is_per_country_with_overrides_and_frees_at_the_hour() {
    let mut p = capped(None, Some(10));
    p.per_country_hour.overrides.insert("GB".into(), Some(3));
    let at = t0() + secs(60 * 45);
    let mut us = SendRecords::default();
    let decisions = sends_to_many(&p, &mut us, "US", 15, at);
    assert_eq!(decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count(), 10);
    assert_eq!(
        decisions.last(),
        Some(&SendDecision::RateLimited { retry_after_seconds: 900, scope: LimitScope::CountryHour, paused: None })
    );
    let mut gb = SendRecords::default();
    let decisions = sends_to_many(&p, &mut gb, "GB", 5, at);
    assert_eq!(decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count(), 3);
    assert_eq!(p.reads("FR"), SendReads { range: false, budget: false, country: true });
    assert_eq!(
        policy().reads("FR"),
        SendReads { range: false, budget: false, country: false },
        "all off: nothing more is read"
    );
}

#[test]
fn a_refused_send_changes_no_record() {
    let p = capped(Some(1), Some(1));
    let mut shared = SendRecords::default();
    sends_to_many(&p, &mut shared, "US", 1, t0());
    shared.number = NumberRecord::default();
    shared.client = ClientRecord::default();
    let before = shared.clone();
    let decision = p.apply(&mut shared, us(), hash("111111"), Channel::Sms, t0() + secs(5), 7);
    assert!(matches!(decision, SendDecision::RateLimited { .. }), "{decision:?}");
    // Pruning aside (nothing to prune here), the records are as they were.
    assert_eq!(shared.number, before.number);
    assert_eq!(shared.client, before.client);
    assert_eq!(shared.budget, before.budget);
    let counted = |r: &SendRecords| r.country.as_ref().map(|c| (c.sent, c.cap_shards.clone()));
    assert_eq!(counted(&shared), counted(&before));
}

#[test]
fn the_guard_pauses_a_country_whose_sends_are_not_approved() {
    let guard = ConversionGuard { min_sends: 30, min_conversion_percent: 20, pause: secs(3600) };
    let p = SendPolicy { guard: Some(guard), ..capped(None, None) };
    let at = t0() + secs(600);
    let mut shared = SendRecords::default();
    let decisions = sends_to_many(&p, &mut shared, "LV", 31, at);
    assert!(decisions[..30].iter().all(|d| matches!(d, SendDecision::Allowed { .. })));
    assert_eq!(
        decisions[30],
        SendDecision::RateLimited {
            retry_after_seconds: 3600,
            scope: LimitScope::PrefixPaused,
            paused: Some(GuardTrip {
                until: at + secs(3600),
                sends: 30,
                approvals: 0,
                state: GuardState { paused_until: Some(at + secs(3600)), trips: 1, last_trip_at: Some(at) },
            }),
        }
    );
    // Later sends see the pause and do not trip it again.
    let later = sends_to_many(&p, &mut shared, "LV", 1, at + secs(600));
    assert_eq!(
        later[0],
        SendDecision::RateLimited { retry_after_seconds: 3000, scope: LimitScope::PrefixPaused, paused: None }
    );
    // Waited out, the pause is followed by a longer one at the next trip.
    let after = at + secs(3600 + 3600 + 60);
    let mut shared_later = SendRecords { country: shared.country.clone(), ..Default::default() };
    if let Some(country) = shared_later.country.as_mut() {
        // The counters of a new hour: the last hour's sends again, none approved.
        (country.sent, country.sent_before) = (40, 0);
    }
    let again = sends_to_many(&p, &mut shared_later, "LV", 1, after);
    assert!(
        matches!(again[0], SendDecision::RateLimited { retry_after_seconds: 7200, paused: Some(_), .. }),
        "the second pause is twice the first: {:?}",
        again[0]
    );
    // A country whose users sign in is not paused.
    let mut healthy = SendRecords::default();
    for i in 0..60 {
        if let Some(country) = healthy.country.as_mut() {
            country.approvals = i / 2;
        }
        let d = sends_to_many(&p, &mut healthy, "DE", 1, at);
        assert!(matches!(d[0], SendDecision::Allowed { .. }), "send {i}: {:?}", d[0]);
    }
}

#[test]
fn withdraw_needs_the_same_code_and_creation_time() {
    let p = policy();
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("111111"), t0());
    assert!(!n.withdraw(&hash("111111"), t0() + secs(1)), "a later code with the same digits stays");
    assert!(n.lane.pending.is_some());
    assert!(n.withdraw(&hash("111111"), t0()));
}

#[test]
fn withdraw_finds_a_code_read_back_at_the_stores_precision() {
    // The service passes its clock's instant, with nanoseconds; Firestore gives the code's
    // creation time back to the microsecond.
    let p = policy();
    let now = t0() + TimeDelta::nanoseconds(123_456_789);
    let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
    send(&p, &mut n, &mut c, hash("111111"), now);
    if let Some(pending) = n.lane.pending.as_mut() {
        pending.created_at = stored_instant(pending.created_at);
    }
    assert_ne!(n.lane.pending.as_ref().map(|p| p.created_at), Some(now), "the read-back time lost its nanoseconds");
    assert!(!n.withdraw(&hash("111111"), now + TimeDelta::microseconds(1)), "a code a microsecond later stays");
    assert!(n.withdraw(&hash("111111"), now), "the same code, created at the same instant, is withdrawn");
    assert!(n.lane.pending.is_none());
}

#[test]
fn a_blind_unit_holds_only_within_its_shards_quota() {
    // 16 shards each: 2 units per budget shard, 1 per country shard.
    let p = capped(Some(32), Some(16));
    let reserved = Reservation { budget_shard: Some(3), country_shard: Some(5), ..Default::default() };
    assert_eq!(p.held("US", &reserved, Counted { budget: Some(2), new_budget: None, country: Some(1) }), Ok(()));
    assert_eq!(
        p.held("US", &reserved, Counted { budget: Some(3), new_budget: None, country: Some(1) }),
        Err(Overdrawn { budget_shard: Some(3), new_shard: None, country_shard: None })
    );
    assert_eq!(
        p.held("US", &reserved, Counted { budget: Some(2), new_budget: None, country: Some(2) }),
        Err(Overdrawn { budget_shard: None, new_shard: None, country_shard: Some(5) })
    );
    assert_eq!(
        p.held("US", &Reservation::default(), Counted { budget: None, new_budget: None, country: None }),
        Ok(()),
        "caps off: nothing to check"
    );
    let lifted = SendPolicy { per_country_hour: CountryCap { default: None, ..Default::default() }, ..p.clone() };
    assert_eq!(
        lifted.held("US", &reserved, Counted { budget: Some(2), new_budget: None, country: Some(1_000) }),
        Ok(()),
        "a lifted cap never overdraws"
    );
}

#[test]
fn shards_not_read_are_tried_and_shards_known_full_are_not() {
    let p = capped(Some(32), None);
    // A store that read no shard: any may have room, and nothing is counted in the records.
    let mut blind = SendRecords { budget: Some(vec![None; 16]), ..Default::default() };
    let decision = p.apply(&mut blind, us(), hash("111111"), Channel::Sms, t0(), 7);
    assert!(matches!(decision, SendDecision::Allowed { reserved: Reservation { budget_shard: Some(7), .. }, .. }));
    assert_eq!(blind.budget, Some(vec![None; 16]));
    // Every shard known full (read, or seen full by the store): the budget is reached.
    let mut full = SendRecords { budget: Some(vec![Some(2); 16]), ..Default::default() };
    let decision = p.apply(&mut full, us(), hash("111111"), Channel::Sms, t0(), 7);
    assert!(matches!(decision, SendDecision::RateLimited { scope: LimitScope::DailyBudget, .. }), "{decision:?}");
    // One shard with room among full ones: it is the one taken.
    let mut one = SendRecords { budget: Some(vec![Some(2); 16]), ..Default::default() };
    if let Some(b) = one.budget.as_mut() {
        b[11] = Some(1);
    }
    let decision = p.apply(&mut one, us(), hash("111111"), Channel::Sms, t0(), 7);
    assert!(matches!(decision, SendDecision::Allowed { reserved: Reservation { budget_shard: Some(11), .. }, .. }));
}

#[test]
fn a_code_keeps_its_channel_and_its_approval_names_it() {
    let p = policy();
    for channel in Channel::ALL {
        let (mut n, mut c) = (NumberRecord::default(), ClientRecord::default());
        let mut records =
            SendRecords { number: std::mem::take(&mut n), client: std::mem::take(&mut c), ..Default::default() };
        assert!(matches!(p.apply(&mut records, us(), hash("123456"), channel, t0(), 0), SendDecision::Allowed { .. }));
        assert_eq!(records.number.lane.pending.as_ref().map(|pending| pending.channel), Some(channel));
        let outcome = records.number.lane.judge(&hash("123456"), t0() + secs(5), failures());
        assert_eq!(outcome, VerifyOutcome::Approved { channel });
    }
}

#[test]
fn every_channel_counts_toward_the_same_limits_one_unit_each() {
    // Five sends per number per hour, whatever the channel: a call cannot buy a sixth.
    let p = SendPolicy {
        resend_cooldown: secs(0),
        daily_budget: Some(100),
        per_country_hour: CountryCap { default: Some(100), overrides: Default::default() },
        ..policy()
    };
    let mut records = SendRecords::default();
    let (mut budget_units, mut country_units) = (0, 0);
    for (i, channel) in
        [Channel::Sms, Channel::Voice, Channel::Whatsapp, Channel::Voice, Channel::Sms].into_iter().enumerate()
    {
        let decision = p.apply(&mut records, us(), hash("123456"), channel, t0() + secs(i as i64), 0);
        let SendDecision::Allowed { reserved, .. } = decision else {
            panic!("send {i} on {channel:?}: {decision:?}");
        };
        budget_units += usize::from(reserved.budget_shard.is_some());
        country_units += usize::from(reserved.country_shard.is_some());
    }
    assert_eq!((budget_units, country_units), (5, 5), "one budget and one country unit each");
    let decision = p.apply(&mut records, us(), hash("123456"), Channel::Voice, t0() + secs(10), 0);
    assert!(matches!(decision, SendDecision::RateLimited { scope: LimitScope::Number, .. }), "{decision:?}");
}
