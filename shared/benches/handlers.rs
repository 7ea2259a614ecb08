//! Latency of the handlers in-process (memory store, outbox): what our own code costs per
//! request, without network or providers. Run: `cargo bench -p otp-core --bench handlers`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use otp_core::adapters::clock::SystemClock;
use otp_core::adapters::memory::MemoryStore;
use otp_core::adapters::outbox::Outbox;
use otp_core::domain::E164Phone;
use otp_core::secrets::env::EnvSecrets;
use otp_core::wiring::Overrides;
use otp_core::{Endpoint, Settings};
use otp_testkit::{code_in, wrong_code};

const N: usize = 20_000;

fn request(body: String) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(body.into_bytes())
        .expect("valid request")
}

/// The client address of request `i`: each its own, as real traffic is.
fn client(i: usize) -> std::net::IpAddr {
    std::net::Ipv4Addr::from(0x0a00_0000 + i as u32).into()
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<28} n={:<6} p50={:>8.1?} p99={:>8.1?} max={:>8.1?} mean={:>8.1?}",
        samples.len(),
        pct(0.50),
        pct(0.99),
        samples[samples.len() - 1],
        total / samples.len() as u32
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let started = Instant::now();
        let _ = E164Phone::parse("+14155550123", None);
        println!("{:<28} {:?}", "phone metadata first load", started.elapsed());

        let mut secrets = EnvSecrets::from_lookup(|_| None);
        secrets.fill_missing_with_random();
        let clock = Arc::new(SystemClock);
        let outbox = Arc::new(Outbox::new(clock.clone(), false));
        // The contract's default limits, every one on, with the shared caps raised so that
        // no send of the run is refused (a refusal skips work); each send comes from its own
        // client address, as real traffic does.
        let settings = Settings::from_lookup(|name| match name {
            "OTP_SMS_PER_DAY" | "OTP_SMS_PER_COUNTRY_HOUR" => Some("100000000".into()),
            "OTP_GUARD_MIN_SENDS" => Some("100000000".into()),
            _ => None,
        })
        .expect("bench settings are valid");
        let overrides = Overrides {
            clock: Some(clock),
            secrets: Some(Arc::new(secrets)),
            store: Some(Arc::new(MemoryStore::new())),
            sms: Some(outbox.clone()),
            ..Default::default()
        };
        let api = otp_core::wiring::build(settings, overrides).await.api;

        let phones: Vec<String> = (0..N).map(|i| format!("+4915{:09}", 100_000_000 + i)).collect();
        let mut parse = Vec::with_capacity(N);
        for phone in &phones {
            let t = Instant::now();
            black_box(E164Phone::parse(phone, None).ok());
            parse.push(t.elapsed());
        }
        report("parse E.164 number", parse);

        let mut send = Vec::with_capacity(N);
        for (i, phone) in phones.iter().enumerate() {
            let req = request(format!(r#"{{"phone":"{phone}","locale":"de"}}"#));
            let t = Instant::now();
            let response = api.handle(Endpoint::SendOtp, &req, Some(client(i))).await;
            send.push(t.elapsed());
            assert_eq!(response.status(), 202);
        }
        report("send-otp (202)", send);

        let codes: Vec<(String, String)> = outbox.list().into_iter().map(|m| (m.to, code_in(&m.body))).collect();
        let mut wrong = Vec::with_capacity(N);
        for (i, (phone, code)) in codes.iter().enumerate() {
            let bad = wrong_code(code);
            let req = request(format!(r#"{{"phone":"{phone}","code":"{bad}"}}"#));
            let t = Instant::now();
            let response = api.handle(Endpoint::VerifyOtp, &req, Some(client(i))).await;
            wrong.push(t.elapsed());
            assert_eq!(response.status(), 401);
        }
        report("verify-otp wrong (401)", wrong);
        let mut right = Vec::with_capacity(N);
        for (i, (phone, code)) in codes.iter().enumerate() {
            let req = request(format!(r#"{{"phone":"{phone}","code":"{code}"}}"#));
            let t = Instant::now();
            let response = api.handle(Endpoint::VerifyOtp, &req, Some(client(i))).await;
            right.push(t.elapsed());
            assert_eq!(response.status(), 200);
        }
        report("verify-otp right (200)", right);
    });
}
