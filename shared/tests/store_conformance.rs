//! One set of store tests, run against every `OtpStore`: the memory store, and the
//! Firestore store on the real emulator (`FIRESTORE_EMULATOR_HOST`, which `scripts/test`
//! starts). Without the emulator the Firestore runs fail, unless `OTP_SKIP_EMULATOR=1`
//! skips them loudly.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use otp_core::domain::{
    Channel, CountryCap, LimitScope, SendDecision, SendPolicy, VerifyOutcome, VerifyPolicy, WindowLimit,
};
use otp_core::ports::OtpStore;
use otp_testkit::secs;
use otp_testkit::store::{Subjects, concurrently, policy, range_policy, verify_policy};

/// Where every test here starts: an instant with sub-microsecond nanoseconds, which the
/// memory store keeps and Firestore drops, so a comparison that holds at only one
/// precision fails on one of the two stores.
fn t0() -> DateTime<Utc> {
    otp_testkit::t0_ns()
}

/// Expands each listed test into a memory-store run and a Firestore-store run.
macro_rules! conformance {
    ($($test:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    super::$test(otp_testkit::store::memory()).await;
                }
            )*
        }
        mod firestore {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $test() {
                    if let Some(store) = otp_testkit::store::firestore(stringify!($test)) {
                        super::$test(store).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    a_code_approves_once,
    wrong_codes_spend_attempts_then_lock_the_code,
    a_resend_replaces_the_code_and_its_attempts,
    the_cooldown_holds_and_changes_nothing,
    the_per_number_window_slides,
    the_per_client_window_counts_every_number,
    a_code_expires_at_its_ttl,
    withdraw_removes_only_the_same_code_and_the_send_still_counts,
    an_unknown_number_has_no_code,
    concurrent_right_guesses_approve_exactly_once,
    concurrent_wrong_guesses_are_judged_at_most_max_attempts_times,
    concurrent_wrong_guesses_across_codes_stop_at_the_numbers_cap,
    concurrent_sends_to_one_number_allow_exactly_one,
    concurrent_sends_from_one_client_stop_at_its_limit,
    the_per_range_window_counts_every_number_and_client,
    the_per_range_limit_off_changes_nothing,
    concurrent_sends_to_one_range_stop_at_its_limit,
    concurrent_sends_stop_exactly_at_the_daily_budget,
    concurrent_sends_stop_exactly_at_the_country_hour_cap,
    the_guard_counts_the_sends_and_approvals_of_the_hour,
    a_code_keeps_its_channel_until_it_approves,
    a_device_token_has_its_own_code_sends_and_failed_attempts,
    a_known_number_is_never_paused_by_the_guard,
    new_numbers_stop_exactly_at_their_share_and_known_ones_use_the_whole_budget,
    approvals_count_once_per_number_for_the_guard,
    under_attack_new_numbers_need_the_challenge_and_it_never_passes_a_cap,
    sms_a_carrier_did_not_deliver_are_left_out_of_the_guards_sends,
);

/// 30 sends in the prefix, 5 of them then reported undelivered for a carrier's reason: the
/// guard judges 25, under its 30, and the prefix stays open until 5 more; an undelivered
/// SMS sent before the tally's two hours changes nothing.
async fn sms_a_carrier_did_not_deliver_are_left_out_of_the_guards_sends(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let p = policy();
    let at = t0();
    let send = |i: u32, at| {
        let (store, s, p) = (store.clone(), s.clone(), p.clone());
        async move { s.ask(&*store, &s.other_number(i), &s.other_client(i), None, false, "123456", &p, at).await }
    };
    for i in 0..30 {
        assert!(matches!(send(i, at).await, SendDecision::Allowed { .. }), "send {i}");
    }
    store.count_undelivered(otp_testkit::store::PREFIX, at - TimeDelta::hours(3), at).await.unwrap();
    for _ in 0..5 {
        store.count_undelivered(otp_testkit::store::PREFIX, at, at + secs(1)).await.unwrap();
    }
    for i in 30..35 {
        let decision = send(i, at + secs(2)).await;
        assert!(matches!(decision, SendDecision::Allowed { .. }), "send {i}: 25 to 29 judged: {decision:?}");
    }
    let tripped = send(35, at + secs(3)).await;
    assert!(
        matches!(tripped, SendDecision::RateLimited { scope: LimitScope::PrefixPaused, paused: Some(_), .. }),
        "30 judged, none approved: {tripped:?}"
    );
}

/// The failed-attempt cap of the lanes, small, so that a test reaches it in a few steps.
fn small_caps() -> (SendPolicy, VerifyPolicy) {
    let failures = WindowLimit { max: 3, window: TimeDelta::days(1) };
    let device_failures = WindowLimit { max: 2, ..failures };
    (
        SendPolicy { failures, device_failures, ..policy() },
        VerifyPolicy { failures, device_failures, ..verify_policy() },
    )
}

/// A stranger (no device token) locks the number's token-less lane and replaces its code
/// at will; the device's own code, sends and cap are untouched. Its code approves only
/// with its token, and its own cap holds for it.
async fn a_device_token_has_its_own_code_sends_and_failed_attempts(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    let (p, v) = small_caps();
    let (number, client, device) = (s.number.clone(), s.client.clone(), s.device(1));
    let send = |device: Option<&otp_core::domain::SubjectKey>, code: &'static str, at| {
        let (store, s, p, number, client, device) = (&store, &s, &p, &number, &client, device.cloned());
        async move { s.ask(&**store, number, client, device.as_ref(), false, code, p, at).await }
    };
    let judge = |device: Option<&otp_core::domain::SubjectKey>, code: &'static str, at| {
        let (store, s, v, number, client, device) = (&store, &s, &v, &number, &client, device.cloned());
        async move { s.answer(&**store, number, client, device.as_ref(), code, v, at).await.unwrap() }
    };
    assert!(matches!(send(Some(&device), "111111", t0()).await, SendDecision::Allowed { .. }));
    // The stranger's send a second later: no cooldown of the device's lane applies, and it
    // does not replace the device's code.
    assert!(matches!(send(None, "222222", t0() + secs(1)).await, SendDecision::Allowed { .. }));
    for i in 0..2 {
        let outcome = judge(None, "000000", t0() + secs(2 + i)).await;
        assert!(matches!(outcome, VerifyOutcome::Incorrect { .. }), "{outcome:?}");
    }
    assert_eq!(judge(None, "111111", t0() + secs(4)).await, VerifyOutcome::AttemptsExhausted, "not the device's code");
    assert_eq!(judge(None, "222222", t0() + secs(5)).await, VerifyOutcome::NumberLocked, "the lane is at its cap");
    assert!(matches!(
        send(None, "333333", t0() + secs(120)).await,
        SendDecision::RateLimited { scope: LimitScope::NumberLocked, .. }
    ));
    // The device: its code stands, approves only with its token, and its sends go on.
    assert_eq!(
        judge(Some(&s.device(2)), "111111", t0() + secs(6)).await,
        VerifyOutcome::NoPendingCode,
        "another device"
    );
    assert_eq!(judge(Some(&device), "111111", t0() + secs(7)).await, VerifyOutcome::Approved { channel: Channel::Sms });
    assert!(matches!(send(Some(&device), "444444", t0() + secs(121)).await, SendDecision::Allowed { .. }));
    // Its own cap (2 here) holds for it alone.
    assert!(matches!(judge(Some(&device), "000000", t0() + secs(122)).await, VerifyOutcome::Incorrect { .. }));
    assert_eq!(judge(Some(&device), "000000", t0() + secs(123)).await, VerifyOutcome::AttemptsExhausted);
    assert_eq!(judge(Some(&device), "444444", t0() + secs(124)).await, VerifyOutcome::NumberLocked);
    assert!(matches!(
        send(Some(&device), "555555", t0() + secs(200)).await,
        SendDecision::RateLimited { scope: LimitScope::NumberLocked, .. }
    ));
    // A third device is a lane of its own, free of both caps.
    assert!(matches!(send(Some(&s.device(3)), "666666", t0() + secs(201)).await, SendDecision::Allowed { .. }));
    assert_eq!(
        judge(Some(&s.device(3)), "666666", t0() + secs(202)).await,
        VerifyOutcome::Approved { channel: Channel::Sms }
    );
}

