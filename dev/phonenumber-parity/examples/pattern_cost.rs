//! What the phone-number metadata costs a cold start, published crate against vendored:
//! loading the database, then the first number of each of a list of countries (its
//! patterns compiled on demand), the patterns that leaves in the crate's cache (an LRU of
//! 100), and a number of the first country again once many others have been parsed.
//!
//!   cargo run --release --example pattern_cost --manifest-path dev/phonenumber-parity/Cargo.toml

use std::time::Instant;

macro_rules! measure {
    ($krate:ident, $label:expr, $countries:expr) => {{
        let started = Instant::now();
        let database = &*$krate::metadata::DATABASE;
        let load = started.elapsed();
        println!("{}: database load {:.1} ms", $label, load.as_secs_f64() * 1e3);
        let mut total = 0.0;
        for id in $countries {
            let meta = database.by_id(id).expect("a known region");
            let example = meta.descriptors().mobile().and_then(|d| d.example()).expect("a mobile example");
            let raw = format!("+{}{}", meta.country_code(), example);
            let started = Instant::now();
            let number = $krate::parse(None, &raw).expect("parses");
            let valid = $krate::is_valid(&number);
            let kind = number.number_type(database);
            let e164 = number.format().mode($krate::Mode::E164).to_string();
            let first = started.elapsed().as_secs_f64() * 1e3;
            let started = Instant::now();
            let again = $krate::parse(None, &raw).map(|n| $krate::is_valid(&n)).unwrap_or(false);
            let warm = started.elapsed().as_secs_f64() * 1e3;
            total += first;
            let cached = database.cache().lock().map(|c| c.len()).unwrap_or(0);
            println!(
                "  {id}: first number {first:.2} ms, again {warm:.3} ms, cache holds {cached} patterns ({valid} {kind:?} {e164} {again})"
            );
        }
        println!("  all {} countries: {total:.1} ms", $countries.len());
    }};
}

fn main() {
    let countries = ["US", "GB", "DE", "FR", "IN", "BR", "NG", "ID", "MX", "PH", "IT", "ES", "US"];
    match std::env::args().nth(1).as_deref() {
        Some("published") => measure!(published, "published", countries),
        _ => measure!(vendored, "vendored", countries),
    }
}
