//! What the phone-number pattern cache costs under a stream of numbers from many
//! countries, after start-up warmed the countries served (`wiring` does it with
//! `warm_regions`). Prints the warm-up's time, pattern count and memory, then parses a
//! stream that visits every region with an example mobile number three times over,
//! and how long each parse took: a warmed country's number, another country's first
//! number (its patterns compiled), and a repeat. docs/PERFORMANCE.md.
//!
//!   cargo run --release -p otp-core --example pattern_stream -- US GB DE   # regions to warm

use std::time::Instant;

use otp_core::domain::E164Phone;
use otp_core::domain::phone::warm_regions;
use phonenumber::metadata::DATABASE;

fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The patterns the cache holds now (its length alone stays put once it is full).
fn cached() -> std::collections::HashSet<String> {
    DATABASE.cache().lock().map(|cache| cache.iter().map(|(source, _)| source.clone()).collect()).unwrap_or_default()
}

fn main() {
    let warm: Vec<String> = std::env::args().skip(1).map(|r| r.to_ascii_uppercase()).collect();
    let started = Instant::now();
    let _ = DATABASE.cache();
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let rss_loaded = rss_kib("VmRSS:");
    let started = Instant::now();
    let warmed = warm_regions(&warm);
    let warm_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "database load {load_ms:.1} ms; warming {} regions {warm_ms:.1} ms: {} patterns, cache capacity {}, +{} KiB RSS",
        warmed.regions,
        warmed.patterns,
        warmed.capacity,
        rss_kib("VmRSS:").saturating_sub(rss_loaded)
    );

    // Every region's example mobile number, in a fixed scrambled order (no two runs differ).
    let mut numbers: Vec<(String, String)> = DATABASE
        .iter()
        .filter_map(|meta| {
            let example = meta.descriptors().mobile()?.example()?;
            Some((meta.id().to_owned(), format!("+{}{example}", meta.country_code())))
        })
        .collect();
    numbers
        .sort_by_key(|(id, _)| id.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)) % 1_000_003));
    let (mut hot, mut first, mut repeat) = (Vec::new(), Vec::new(), Vec::new());
    let (mut compiles_of_warmed, mut compiles_again) = (0, 0);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..3 {
        for (id, raw) in &numbers {
            let before = cached();
            let started = Instant::now();
            let _ = E164Phone::parse(raw, None);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let compiled = !cached().is_subset(&before);
            if warm.contains(id) {
                hot.push(ms);
                compiles_of_warmed += usize::from(compiled);
            } else if seen.insert(id.clone()) {
                first.push(ms);
            } else {
                repeat.push(ms);
                compiles_again += usize::from(compiled);
            }
        }
    }
    println!(
        "stream of {} numbers ({} regions x 3): warmed country p50 {:.3} ms (n={}, {} compiled a pattern); \
         other country, first number p50 {:.2} ms (n={}); other country again p50 {:.3} ms (n={}, {} compiled again); peak RSS {} KiB",
        numbers.len() * 3,
        numbers.len(),
        median(&mut hot),
        hot.len(),
        compiles_of_warmed,
        median(&mut first),
        first.len(),
        median(&mut repeat),
        repeat.len(),
        compiles_again,
        rss_kib("VmHWM:")
    );
}