/// Trips the guard for the test prefix at `at` (`p` without the challenge): sends to other
/// numbers, none approved, until one trips it (the 30th or 31st, with what the test sent
/// before); every send before it is allowed.
async fn trip_the_guard(store: &Arc<dyn OtpStore>, s: &Arc<Subjects>, p: &SendPolicy, at: DateTime<Utc>) {
    for i in 0..40 {
        match s.ask(&**store, &s.other_number(100 + i), &s.other_client(i), None, false, "123456", p, at).await {
            SendDecision::Allowed { .. } => {}
            SendDecision::RateLimited { scope: LimitScope::PrefixPaused, paused: Some(_), .. } => return,
            other => panic!("send {i}: {other:?}"),
        }
    }
    panic!("40 unapproved sends did not trip the guard");
}

/// A number approved within `OTP_KNOWN_NUMBER_DAYS` is sent to through its prefix's pause;
/// a new number of the prefix is refused, with the pause's wait.
async fn a_known_number_is_never_paused_by_the_guard(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let p = policy();
    assert!(matches!(s.send(&*store, "111111", t0()).await, SendDecision::Allowed { .. }));
    assert_eq!(s.judge(&*store, "111111", t0() + secs(1)).await, VerifyOutcome::Approved { channel: Channel::Sms });
    let at = t0() + secs(10);
    trip_the_guard(&store, &s, &p, at).await;
    let new = s.ask(&*store, &s.other_number(1), &s.other_client(1), None, false, "123456", &p, at + secs(1)).await;
    assert!(
        matches!(new, SendDecision::RateLimited { scope: LimitScope::PrefixPaused, paused: None, .. }),
        "a new number waits for the pause's end: {new:?}"
    );
    let known = s.send(&*store, "222222", t0() + secs(120)).await;
    assert!(matches!(known, SendDecision::Allowed { .. }), "the known number goes on: {known:?}");
    // Known for 90 days: after them it is new again, and paused like any.
    let later = t0() + TimeDelta::days(90) + secs(2);
    trip_the_guard(&store, &s, &p, later).await;
    let forgotten = s.send(&*store, "333333", later + secs(1)).await;
    assert!(matches!(forgotten, SendDecision::RateLimited { scope: LimitScope::PrefixPaused, .. }), "{forgotten:?}");
}

