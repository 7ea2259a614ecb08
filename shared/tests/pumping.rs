//! SMS pumping, simulated: a day of bots sending to sequential numbers in costly
//! countries from thousands of addresses, none verified, among genuine users of other
//! countries who do verify. Run on the memory store and on the Firestore emulator, through
//! the service's HTTP handler, on the injected clock. docs/SECURITY.md quotes the figures
//! this prints (`cargo test -p otp-core --test pumping -- --nocapture`).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use otp_core::adapters::firestore::FirestoreStore;
use otp_core::adapters::memory::MemoryStore;
use otp_core::ports::OtpStore;
use otp_core::{Endpoint, Settings};
use otp_testkit::{ManualClock, TestApp, code_in, emulator};
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
/// Countries of the genuine users.
const GENUINE: [(&str, &str); 5] =
    [("US", "+1415{}1"), ("DE", "+4915123{}"), ("FR", "+3361{}0"), ("GB", "+447400{}"), ("ES", "+34612{}")];

fn number(pattern: &str, n: u32) -> String {
    // Sequential numbers, as a pumping run walks a range.
    pattern.replacen("{}", &format!("{:06}", n % 1_000_000), 1)
}

fn day_start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z").map(Into::into).unwrap_or_default()
}

/// One instance of the service on `store`, at `clock`, with `settings` over the defaults.
async fn instance(store: Arc<dyn OtpStore>, clock: Arc<ManualClock>, settings: &[(&str, &str)]) -> TestApp {
    TestApp::builder().store(store).clock(clock).settings(settings).start().await
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
    sms_by_country: BTreeMap<String, u32>,
    genuine_users: u32,
    genuine_served: u32,
    most_sms_in_a_country_hour: u32,
}

/// A day at the contract's default limits: each minute one bot send to each attacked
/// country (7,200 in all, from 4,096 addresses); every 12 minutes one genuine user in each
/// other country, who sends and verifies.
async fn simulate_a_day(store: Arc<dyn OtpStore>) -> Figures {
    let clock = Arc::new(ManualClock::new(day_start()));
    let app = &instance(store, clock.clone(), &[]).await;
    let mut figures = Figures::default();
    let mut per_hour: BTreeMap<(String, i64), u32> = BTreeMap::new();
    let mut seen = 0;
    for minute in 0..24 * 60u32 {
        let mut calls = Vec::new();
        for (k, (_, pattern, _)) in ATTACKED.iter().enumerate() {
            let n = minute * 5 + k as u32;
            let body = json!({ "phone": number(pattern, minute), "locale": "en" });
            let ip = bot_ip(n);
            calls.push(async move { app.post(Endpoint::SendOtp, body, &ip).await });
        }
        figures.bot_attempts += ATTACKED.len() as u32;
        let bots = futures_util::future::join_all(calls).await;
        for reply in &bots {
            assert!(matches!(reply.status, 202 | 429), "a bot send answered {}: {}", reply.status, reply.body);
        }
        if minute % 12 == 0 {
            for (k, (_, pattern)) in GENUINE.iter().enumerate() {
                let user = minute / 12 * 5 + k as u32;
                figures.genuine_users += 1;
                let phone = number(pattern, 200_000 + user);
                let ip = user_ip(user);
                if app.post(Endpoint::SendOtp, json!({ "phone": phone }), &ip).await.status != 202 {
                    continue;
                }
                let code = app.outbox().list().into_iter().find(|m| m.to == phone).map(|m| code_in(&m.body));
                let Some(code) = code else { continue };
                let body = json!({ "phone": phone, "code": code });
                if app.post(Endpoint::VerifyOtp, body, &ip).await.status == 200 {
                    figures.genuine_served += 1;
                }
            }
        }
        let sent = app.outbox().list();
        for message in &sent[..sent.len() - seen] {
            let phone = otp_core::domain::E164Phone::parse(&message.to, None).expect("sent numbers parse");
            let country = phone.region().to_owned();
            *figures.sms_by_country.entry(country.clone()).or_default() += 1;
            *per_hour.entry((country, i64::from(minute / 60))).or_default() += 1;
        }
        seen = sent.len();
        clock.advance(TimeDelta::minutes(1));
    }
    figures.most_sms_in_a_country_hour = per_hour.values().copied().max().unwrap_or(0);
    figures
}

