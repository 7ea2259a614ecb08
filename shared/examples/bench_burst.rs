//! A burst of sign-ins on the Firestore emulator with the money caps on (the contract's
//! defaults: 2,000 SMS a day, 200 per country and hour, the conversion guard) or off: N
//! sign-ins by W concurrent workers, each a send to its own number from its own client
//! and then the verify of its code, in 50 countries. Sends and verifies go through two
//! stores on one project, as the send-otp and verify-otp functions are two Lambda
//! functions, so the send store's counters are the sends' own. `scripts/bench-burst` runs
//! it for today's design and the one before it, side by side; alone it needs
//! FIRESTORE_EMULATOR_HOST.
//!
//! Usage: bench_burst LABEL on|off N W...   (one JSON line per W on stdout)
//!
//! Built with `--cfg otp_baseline` against an older tree, whose store does not count the
//! documents it reads: those are derived from its round trips (every read of a send takes
//! the same documents there).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use otp_core::adapters::firestore::{FirestoreAuth, FirestoreConfig, FirestoreStore};
#[cfg(not(otp_baseline))]
use otp_core::domain::Channel;
use otp_core::domain::{CodeLength, OtpCode, Pepper, SendDecision, VerifyOutcome};
use otp_core::ports::{OtpStore, SendSubjects, StoreError, VerifySubjects};
use rand::RngCore;

/// Countries of the burst: 1,500 sign-ins are 30 in each, far under the hourly cap of 200,
/// and a wave of 500 at once is 10 in each, under the conversion guard's 30 sends (a
/// country that gets 30 sends before their verifies come back is paused by the guard: what
/// it is for, but not what this measures).
const COUNTRIES: [&str; 50] = [
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "SE", "NO", "DK", "FI", "PL", "PT", "IE", "AT", "CH", "CZ", "RO",
    "GR", "HU", "BG", "HR", "SK", "SI", "LT", "LV", "EE", "LU", "MT", "CY", "IS", "CA", "MX", "BR", "AR", "CL", "CO",
    "PE", "AU", "NZ", "JP", "KR", "SG", "MY", "TH", "PH", "ID", "VN", "ZA",
];
/// Sign-ins before each measured run, to warm the emulator's JVM; they count toward the caps.
const WARM_UP: u32 = 50;

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("bench_burst: {message}");
        std::process::exit(1);
    }
}