/// Budget 16, half of it for new numbers: 8 numbers sent to and approved fill the share;
/// 20 concurrent sends to new numbers are then all refused (the share), while the 8 known
/// numbers, twice each at once, get exactly the 8 units left of the whole budget.
async fn new_numbers_stop_exactly_at_their_share_and_known_ones_use_the_whole_budget(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let p = SendPolicy { daily_budget: Some(16), new_numbers_percent: Some(50), guard: None, ..policy() };
    let v = verify_policy();
    let firsts = concurrently(12, |i| {
        let (store, s, p) = (store.clone(), s.clone(), p.clone());
        async move { Ok(s.ask(&*store, &s.other_number(i), &s.other_client(i), None, false, "123456", &p, t0()).await) }
    })
    .await;
    let allowed: Vec<u32> =
        (0u32..).zip(&firsts).filter(|(_, d)| matches!(d, SendDecision::Allowed { .. })).map(|(i, _)| i).collect();
    let share = |d: &SendDecision| matches!(d, SendDecision::RateLimited { scope: LimitScope::NewNumbersBudget, .. });
    assert_eq!(allowed.len(), 8, "exactly the share: {firsts:?}");
    assert_eq!(firsts.iter().filter(|d| share(d)).count(), 4);
    for &i in &allowed {
        let (number, client) = (s.other_number(i), s.other_client(i));
        let outcome = s.answer(&*store, &number, &client, None, "123456", &v, t0() + secs(1)).await.unwrap();
        assert_eq!(outcome, VerifyOutcome::Approved { channel: Channel::Sms });
    }
    let at = t0() + secs(61);
    let news = concurrently(20, |i| {
        let (store, s, p) = (store.clone(), s.clone(), p.clone());
        async move {
            Ok(s.ask(&*store, &s.other_number(50 + i), &s.other_client(50 + i), None, false, "111111", &p, at).await)
        }
    })
    .await;
    assert!(news.iter().all(share), "the share is spent: {news:?}");
    // Two sends per known number: one now, one from a device of it (a lane of its own).
    let allowed = Arc::new(allowed);
    let knowns = concurrently(16, |k| {
        let (store, s, p, allowed) = (store.clone(), s.clone(), p.clone(), allowed.clone());
        async move {
            let i = allowed[(k / 2) as usize];
            let device = (k % 2 == 1).then(|| s.device(1));
            Ok(s.ask(&*store, &s.other_number(i), &s.other_client(100 + k), device.as_ref(), false, "222222", &p, at)
                .await)
        }
    })
    .await;
    let kept = knowns.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    let budget =
        knowns.iter().filter(|d| matches!(d, SendDecision::RateLimited { scope: LimitScope::DailyBudget, .. })).count();
    assert_eq!((kept, budget), (8, 8), "known numbers use the rest of the whole budget, exactly: {knowns:?}");
}

/// 24 sends to distinct numbers of the prefix, then two numbers each sent to and approved
/// three times within the hour: 30 sends, 6 approvals, which would be the guard's 20 %;
/// but approvals count once per number (2 of 30), so the next send trips the guard.
async fn approvals_count_once_per_number_for_the_guard(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let (p, v) = (policy(), verify_policy());
    let decisions = concurrently(24, |i| {
        let (store, s, p) = (store.clone(), s.clone(), p.clone());
        async move { Ok(s.ask(&*store, &s.other_number(i), &s.other_client(i), None, false, "123456", &p, t0()).await) }
    })
    .await;
    assert!(decisions.iter().all(|d| matches!(d, SendDecision::Allowed { .. })), "{decisions:?}");
    for round in 0..3 {
        let at = t0() + secs(61 * round);
        for n in [90, 91] {
            let (number, client) = (s.other_number(n), s.other_client(n));
            let sent = s.ask(&*store, &number, &client, None, false, "654321", &p, at).await;
            assert!(matches!(sent, SendDecision::Allowed { .. }), "round {round}: {sent:?}");
            let approved = s.answer(&*store, &number, &client, None, "654321", &v, at + secs(1)).await.unwrap();
            assert_eq!(approved, VerifyOutcome::Approved { channel: Channel::Sms });
        }
    }
    let next =
        s.ask(&*store, &s.other_number(99), &s.other_client(99), None, false, "111111", &p, t0() + secs(300)).await;
    assert!(
        matches!(next, SendDecision::RateLimited { scope: LimitScope::PrefixPaused, paused: Some(_), .. }),
        "2 of 30 counted: {next:?}"
    );
}

