//! SMS pumping, simulated: three days of bots sending to sequential numbers in costly
//! countries from thousands of addresses, none verified, among genuine users who do verify,
//! in other countries and in the attacked ones (other number blocks). Three days, so that
//! the guard's escalation and its pauses' ends are inside the run; the attacked countries'
//! own users, so that a pause's collateral shows. Run on the memory store and on the
//! Firestore emulator, through the service's HTTP handler, on the injected clock; and with
//! the bots asking for calls instead (international revenue share fraud pumps voice just
//! as SMS): every cap counts sends of all channels together, so the figures must hold for
//! calls too. Half the genuine users sign in by call, half by SMS.
//! docs/SECURITY.md quotes the figures this prints
//! (`cargo test -p otp-core --test main pumping:: -- --nocapture`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use otp_core::adapters::firestore::FirestoreStore;
use otp_core::adapters::memory::MemoryStore;
use otp_core::domain::Channel;
use otp_core::ports::OtpStore;
use otp_core::{Endpoint, Settings};
use otp_testkit::{ManualClock, TestApp, code_in, code_said, emulator};
use serde_json::json;

/// Countries the bots pump, with a number pattern (`{}` takes 6 digits) and a published
/// price per SMS in US dollars (Twilio's list prices of 2026-11, rounded).
const ATTACKED: [(&str, &str, f64); 5] = [
    ("LV", "+37120{}", 0.107),
    ("LT", "+37061{}", 0.071),
    ("EE", "+37251{}", 0.083),
    ("KZ", "+7701{}0", 0.227),
    ("UZ", "+99890{}0", 0.262),
];
/// Countries of the genuine users, outside the attacked ones.
const GENUINE: [(&str, &str); 5] =
    [("US", "+1415{}1"), ("DE", "+4915123{}"), ("FR", "+3361{}0"), ("GB", "+447400{}"), ("ES", "+34612{}")];
/// Genuine users of two attacked countries, in number blocks the bots do not walk.
const GENUINE_IN_ATTACKED: [(&str, &str); 2] = [("LV", "+37129{}"), ("KZ", "+7705{}0")];
/// The simulated span.
const HOURS: u32 = 72;

fn number(pattern: &str, n: u32) -> String {
    // Sequential numbers, as a pumping run walks a range.
    pattern.replacen("{}", &format!("{:06}", n % 1_000_000), 1)
}

fn day_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z").map(Into::into).unwrap_or_default()
}

/// One instance of the service on `store`, at `clock`, with `settings` over the defaults.
/// Every genuine user here is a new number (600 a day), so the new numbers' share of the
/// budget is the whole budget: the share's own effect is the simulated day's in abuse.rs
/// (at the default 50 %, these new users would meet it once the bots had spent theirs).
async fn instance(store: Arc<dyn OtpStore>, clock: Arc<ManualClock>, settings: &[(&str, &str)]) -> TestApp {
    TestApp::builder()
        .store(store)
        .clock(clock)
        .settings(&[("OTP_CHANNELS", "sms,voice"), ("OTP_SMS_PER_DAY_NEW_PERCENT", "100")])
        .settings(settings)
        .start()
        .await
}

/// One of 4096 addresses of the bots' pool (more than 1,000, so no address meets its limit).
fn bot_ip(i: u32) -> String {
    format!("100.64.{}.{}", (i >> 8) & 15, i & 255)
}

fn user_ip(i: u32) -> String {
    format!("198.18.{}.{}", (i >> 8) & 255, i & 255)
}

#[derive(Debug, Default)]
struct Figures {
    bot_attempts: u32,
    /// SMS by UTC day (0, 1, 2) and country.
    sms: BTreeMap<(u32, String), u32>,
    /// SMS to the bots' numbers, by UTC day and attacked country.
    pumped: BTreeMap<(u32, String), u32>,
    /// Genuine users of the unattacked countries: (came, served).
    genuine: (u32, u32),
    /// Genuine users of the attacked countries: (came, served).
    genuine_in_attacked: (u32, u32),
    most_sms_in_a_country_hour: u32,
    /// Codes sent, by channel (the `sms` figures count every channel: one unit each).
    by_channel: BTreeMap<Channel, u32>,
}