#[derive(Default)]
struct Tally {
    sent: AtomicU32,
    limited: AtomicU32,
    contention: AtomicU32,
    failed: AtomicU32,
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [label, caps, n, workers @ ..] = args.as_slice() else {
        return Err("usage: bench_burst LABEL on|off N W...".into());
    };
    let caps_on = match caps.as_str() {
        "on" => true,
        "off" => false,
        _ => return Err("caps must be on or off".into()),
    };
    let n: u32 = n.parse().map_err(|_| "N must be a whole number")?;
    let host = std::env::var("FIRESTORE_EMULATOR_HOST").map_err(|_| "FIRESTORE_EMULATOR_HOST is not set")?;
    let settings = otp_core::Settings::from_lookup(|name| match name {
        "OTP_SMS_PER_DAY" | "OTP_SMS_PER_COUNTRY_HOUR" if !caps_on => Some("0".into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    for w in workers {
        let w: u32 = w.parse().map_err(|_| "W must be a whole number")?;
        let line = burst(&host, &settings, label, caps_on, n, w.max(1)).await?;
        println!("{line}");
    }
    Ok(())
}

async fn burst(
    host: &str,
    settings: &otp_core::Settings,
    label: &str,
    caps_on: bool,
    n: u32,
    workers: u32,
) -> Result<serde_json::Value, String> {
    let project = format!("demo-burst-{:08x}", rand::rng().next_u32());
    let config = FirestoreConfig::new(project);
    let sends = Arc::new(FirestoreStore::new(config.clone(), FirestoreAuth::Emulator(host.to_owned())));
    let verifies = Arc::new(FirestoreStore::new(config, FirestoreAuth::Emulator(host.to_owned())));
    sends.connect_now().await.map_err(|e| e.to_string())?;
    verifies.connect_now().await.map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let pepper = Arc::new(Pepper::new(key.to_vec()));
    let policy = Arc::new(settings.service.policy.clone());
    let verify_policy = Arc::new(settings.service.verify_policy);
    let code = OtpCode::parse("123456", CodeLength::default()).map_err(|e| e.to_string())?;

    let sign_in = {
        let (sends, verifies, pepper) = (sends.clone(), verifies.clone(), pepper.clone());
        move |i: u32, tally: Arc<Tally>| {
            let (sends, verifies, pepper, policy, verify_policy, code) =
                (sends.clone(), verifies.clone(), pepper.clone(), policy.clone(), verify_policy.clone(), code.clone());
            async move {
                let country = COUNTRIES[i as usize % COUNTRIES.len()];
                let phone = format!("+{country}{i:08}");
                let (number, client) = (pepper.number_key(&phone), pepper.client_key(&format!("client-{i}")));
                let hash = pepper.hash_code(&phone, &code);
                #[cfg(otp_baseline)]
                let subjects = SendSubjects { number: &number, client: &client, range: None, country };
                #[cfg(not(otp_baseline))]
                let subjects = SendSubjects {
                    number: &number,
                    client: &client,
                    range: None,
                    country,
                    prefix: country,
                    device: None,
                    challenged: false,
                };
                let started = Instant::now();
                #[cfg(not(otp_baseline))]
                let decision = sends.record_send(&subjects, hash, Channel::Sms, &policy, Utc::now()).await;
                #[cfg(otp_baseline)]
                let decision = sends.record_send(&subjects, hash, &policy, Utc::now()).await;
                let took = started.elapsed();
                match decision {
                    Ok(SendDecision::Allowed { .. }) => tally.sent.fetch_add(1, Ordering::Relaxed),
                    // Refused (rate limited, or a challenge asked for).
                    Ok(_) => {
                        return (took, tally.limited.fetch_add(1, Ordering::Relaxed));
                    }
                    Err(StoreError::Contention) => return (took, tally.contention.fetch_add(1, Ordering::Relaxed)),
                    Err(_) => return (took, tally.failed.fetch_add(1, Ordering::Relaxed)),
                };
                #[cfg(otp_baseline)]
                let subjects = VerifySubjects { number: &number, client: &client, country };
                #[cfg(not(otp_baseline))]
                let subjects =
                    VerifySubjects { number: &number, client: &client, country, prefix: country, device: None };
                match verifies.judge_attempt(&subjects, &hash, &verify_policy, Utc::now()).await {
                    #[cfg(not(otp_baseline))]
                    Ok(VerifyOutcome::Approved { .. }) => {}
                    #[cfg(otp_baseline)]
                    Ok(VerifyOutcome::Approved) => {}
                    _ => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                (took, 0)
            }
        }
    };

    run_workers(0..WARM_UP, workers.min(WARM_UP), Arc::new(Tally::default()), sign_in.clone()).await?;
    let before = Counters::of(&sends);
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let mut took = run_workers(WARM_UP..WARM_UP + n, workers, tally.clone(), sign_in).await?;
    let wall = started.elapsed();
    let used = Counters::of(&sends).since(&before);
    took.sort_unstable();
    let at =
        |q: f64| took.get(((took.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default();
    let sent = tally.sent.load(Ordering::Relaxed);
    let per_sent = |x: u64| x as f64 / f64::from(sent.max(1));
    let documents = documents_read(&used, sent, caps_on);
    Ok(serde_json::json!({
        "design": label,
        "caps": if caps_on { "on" } else { "off" },
        "concurrency": workers,
        "sign_ins": n,
        "sent": sent,
        "rate_limited": tally.limited.load(Ordering::Relaxed),
        "unavailable_503": tally.contention.load(Ordering::Relaxed),
        "failed": tally.failed.load(Ordering::Relaxed),
        "conflicts_per_sent": per_sent(used.conflicts),
        "overdrawn": used.overdrawn,
        "documents_read_per_sent": per_sent(documents),
        "round_trips_per_sent": per_sent(used.round_trips),
        "send_p50_ms": at(0.50).as_secs_f64() * 1e3,
        "send_p99_ms": at(0.99).as_secs_f64() * 1e3,
        "sends_per_s": f64::from(sent) / wall.as_secs_f64(),
        "wall_s": wall.as_secs_f64(),
    }))
}

struct Counters {
    round_trips: u64,
    conflicts: u64,
    documents_read: u64,
    overdrawn: u64,
}

impl Counters {
    fn of(store: &FirestoreStore) -> Self {
        Self {
            round_trips: store.round_trips(),
            conflicts: store.conflicts(),
            documents_read: measured_reads(store),
            overdrawn: measured_overdrawn(store),
        }
    }

    fn since(&self, before: &Self) -> Self {
        Self {
            round_trips: self.round_trips - before.round_trips,
            conflicts: self.conflicts - before.conflicts,
            documents_read: self.documents_read - before.documents_read,
            overdrawn: self.overdrawn - before.overdrawn,
        }
    }
}

#[cfg(not(otp_baseline))]
fn measured_reads(store: &FirestoreStore) -> u64 {
    store.documents_read()
}

#[cfg(not(otp_baseline))]
fn measured_overdrawn(store: &FirestoreStore) -> u64 {
    store.overdrawn()
}

#[cfg(not(otp_baseline))]
fn documents_read(used: &Counters, _sent: u32, _caps_on: bool) -> u64 {
    used.documents_read
}

#[cfg(otp_baseline)]
fn measured_reads(_store: &FirestoreStore) -> u64 {
    0
}

/// The older store has no blind reservations, so none lands in a full shard.
#[cfg(otp_baseline)]
fn measured_overdrawn(_store: &FirestoreStore) -> u64 {
    0
}

/// The older store reads the same documents at every try of a send: number, client, the
/// guard, 8 country and 8 approval shards of this hour and the last, and with the budget
/// on its 8 shards. Its commits are the allowed sends' and the refused (conflicting) ones.
#[cfg(otp_baseline)]
fn documents_read(used: &Counters, sent: u32, caps_on: bool) -> u64 {
    let per_read = if caps_on { 27 } else { 19 };
    let reads = used.round_trips.saturating_sub(u64::from(sent) + used.conflicts);
    reads * per_read
}

/// Sign-ins `range` by `workers` tasks, each taking the next number; the sends' latencies.
async fn run_workers<F, Fut>(
    range: std::ops::Range<u32>,
    workers: u32,
    tally: Arc<Tally>,
    sign_in: F,
) -> Result<Vec<Duration>, String>
where
    F: Fn(u32, Arc<Tally>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = (Duration, u32)> + Send,
{
    let next = Arc::new(AtomicU32::new(range.start));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (sign_in, next, tally, end) = (sign_in.clone(), next.clone(), tally.clone(), range.end);
        tasks.push(tokio::spawn(async move {
            let mut took = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break took;
                }
                took.push(sign_in(i, tally.clone()).await.0);
            }
        }));
    }
    let mut took = Vec::new();
    for task in tasks {
        took.extend(task.await.map_err(|e| e.to_string())?);
    }
    Ok(took)
}