/// `OTP_CAPTCHA_WHEN=under_attack`: in a paused prefix a new number's send needs a solved
/// challenge (and is allowed with one), a known number's never; a country's cap asks for
/// it past half, and a solved one takes the send to the cap, never past it.
async fn under_attack_new_numbers_need_the_challenge_and_it_never_passes_a_cap(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let p = SendPolicy {
        challenge_under_attack: true,
        per_country_hour: CountryCap { default: Some(40), ..CountryCap::default() },
        ..policy()
    };
    let at = t0() + secs(10);
    assert!(matches!(s.send(&*store, "111111", t0()).await, SendDecision::Allowed { .. }));
    assert_eq!(s.judge(&*store, "111111", t0() + secs(1)).await, VerifyOutcome::Approved { channel: Channel::Sms });
    trip_the_guard(&store, &s, &SendPolicy { challenge_under_attack: false, ..p.clone() }, at).await;
    let unchallenged =
        s.ask(&*store, &s.other_number(1), &s.other_client(1), None, false, "123456", &p, at + secs(1)).await;
    assert_eq!(unchallenged, SendDecision::ChallengeRequired { paused: None }, "a new number in the paused prefix");
    let solved = s.ask(&*store, &s.other_number(1), &s.other_client(1), None, true, "123456", &p, at + secs(2)).await;
    assert!(matches!(solved, SendDecision::Allowed { .. }), "the challenge stands in for the pause: {solved:?}");
    let known = s.ask(&*store, &s.number, &s.client, None, false, "222222", &p, t0() + secs(120)).await;
    assert!(matches!(known, SendDecision::Allowed { .. }), "a known number is never asked: {known:?}");

    // A fresh prefix's hour: the country cap of 40, half of it unchallenged (30 + 1 sent).
    let later = t0() + TimeDelta::hours(3);
    let q = SendPolicy { guard: None, ..p.clone() };
    let decisions = concurrently(30, |i| {
        let (store, s, q) = (store.clone(), s.clone(), q.clone());
        async move {
            Ok(s.ask(&*store, &s.other_number(200 + i), &s.other_client(i), None, false, "111111", &q, later).await)
        }
    })
    .await;
    let allowed = decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    let asked = decisions.iter().filter(|d| matches!(d, SendDecision::ChallengeRequired { .. })).count();
    assert_eq!((allowed, asked), (20, 10), "half the cap unchallenged, then the challenge: {decisions:?}");
    let decisions = concurrently(30, |i| {
        let (store, s, q) = (store.clone(), s.clone(), q.clone());
        async move {
            Ok(s.ask(&*store, &s.other_number(300 + i), &s.other_client(i), None, true, "111111", &q, later).await)
        }
    })
    .await;
    let allowed = decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    let capped = decisions
        .iter()
        .filter(|d| matches!(d, SendDecision::RateLimited { scope: LimitScope::CountryHour, .. }))
        .count();
    assert_eq!((allowed, capped), (20, 10), "solved, up to the cap and no further: {decisions:?}");
}

async fn a_code_keeps_its_channel_until_it_approves(store: Arc<dyn OtpStore>) {
    // A call, then a WhatsApp resend: the approval names the channel of the code it matched.
    let s = Subjects::new();
    assert!(matches!(s.send_on(&*store, "123456", Channel::Voice, t0()).await, SendDecision::Allowed { .. }));
    assert_eq!(s.judge(&*store, "123456", t0() + secs(5)).await, VerifyOutcome::Approved { channel: Channel::Voice });
    let later = t0() + secs(120);
    assert!(matches!(s.send_on(&*store, "222222", Channel::Voice, later).await, SendDecision::Allowed { .. }));
    assert!(matches!(
        s.send_on(&*store, "333333", Channel::Whatsapp, later + secs(61)).await,
        SendDecision::Allowed { .. }
    ));
    assert_eq!(s.judge(&*store, "222222", later + secs(62)).await, VerifyOutcome::Incorrect { attempts_remaining: 4 });
    assert_eq!(
        s.judge(&*store, "333333", later + secs(63)).await,
        VerifyOutcome::Approved { channel: Channel::Whatsapp }
    );
}

async fn a_code_approves_once(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    assert!(matches!(s.send(&*store, "123456", t0()).await, SendDecision::Allowed { .. }));
    assert_eq!(s.judge(&*store, "123456", t0() + secs(5)).await, VerifyOutcome::Approved { channel: Channel::Sms });
    assert_eq!(s.judge(&*store, "123456", t0() + secs(6)).await, VerifyOutcome::NoPendingCode);
}

