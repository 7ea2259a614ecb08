//! Latency and round trips of the Firestore store against the emulator: N sends (each to
//! its own number from its own client, so every one is allowed) then N verifies of the
//! right codes, by W concurrent workers. `scripts/bench-firestore` runs it with the
//! emulator; alone it needs FIRESTORE_EMULATOR_HOST.
//!
//! Usage: bench_firestore [N=500] [W=1]   (N + 50 at most 2,000: the default daily budget)

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use otp_core::adapters::firestore::{FirestoreAuth, FirestoreConfig, FirestoreStore};
use otp_core::domain::{Channel, CodeLength, OtpCode, Pepper, SendDecision, VerifyOutcome};
use otp_core::ports::{OtpStore, SendSubjects, VerifySubjects};
use rand::RngCore;

#[tokio::main]
async fn main() {
    if let Err(message) = run().await {
        eprintln!("bench_firestore: {message}");
        std::process::exit(1);
    }
}

const WARM_UP: u32 = 50;

/// The country of send `i`: 20 in turn, so each stays under its hourly cap of 200.
fn country(i: u32) -> &'static str {
    const COUNTRIES: [&str; 20] = [
        "US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "SE", "NO", "DK", "FI", "PL", "PT", "IE", "AT", "CH", "CZ",
        "RO", "GR",
    ];
    COUNTRIES[(i % 20) as usize]
}

struct Sample {
    took: Duration,
    trips: u64,
}

async fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(Ok(500), |a| a.parse()).map_err(|_| "N must be a whole number")?;
    let workers: u32 = args.next().map_or(Ok(1), |a| a.parse()).map_err(|_| "W must be a whole number")?;
    let workers = workers.clamp(1, n.max(1));
    let host = std::env::var("FIRESTORE_EMULATOR_HOST").map_err(|_| "FIRESTORE_EMULATOR_HOST is not set")?;
    let project = format!("demo-bench-{:08x}", rand::rng().next_u32());
    let store = Arc::new(FirestoreStore::new(FirestoreConfig::new(project), FirestoreAuth::Emulator(host.clone())));
    store.connect_now().await.map_err(|e| e.to_string())?;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let pepper = Arc::new(Pepper::new(key.to_vec()));
    // Every limit of the contract at its default, the money caps included (2,000 SMS a
    // day, 200 per country and hour: the sends go to 20 countries, so up to 1,950 are all
    // allowed); only the conversion guard waits for more sends, since every verify here
    // comes after all the sends.
    if n + WARM_UP > 2000 {
        return Err("N + 50 must be within the default daily budget of 2,000".into());
    }
    let settings = otp_core::Settings::from_lookup(|name| match name {
        "OTP_GUARD_MIN_SENDS" => Some("100000000".into()),
        _ => None,
    })
    .map_err(|e| e.to_string())?;
    let policy = Arc::new(settings.service.policy);
    let verify_policy = settings.service.verify_policy;
    let code = OtpCode::parse("123456", CodeLength::default()).map_err(|e| e.to_string())?;
    println!(
        "Firestore store on the emulator at {host}: {n} sends, then {n} verifies, {workers} worker(s), after {} of each to warm up",
        n.min(WARM_UP)
    );

    let send = {
        let (store, pepper, policy, code) = (store.clone(), pepper.clone(), policy.clone(), code.clone());
        move |i: u32| {
            let (store, pepper, policy, code) = (store.clone(), pepper.clone(), policy.clone(), code.clone());
            async move {
                let phone = format!("+1415{i:07}");
                let (number, client) = (pepper.number_key(&phone), pepper.client_key(&format!("client-{i}")));
                let subjects = SendSubjects {
                    number: &number,
                    client: &client,
                    range: None,
                    country: country(i),
                    prefix: country(i),
                    device: None,
                    challenged: false,
                };
                let decision = store
                    .record_send(&subjects, pepper.hash_code(&phone, &code), Channel::Sms, &policy, Utc::now())
                    .await
                    .map_err(|e| e.to_string())?;
                match decision {
                    SendDecision::Allowed { .. } => Ok(()),
                    other => Err(format!("send {i} not allowed: {other:?}")),
                }
            }
        }
    };
    let verify = {
        let (store, pepper) = (store.clone(), pepper.clone());
        move |i: u32| {
            let (store, pepper, code) = (store.clone(), pepper.clone(), code.clone());
            async move {
                let phone = format!("+1415{i:07}");
                let (number, client) = (pepper.number_key(&phone), pepper.client_key(&format!("client-{i}")));
                let subjects = VerifySubjects {
                    number: &number,
                    client: &client,
                    country: country(i),
                    prefix: country(i),
                    device: None,
                };
                let outcome = store
                    .judge_attempt(&subjects, &pepper.hash_code(&phone, &code), &verify_policy, Utc::now())
                    .await
                    .map_err(|e| e.to_string())?;
                match outcome {
                    VerifyOutcome::Approved { .. } => Ok(()),
                    other => Err(format!("verify {i} not approved: {other:?}")),
                }
            }
        }
    };
    // Warm the emulator's JVM and the connection first, on numbers the measured runs do not use.
    let warm = n.min(WARM_UP);
    phase(0..warm, workers, &store, send.clone()).await?;
    phase(0..warm, workers, &store, verify.clone()).await?;
    let measured = WARM_UP..WARM_UP + n;
    let sends = phase(measured.clone(), workers, &store, send).await?;
    let verifies = phase(measured, workers, &store, verify).await?;
    println!();
    println!("| operation | n | p50 | p99 | max | round trips per operation | throughput |");
    println!("|---|---|---|---|---|---|---|");
    report("send (allowed)", &sends, workers);
    report("verify (approved)", &verifies, workers);
    println!("\ncommit conflicts retried: {}", store.conflicts());
    Ok(())
}

struct Phase {
    samples: Vec<Sample>,
    wall: Duration,
    total_trips: u64,
}

/// Operations on numbers `range`, spread over `workers` tasks. Each is timed alone; its
/// round trips are the store's counter before and after, exact only with one worker.
async fn phase<F, Fut>(
    range: std::ops::Range<u32>,
    workers: u32,
    store: &Arc<FirestoreStore>,
    op: F,
) -> Result<Phase, String>
where
    F: Fn(u32) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let trips_before = store.round_trips();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (op, store, range) = (op.clone(), store.clone(), range.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut i = range.start + w;
            while i < range.end {
                let before = store.round_trips();
                let t = Instant::now();
                op(i).await?;
                samples.push(Sample { took: t.elapsed(), trips: store.round_trips() - before });
                i += workers;
            }
            Ok::<_, String>(samples)
        }));
    }
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.map_err(|e| e.to_string())??);
    }
    Ok(Phase { samples, wall: started.elapsed(), total_trips: store.round_trips() - trips_before })
}

fn report(name: &str, phase: &Phase, workers: u32) {
    let mut took: Vec<Duration> = phase.samples.iter().map(|s| s.took).collect();
    took.sort_unstable();
    let at =
        |q: f64| took.get(((took.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default();
    let ops = phase.samples.len().max(1) as f64;
    let most = match workers {
        1 => format!("; most for one: {}", phase.samples.iter().map(|s| s.trips).max().unwrap_or(0)),
        _ => String::new(),
    };
    println!(
        "| {name} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ({} in all{most}) | {:.0}/s |",
        phase.samples.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        took.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        phase.total_trips as f64 / ops,
        phase.total_trips,
        ops / phase.wall.as_secs_f64(),
    );
}