impl Figures {
    /// SMS to the bots' numbers of `country` on `day`.
    fn pumped_of(&self, day: u32, country: &str) -> u32 {
        self.pumped.get(&(day, country.to_owned())).copied().unwrap_or(0)
    }

    fn sms_on(&self, day: u32) -> u32 {
        self.sms.iter().filter(|((d, _), _)| *d == day).map(|(_, n)| n).sum()
    }
}

/// One genuine user: sends on `channel`, reads or hears the code, verifies. Whether they got in.
async fn sign_in(app: &TestApp, phone: &str, ip: &str, channel: Channel) -> bool {
    if app.post(Endpoint::SendOtp, json!({ "phone": phone, "channel": channel.as_str() }), ip).await.status != 202 {
        return false;
    }
    let code = app.outbox().list().into_iter().find(|m| m.to == phone).map(|m| match m.channel {
        Channel::Voice => code_said(&m.body),
        _ => code_in(&m.body),
    });
    let Some(code) = code else { return false };
    app.post(Endpoint::VerifyOtp, json!({ "phone": phone, "code": code }), ip).await.status == 200
}

/// [`HOURS`] at the contract's default limits: each minute one bot send to each attacked
/// country (21,600 in all, from 4,096 addresses) on `bots`' channel; every 12 minutes one
/// genuine user in each unattacked country and in two of the attacked ones, who sends (by
/// SMS or call, alternately) and verifies.
async fn simulate(store: Arc<dyn OtpStore>, bots: Channel) -> Figures {
    let clock = Arc::new(ManualClock::new(day_start()));
    let app = &instance(store, clock.clone(), &[]).await;
    let mut figures = Figures::default();
    let mut per_hour: BTreeMap<(String, u32), u32> = BTreeMap::new();
    let mut seen = 0;
    for minute in 0..HOURS * 60 {
        let mut calls = Vec::new();
        for (k, (_, pattern, _)) in ATTACKED.iter().enumerate() {
            let n = minute * 5 + k as u32;
            let body = json!({ "phone": number(pattern, minute), "locale": "en", "channel": bots.as_str() });
            let ip = bot_ip(n);
            calls.push(async move { app.post(Endpoint::SendOtp, body, &ip).await });
        }
        figures.bot_attempts += ATTACKED.len() as u32;
        let bots = futures_util::future::join_all(calls).await;
        for reply in &bots {
            assert!(matches!(reply.status, 202 | 429), "a bot send answered {}: {}", reply.status, reply.body);
        }
        if minute % 12 == 0 {
            let users = GENUINE.iter().map(|g| (g, false)).chain(GENUINE_IN_ATTACKED.iter().map(|g| (g, true)));
            for (k, ((_, pattern), in_attacked)) in users.enumerate() {
                let user = minute / 12 * 7 + k as u32;
                let channel = if user.is_multiple_of(2) { Channel::Sms } else { Channel::Voice };
                let served = sign_in(app, &number(pattern, 200_000 + user), &user_ip(user), channel).await;
                let tally = if in_attacked { &mut figures.genuine_in_attacked } else { &mut figures.genuine };
                tally.0 += 1;
                tally.1 += u32::from(served);
            }
        }
        let sent = app.outbox().list();
        for message in &sent[..sent.len() - seen] {
            let phone = otp_core::domain::E164Phone::parse(&message.to, None).expect("sent numbers parse");
            let country = phone.region().to_owned();
            *figures.sms.entry((minute / (24 * 60), country.clone())).or_default() += 1;
            if let Some((cc, _, _)) = ATTACKED.iter().find(|(_, pattern, _)| message.to.starts_with(bot_block(pattern)))
            {
                *figures.pumped.entry((minute / (24 * 60), (*cc).to_owned())).or_default() += 1;
            }
            *figures.by_channel.entry(message.channel).or_default() += 1;
            *per_hour.entry((country, minute / 60)).or_default() += 1;
        }
        seen = sent.len();
        clock.advance(TimeDelta::minutes(1));
    }
    figures.most_sms_in_a_country_hour = per_hour.values().copied().max().unwrap_or(0);
    figures
}