async fn wrong_codes_spend_attempts_then_lock_the_code(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    s.send(&*store, "123456", t0()).await;
    for left in (1..5).rev() {
        assert_eq!(s.judge(&*store, "000000", t0()).await, VerifyOutcome::Incorrect { attempts_remaining: left });
    }
    assert_eq!(s.judge(&*store, "000000", t0()).await, VerifyOutcome::AttemptsExhausted);
    assert_eq!(s.judge(&*store, "123456", t0()).await, VerifyOutcome::NoPendingCode, "locked even for the right code");
}

async fn a_resend_replaces_the_code_and_its_attempts(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    s.send(&*store, "111111", t0()).await;
    s.judge(&*store, "000000", t0()).await;
    s.judge(&*store, "000000", t0()).await;
    assert!(matches!(
        s.send(&*store, "222222", t0() + secs(60)).await,
        SendDecision::Allowed { expires_at, .. } if expires_at == t0() + secs(60) + secs(600)
    ));
    assert_eq!(
        s.judge(&*store, "111111", t0() + secs(61)).await,
        VerifyOutcome::Incorrect { attempts_remaining: 4 },
        "the old code no longer works, and the count started afresh"
    );
    assert_eq!(s.judge(&*store, "222222", t0() + secs(62)).await, VerifyOutcome::Approved { channel: Channel::Sms });
}

async fn the_cooldown_holds_and_changes_nothing(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    s.send(&*store, "111111", t0()).await;
    assert_eq!(
        s.send(&*store, "222222", t0() + secs(1)).await,
        SendDecision::RateLimited { retry_after_seconds: 59, scope: LimitScope::Cooldown, paused: None }
    );
    assert_eq!(
        s.judge(&*store, "111111", t0() + secs(2)).await,
        VerifyOutcome::Approved { channel: Channel::Sms },
        "the refused send left the code"
    );
    assert!(matches!(s.send(&*store, "333333", t0() + secs(60)).await, SendDecision::Allowed { .. }));
}

async fn the_per_number_window_slides(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    for i in 0..5 {
        let from = s.other_client(i);
        assert!(matches!(
            s.send_from(&*store, &from, "111111", t0() + secs(60 * i64::from(i))).await,
            SendDecision::Allowed { .. }
        ));
    }
    assert_eq!(
        s.send_from(&*store, &s.other_client(5), "111111", t0() + secs(300)).await,
        SendDecision::RateLimited { retry_after_seconds: 3300, scope: LimitScope::Number, paused: None }
    );
    assert!(matches!(
        s.send_from(&*store, &s.other_client(6), "111111", t0() + secs(3600)).await,
        SendDecision::Allowed { .. }
    ));
}

async fn the_per_client_window_counts_every_number(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    for i in 0..5 {
        let to = s.other_number(i);
        assert!(matches!(
            s.send_to(&*store, &to, "111111", t0() + secs(i64::from(i))).await,
            SendDecision::Allowed { .. }
        ));
    }
    let refused = s.other_number(5);
    assert_eq!(
        s.send_to(&*store, &refused, "111111", t0() + secs(10)).await,
        SendDecision::RateLimited { retry_after_seconds: 890, scope: LimitScope::Client, paused: None }
    );
    assert_eq!(
        s.judge_for(&*store, &refused, &s.client, &s.hash("111111"), t0() + secs(11)).await.unwrap(),
        VerifyOutcome::NoPendingCode,
        "a refused send stores no code"
    );
    assert!(matches!(s.send_to(&*store, &refused, "111111", t0() + secs(900)).await, SendDecision::Allowed { .. }));
}

async fn a_code_expires_at_its_ttl(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    s.send(&*store, "123456", t0()).await;
    assert_eq!(s.judge(&*store, "000000", t0() + secs(599)).await, VerifyOutcome::Incorrect { attempts_remaining: 4 });
    assert_eq!(s.judge(&*store, "123456", t0() + secs(600)).await, VerifyOutcome::NoPendingCode);
    assert_eq!(
        s.judge(&*store, "123456", t0() + secs(1)).await,
        VerifyOutcome::NoPendingCode,
        "an expired code is gone for good"
    );
    let other = Subjects::new();
    other.send(&*store, "654321", t0()).await;
    assert_eq!(
        other.judge(&*store, "654321", t0() + secs(600) - TimeDelta::milliseconds(1)).await,
        VerifyOutcome::Approved { channel: Channel::Sms }
    );
}

async fn withdraw_removes_only_the_same_code_and_the_send_still_counts(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    s.send(&*store, "111111", t0()).await;
    store.withdraw_code(&s.number, &s.hash("222222"), t0()).await.unwrap();
    store.withdraw_code(&s.number, &s.hash("111111"), t0()).await.unwrap();
    assert_eq!(s.judge(&*store, "111111", t0() + secs(1)).await, VerifyOutcome::NoPendingCode);
    assert_eq!(
        s.send(&*store, "333333", t0() + secs(2)).await,
        SendDecision::RateLimited { retry_after_seconds: 58, scope: LimitScope::Cooldown, paused: None },
        "the withdrawn send still counts"
    );

    let t = Subjects::new();
    t.send(&*store, "444444", t0()).await;
    store.withdraw_code(&t.number, &t.hash("555555"), t0()).await.unwrap();
    assert_eq!(
        t.judge(&*store, "444444", t0() + secs(1)).await,
        VerifyOutcome::Approved { channel: Channel::Sms },
        "another code stays"
    );
}