fn check_and_report(store: &str, figures: &Figures) {
    let defaults = Settings::default().service.policy;
    let total: u32 = figures.sms_by_country.values().sum();
    let pumped: u32 = ATTACKED.iter().map(|(cc, _, _)| figures.sms_by_country.get(*cc).copied().unwrap_or(0)).sum();
    let cost: f64 = ATTACKED
        .iter()
        .map(|(cc, _, price)| f64::from(figures.sms_by_country.get(*cc).copied().unwrap_or(0)) * price)
        .sum();
    let unguarded: f64 = ATTACKED.iter().map(|(_, _, price)| 24.0 * 60.0 * price).sum();
    let served = f64::from(figures.genuine_served) / f64::from(figures.genuine_users.max(1));
    println!(
        "pumping simulation ({store}): {} bot sends -> {pumped} SMS to the attacked countries (${cost:.2}; \
         ${unguarded:.2} without the guard), {total} SMS in all, most in one country-hour {}, \
         genuine users served {}/{} ({:.1} %); SMS by country {:?}",
        figures.bot_attempts,
        figures.most_sms_in_a_country_hour,
        figures.genuine_served,
        figures.genuine_users,
        served * 100.0,
        figures.sms_by_country,
    );
    assert!(total <= defaults.daily_budget.unwrap_or(u32::MAX), "within the daily budget: {total}");
    assert!(
        figures.most_sms_in_a_country_hour <= defaults.per_country_hour.default.unwrap_or(u32::MAX),
        "within every country's hourly cap"
    );
    for (cc, _, _) in ATTACKED {
        let sms = figures.sms_by_country.get(cc).copied().unwrap_or(0);
        assert!(sms < 24 * 60 / 4, "{cc}: the guard paused it (it got {sms} of 1440 sends)");
    }
    assert!(pumped * 5 < figures.bot_attempts, "most bot sends were refused: {pumped}");
    assert!(served >= 0.95, "genuine users served: {:.1} %", served * 100.0);
}

#[test]
fn every_simulated_number_is_a_valid_mobile_number_of_its_country() {
    let attacked = ATTACKED.iter().map(|(c, p, _)| (*c, *p, [0, 1439, 300_000, 300_199]));
    for (country, pattern, uses) in attacked.chain(GENUINE.map(|(c, p)| (c, p, [200_000, 200_599, 300_000, 300_199]))) {
        for n in uses {
            let raw = number(pattern, n);
            let phone = otp_core::domain::E164Phone::parse(&raw, None).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(phone.region(), country, "{raw}");
            assert!(Settings::default().service.number_types.allows(&phone), "{raw}: {:?}", phone.number_type());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_of_pumping_on_the_memory_store() {
    let figures = simulate_a_day(Arc::new(MemoryStore::new())).await;
    check_and_report("memory", &figures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_day_of_pumping_on_firestore() {
    let Some(store) = emulator::fresh_store("a_day_of_pumping_on_firestore") else { return };
    let store = Arc::new(store);
    let figures = simulate_a_day(store).await;
    check_and_report("Firestore emulator", &figures);
}

/// Two instances of the service on one Firestore, as two Lambda instances are: 200
/// concurrent sends to distinct numbers from distinct clients meet a budget of 50. Exactly
/// 50 SMS leave, every other answer is `429 rate_limited`.
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
    println!(
        "budget 50, 200 concurrent sends over two instances: {sms} SMS; answers {answers:?}; \
         commits refused for a conflict and retried: {}",
        a.conflicts() + b.conflicts()
    );
    assert_eq!(sms, 50, "exactly the budget: {answers:?}");
    assert_eq!(answers.get(&(202, "<none>".to_owned())), Some(&50));
    assert_eq!(answers.get(&(429, "rate_limited".to_owned())), Some(&150), "every other answer: {answers:?}");
    assert!(a.conflicts() + b.conflicts() > 0, "the instances really raced");
}