/// The number block a pattern walks: what its numbers start with.
fn bot_block(pattern: &str) -> &str {
    pattern.split("{}").next().unwrap_or(pattern)
}

fn share(tally: (u32, u32)) -> f64 {
    f64::from(tally.1) / f64::from(tally.0.max(1))
}

fn check_and_report(store: &str, figures: &Figures) {
    let defaults = Settings::default().service.policy;
    let days = HOURS / 24;
    let pumped = |day: u32| -> u32 { ATTACKED.iter().map(|(cc, _, _)| figures.pumped_of(day, cc)).sum() };
    let cost =
        |day: u32| -> f64 { ATTACKED.iter().map(|(cc, _, price)| f64::from(figures.pumped_of(day, cc)) * price).sum() };
    let unguarded: f64 = ATTACKED.iter().map(|(_, _, price)| 24.0 * 60.0 * price).sum();
    println!(
        "pumping simulation ({store}, {HOURS} h): {} bot sends; most SMS in one country-hour {}; \
         genuine users served: other countries {}/{} ({:.1} %), attacked countries {}/{} ({:.1} %)",
        figures.bot_attempts,
        figures.most_sms_in_a_country_hour,
        figures.genuine.1,
        figures.genuine.0,
        share(figures.genuine) * 100.0,
        figures.genuine_in_attacked.1,
        figures.genuine_in_attacked.0,
        share(figures.genuine_in_attacked) * 100.0,
    );
    for day in 0..days {
        let by_country: Vec<String> =
            ATTACKED.iter().map(|(cc, _, _)| format!("{cc} {}", figures.pumped_of(day, cc))).collect();
        println!(
            "  day {}: {} SMS in all; to the bots' numbers {} (${:.2}; ${unguarded:.2} without the guard): {}",
            day + 1,
            figures.sms_on(day),
            pumped(day),
            cost(day),
            by_country.join(", "),
        );
    }
    for day in 0..days {
        let total = figures.sms_on(day);
        assert!(total <= defaults.daily_budget.unwrap_or(u32::MAX), "day {day} within the daily budget: {total}");
        for (cc, _, _) in ATTACKED {
            let sms = figures.pumped_of(day, cc);
            assert!(sms < 24 * 60 / 4, "day {day}, {cc}: the guard paused it (it got {sms} of 1440 sends)");
        }
        assert!(pumped(day) * 5 < 24 * 60 * ATTACKED.len() as u32, "day {day}: most bot sends were refused");
    }
    assert!(
        figures.most_sms_in_a_country_hour <= defaults.per_country_hour.default.unwrap_or(u32::MAX),
        "within every country's hourly cap"
    );
    // The escalation: after the first day's trips the pauses stay at a day (their memory
    // runs from a pause's end), so a later day texts each attacked country at most twice
    // the guard's threshold (its sends before a trip, and its own users').
    let min_sends = defaults.guard.map_or(0, |g| g.min_sends);
    for day in 1..days {
        for (cc, _, _) in ATTACKED {
            let sms = figures.pumped_of(day, cc);
            assert!(sms <= 2 * min_sends, "day {day}, {cc}: {sms} SMS; the pauses do not escalate");
        }
    }
    assert!(share(figures.genuine) >= 0.99, "genuine users of the other countries served: {:?}", figures.genuine);
    // The guard pauses the bots' prefix, not their country: the attacked countries' own
    // users, in other prefixes, are served as well as anyone.
    assert!(
        share(figures.genuine_in_attacked) >= 0.99,
        "genuine users of the attacked countries served: {:?}",
        figures.genuine_in_attacked
    );
}