async fn an_unknown_number_has_no_code(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    assert_eq!(s.judge(&*store, "123456", t0()).await, VerifyOutcome::NoPendingCode);
    store.withdraw_code(&s.number, &s.hash("123456"), t0()).await.unwrap();
    assert!(matches!(s.send(&*store, "123456", t0()).await, SendDecision::Allowed { .. }));
}

async fn concurrent_right_guesses_approve_exactly_once(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    s.send(&*store, "123456", t0()).await;
    let outcomes = concurrently(50, |i| {
        let (store, s) = (store.clone(), s.clone());
        async move { s.judge_for(&*store, &s.number, &s.other_client(i), &s.hash("123456"), t0() + secs(1)).await }
    })
    .await;
    let approved = outcomes.iter().filter(|o| **o == VerifyOutcome::Approved { channel: Channel::Sms }).count();
    let none = outcomes.iter().filter(|o| **o == VerifyOutcome::NoPendingCode).count();
    assert_eq!((approved, none), (1, 49), "{outcomes:?}");
}

async fn concurrent_wrong_guesses_are_judged_at_most_max_attempts_times(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    s.send(&*store, "123456", t0()).await;
    let outcomes = concurrently(40, |i| {
        let (store, s) = (store.clone(), s.clone());
        async move { s.judge_for(&*store, &s.number, &s.other_client(i), &s.hash("000000"), t0() + secs(1)).await }
    })
    .await;
    let mut remaining: Vec<u32> = outcomes
        .iter()
        .filter_map(|o| match o {
            VerifyOutcome::Incorrect { attempts_remaining } => Some(*attempts_remaining),
            _ => None,
        })
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, [1, 2, 3, 4], "each try counted once: {outcomes:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == VerifyOutcome::AttemptsExhausted).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| **o == VerifyOutcome::NoPendingCode).count(), 35);
    assert_eq!(s.judge(&*store, "123456", t0() + secs(2)).await, VerifyOutcome::NoPendingCode, "the code is locked");
}

/// The number's failed-attempt cap (20 by default) holds across codes and under
/// concurrency: with 8 tries per code, two codes spend 16 failures, and of 12 concurrent
/// wrong guesses at a third code exactly 4 are judged; then the number is locked for sends
/// and verifies alike.
async fn concurrent_wrong_guesses_across_codes_stop_at_the_numbers_cap(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let cap = otp_testkit::store::verify_policy().failures.max;
    assert_eq!(cap, 20, "the contract's default");
    let eight_tries = SendPolicy { max_attempts: 8, ..policy() };
    let send = |code: &'static str, at| {
        let (store, s, policy) = (store.clone(), s.clone(), eight_tries.clone());
        async move { s.record(&*store, &s.number, &s.client, None, s.hash(code), &policy, at).await.unwrap() }
    };
    let guesses = |n: u32, at| {
        let (store, s) = (store.clone(), s.clone());
        concurrently(n, move |i| {
            let (store, s) = (store.clone(), s.clone());
            async move { s.judge_for(&*store, &s.number, &s.other_client(i), &s.hash("000000"), at).await }
        })
    };
    let mut judged = 0;
    for (round, code) in ["111111", "222222", "333333"].into_iter().enumerate() {
        let at = t0() + secs(61 * i64::try_from(round).unwrap());
        assert!(matches!(send(code, at).await, SendDecision::Allowed { .. }), "code {round}");
        let outcomes = guesses(12, at + secs(1)).await;
        let mut remaining: Vec<u32> = outcomes
            .iter()
            .filter_map(|o| match o {
                VerifyOutcome::Incorrect { attempts_remaining } => Some(*attempts_remaining),
                _ => None,
            })
            .collect();
        remaining.sort_unstable();
        let exhausted = outcomes.iter().filter(|o| **o == VerifyOutcome::AttemptsExhausted).count();
        // Once the code is void the rest find none; once the number is at its cap, it is locked.
        let late = if round < 2 { VerifyOutcome::NoPendingCode } else { VerifyOutcome::NumberLocked };
        let none = outcomes.iter().filter(|o| **o == late).count();
        if round < 2 {
            assert_eq!(remaining, [1, 2, 3, 4, 5, 6, 7], "code {round}: each try counted once: {outcomes:?}");
        } else {
            assert_eq!(remaining, [1, 2, 3], "the third code gets only the number's last 4 tries: {outcomes:?}");
        }
        assert_eq!(exhausted, 1, "{outcomes:?}");
        judged += remaining.len() + exhausted;
        assert_eq!(remaining.len() + exhausted + none, 12, "{outcomes:?}");
    }
    assert_eq!(judged, usize::try_from(cap).unwrap(), "exactly the cap was judged across the codes");
    let later = t0() + secs(300);
    assert_eq!(
        send("444444", later).await,
        SendDecision::RateLimited {
            // Until the first failure, at t0 + 1 s, leaves the day's window.
            retry_after_seconds: 86_400 + 1 - 300,
            scope: LimitScope::NumberLocked,
            paused: None
        },
        "a locked number gets no new code"
    );
    assert_eq!(
        s.judge_for(&*store, &s.number, &s.other_client(99), &s.hash("333333"), later).await.unwrap(),
        VerifyOutcome::NumberLocked,
        "nor does a right guess pass"
    );
}

async fn concurrent_sends_to_one_number_allow_exactly_one(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let decisions = concurrently(30, |i| {
        let (store, s) = (store.clone(), s.clone());
        async move {
            let client = s.other_client(i);
            s.record(&*store, &s.number, &client, None, s.hash("123456"), &policy(), t0()).await
        }
    })
    .await;
    let allowed = decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    let cooled =
        decisions.iter().filter(|d| matches!(d, SendDecision::RateLimited { scope: LimitScope::Cooldown, .. })).count();
    assert_eq!((allowed, cooled), (1, 29), "{decisions:?}");
}

async fn concurrent_sends_from_one_client_stop_at_its_limit(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let decisions = concurrently(30, |i| {
        let (store, s) = (store.clone(), s.clone());
        async move { s.record(&*store, &s.other_number(i), &s.client, None, s.hash("123456"), &policy(), t0()).await }
    })
    .await;
    let allowed = decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    let limited =
        decisions.iter().filter(|d| matches!(d, SendDecision::RateLimited { scope: LimitScope::Client, .. })).count();
    assert_eq!((allowed, limited), (5, 25), "the per-client limit holds under concurrency: {decisions:?}");
}

async fn the_per_range_window_counts_every_number_and_client(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    let p = range_policy(3);
    for i in 0..3 {
        let (to, from) = (format!("+1415555010{i}"), s.other_client(i));
        assert!(matches!(
            s.send_in_range(&*store, &to, &from, &p, t0() + secs(i64::from(i))).await,
            SendDecision::Allowed { .. }
        ));
    }
    assert_eq!(
        s.send_in_range(&*store, "+14155550103", &s.other_client(3), &p, t0() + secs(10)).await,
        SendDecision::RateLimited { retry_after_seconds: 3590, scope: LimitScope::Range, paused: None },
        "a fourth number of the block, from a fourth client"
    );
    assert_eq!(
        s.judge_for(&*store, &s.pepper.number_key("+14155550103"), &s.client, &s.hash("123456"), t0() + secs(11))
            .await
            .unwrap(),
        VerifyOutcome::NoPendingCode,
        "a refused send stores no code"
    );
    assert!(
        matches!(
            s.send_in_range(&*store, "+14155551103", &s.other_client(4), &p, t0() + secs(12)).await,
            SendDecision::Allowed { .. }
        ),
        "the next block is another range"
    );
    assert!(
        matches!(
            s.send_in_range(&*store, "+14155550103", &s.other_client(5), &p, t0() + secs(3600)).await,
            SendDecision::Allowed { .. }
        ),
        "the window slides"
    );
}

async fn the_per_range_limit_off_changes_nothing(store: Arc<dyn OtpStore>) {
    let s = Subjects::new();
    for i in 0..10 {
        let (to, from) = (format!("+1415555010{i}"), s.other_client(i));
        assert!(matches!(s.send_in_range(&*store, &to, &from, &policy(), t0()).await, SendDecision::Allowed { .. }));
    }
    // The range sends above were not counted: turned on now, the limit sees an empty range.
    assert!(matches!(
        s.send_in_range(&*store, "+14155550110", &s.other_client(10), &range_policy(1), t0()).await,
        SendDecision::Allowed { .. }
    ));
}

async fn concurrent_sends_to_one_range_stop_at_its_limit(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let decisions = concurrently(30, |i| {
        let (store, s) = (store.clone(), s.clone());
        async move {
            let phone = format!("+141555501{i:02}");
            let (number, range) = (s.pepper.number_key(&phone), s.range_of(&phone));
            s.record(&*store, &number, &s.other_client(i), Some(&range), s.hash("123456"), &range_policy(5), t0()).await
        }
    })
    .await;
    let allowed = decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    let limited =
        decisions.iter().filter(|d| matches!(d, SendDecision::RateLimited { scope: LimitScope::Range, .. })).count();
    assert_eq!((allowed, limited), (5, 25), "the per-range limit holds under concurrency: {decisions:?}");
}