#[test]
fn every_simulated_number_is_a_valid_mobile_number_of_its_country() {
    let attacked = ATTACKED.iter().map(|(c, p, _)| (*c, *p, [0, HOURS * 60 - 1, 300_000, 300_199]));
    let genuine =
        GENUINE.iter().chain(&GENUINE_IN_ATTACKED).map(|(c, p)| (*c, *p, [200_000, 201_799, 300_000, 300_199]));
    for (country, pattern, uses) in attacked.chain(genuine) {
        for n in uses {
            let raw = number(pattern, n);
            let phone = otp_core::domain::E164Phone::parse(&raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(phone.region(), country, "{raw}");
            assert!(Settings::default().service.number_types.allows(&phone), "{raw}: {:?}", phone.number_type());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_of_pumping_on_the_memory_store() {
    let figures = simulate(Arc::new(MemoryStore::new()), Channel::Sms).await;
    check_and_report("memory", &figures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_days_of_voice_pumping_on_the_memory_store() {
    let figures = simulate(Arc::new(MemoryStore::new()), Channel::Voice).await;
    check_and_report("memory, the bots asking for calls", &figures);
    println!("  codes by channel: {:?}", figures.by_channel);
    let calls = figures.by_channel.get(&Channel::Voice).copied().unwrap_or(0);
    let texts = figures.by_channel.get(&Channel::Sms).copied().unwrap_or(0);
    // The bots' calls that got through, and half the genuine users': most codes were calls,
    // and the caps above held for them.
    assert!(calls > texts && texts > 0, "calls {calls}, texts {texts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_days_of_pumping_on_firestore() {
    let Some(store) = emulator::fresh_store("three_days_of_pumping_on_firestore") else { return };
    let store = Arc::new(store);
    let figures = simulate(store, Channel::Sms).await;
    check_and_report("Firestore emulator", &figures);
}

/// Two instances of the service on one Firestore, as two Lambda instances are: 200
/// concurrent sends to distinct numbers from distinct clients meet a budget of 50 (16
/// shards of 3 or 4 units). Exactly 50 SMS leave, every other answer is `429 rate_limited`:
/// none gives up on contention.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_budget_is_exact_across_instances_under_concurrency() {
    let Some(host) = emulator::host("the_budget_is_exact_across_instances_under_concurrency") else { return };
    let config = emulator::config();
    let settings = [("OTP_SMS_PER_DAY", "50")];
    let clock = Arc::new(ManualClock::new(day_start() + TimeDelta::hours(12)));
    let a: Arc<FirestoreStore> = Arc::new(emulator::store(host.clone(), config.clone()));
    let b: Arc<FirestoreStore> = Arc::new(emulator::store(host, config));
    let one = Arc::new(instance(a.clone(), clock.clone(), &settings).await);
    let two = Arc::new(instance(b.clone(), clock.clone(), &settings).await);
    // Ten countries, twenty numbers each: under the guard's and the country cap's thresholds.
    let patterns: Vec<&str> = ATTACKED.iter().map(|(_, p, _)| *p).chain(GENUINE.iter().map(|(_, p)| *p)).collect();
    let start = Arc::new(tokio::sync::Barrier::new(200));
    let tasks: Vec<_> = (0..200u32)
        .map(|i| {
            let app = if i % 2 == 0 { one.clone() } else { two.clone() };
            let start = start.clone();
            let phone = number(patterns[(i % 10) as usize], 300_000 + i);
            tokio::spawn(async move {
                start.wait().await;
                app.post(Endpoint::SendOtp, json!({ "phone": phone }), &user_ip(i)).await
            })
        })
        .collect();
    let mut answers: BTreeMap<(u16, String), u32> = BTreeMap::new();
    for task in tasks {
        let reply = task.await.expect("no send panicked");
        *answers.entry((reply.status, reply.error_code().to_owned())).or_default() += 1;
    }
    let sms = one.outbox().list().len() + two.outbox().list().len();
    let overdrawn = a.overdrawn() + b.overdrawn();
    println!(
        "budget 50, 200 concurrent sends over two instances: {sms} SMS; answers {answers:?}; \
         commits refused for a conflict and retried: {}; units that landed in a full shard, given back: {overdrawn}",
        a.conflicts() + b.conflicts()
    );
    assert_eq!(sms, 50, "exactly the budget: {answers:?}");
    assert_eq!(answers.get(&(202, "<none>".to_owned())), Some(&50));
    assert_eq!(answers.get(&(429, "rate_limited".to_owned())), Some(&150), "every other answer: {answers:?}");
    // The units are added blindly (no commit conflicts on the shards), so the race for the
    // budget's last units shows as units added to a shard already full, and given back.
    assert!(overdrawn > 0, "the instances really raced for the last units");
}