/// 60 sends at once to distinct numbers from distinct clients, against a budget of 25
/// split over 16 shards (one or two units each): exactly 25 are allowed. On Firestore the
/// units are added blindly, so many land in a shard that just filled: each such send is
/// undone and decided again. The 35 refused leave no trace: asked again they meet the
/// budget, not their own number's cooldown, and hold no code.
async fn concurrent_sends_stop_exactly_at_the_daily_budget(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    // The guard off: 30 sends unapproved would pause the country first.
    // No share for new numbers: all of the budget is theirs (the share has its own test).
    let p = SendPolicy { daily_budget: Some(25), guard: None, new_numbers_percent: None, ..policy() };
    let decisions = concurrently(60, |i| {
        let (store, s, p) = (store.clone(), s.clone(), p.clone());
        async move { s.record(&*store, &s.other_number(i), &s.other_client(i), None, s.hash("123456"), &p, t0()).await }
    })
    .await;
    let allowed = decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    let budget = |d: &SendDecision| matches!(d, SendDecision::RateLimited { scope: LimitScope::DailyBudget, .. });
    assert_eq!((allowed, decisions.iter().filter(|d| budget(d)).count()), (25, 35), "{decisions:?}");
    for (i, decision) in (0u32..).zip(&decisions) {
        if !budget(decision) {
            continue;
        }
        let (number, client) = (s.other_number(i), s.other_client(i));
        let again = s.record(&*store, &number, &client, None, s.hash("123456"), &p, t0() + secs(1)).await.unwrap();
        assert!(budget(&again), "refused send {i} left its number's cooldown behind: {again:?}");
        assert_eq!(
            s.judge_for(&*store, &number, &client, &s.hash("123456"), t0() + secs(2)).await.unwrap(),
            VerifyOutcome::NoPendingCode,
            "refused send {i} left its code behind"
        );
    }
    let next_day = t0() + TimeDelta::days(1);
    let fresh = s.record(&*store, &s.other_number(99), &s.other_client(99), None, s.hash("654321"), &p, next_day).await;
    assert!(matches!(fresh, Ok(SendDecision::Allowed { .. })), "a new day, a new budget: {fresh:?}");
}

/// The per-country hourly cap is as exact under concurrency: 50 sends at once to one
/// country capped at 20 an hour allow 20, and the next hour takes sends again.
async fn concurrent_sends_stop_exactly_at_the_country_hour_cap(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let p = SendPolicy {
        per_country_hour: CountryCap { default: Some(20), ..CountryCap::default() },
        guard: None,
        ..policy()
    };
    let decisions = concurrently(50, |i| {
        let (store, s, p) = (store.clone(), s.clone(), p.clone());
        async move { s.record(&*store, &s.other_number(i), &s.other_client(i), None, s.hash("123456"), &p, t0()).await }
    })
    .await;
    let allowed = decisions.iter().filter(|d| matches!(d, SendDecision::Allowed { .. })).count();
    let capped = decisions
        .iter()
        .filter(|d| matches!(d, SendDecision::RateLimited { scope: LimitScope::CountryHour, .. }))
        .count();
    assert_eq!((allowed, capped), (20, 30), "{decisions:?}");
    let next_hour = t0() + TimeDelta::hours(1);
    let fresh =
        s.record(&*store, &s.other_number(99), &s.other_client(99), None, s.hash("654321"), &p, next_hour).await;
    assert!(matches!(fresh, Ok(SendDecision::Allowed { .. })), "a new hour, a new cap: {fresh:?}");
}

/// The conversion guard's figures (each send and each approval added to the country's
/// hourly tally) add up on every store: 30 sends with 5 approvals trip the guard at the
/// next send (5/30 is under its 20 %), and one more approval would have kept it open.
async fn the_guard_counts_the_sends_and_approvals_of_the_hour(store: Arc<dyn OtpStore>) {
    let s = Arc::new(Subjects::new());
    let p = policy();
    let guard = p.guard.expect("the guard is on by default");
    assert_eq!((guard.min_sends, guard.min_conversion_percent), (30, 20), "the contract's defaults");
    let at = t0();
    let decisions = concurrently(30, |i| {
        let (store, s, p) = (store.clone(), s.clone(), p.clone());
        async move { s.record(&*store, &s.other_number(i), &s.other_client(i), None, s.hash("123456"), &p, at).await }
    })
    .await;
    assert!(decisions.iter().all(|d| matches!(d, SendDecision::Allowed { .. })), "{decisions:?}");
    let approvals = concurrently(5, |i| {
        let (store, s) = (store.clone(), s.clone());
        async move { s.judge_for(&*store, &s.other_number(i), &s.other_client(i), &s.hash("123456"), at).await }
    })
    .await;
    assert!(approvals.iter().all(|o| matches!(o, VerifyOutcome::Approved { .. })), "{approvals:?}");
    let next =
        s.record(&*store, &s.other_number(30), &s.other_client(30), None, s.hash("654321"), &p, at + secs(1)).await;
    assert!(
        matches!(next, Ok(SendDecision::RateLimited { scope: LimitScope::PrefixPaused, paused: Some(_), .. })),
        "30 sends, 5 approved: the guard pauses the country: {next:?}"
    );
}
