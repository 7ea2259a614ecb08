//! What anchoring a pattern at the start saves its compile: each pattern of a few countries
//! compiled as the published crate does and as `^(?:pattern)`, median of 7, warm.
//!
//!   cargo run --release --example anchor_cost --manifest-path dev/phonenumber-parity/Cargo.toml

use std::time::Instant;
use vendored::metadata::DATABASE;
fn patterns(id: &str) -> Vec<String> {
    let m = DATABASE.by_id(id).unwrap();
    let d = m.descriptors();
    let mut v: Vec<String> = vec![d.general().national_number().as_str().to_owned()];
    for x in [d.fixed_line(), d.mobile(), d.toll_free(), d.premium_rate(), d.shared_cost(), d.personal_number(), d.voip(), d.pager(), d.uan(), d.voicemail()].into_iter().flatten() {
        v.push(x.national_number().as_str().to_owned());
    }
    if let Some(p) = m.national_prefix_for_parsing() { v.push(p.as_str().to_owned()); }
    if let Some(p) = m.international_prefix() { v.push(p.as_str().to_owned()); }
    v.sort(); v.dedup(); v
}
fn compile(ps: &[String], wrap: bool) -> f64 {
    let t = Instant::now();
    for p in ps {
        let src = if wrap { format!("^(?:{p}\n)") } else { p.clone() };
        let r = regex::RegexBuilder::new(&src).ignore_whitespace(true).unicode(false).build().unwrap();
        std::hint::black_box(r.is_match("2015550123"));
    }
    t.elapsed().as_secs_f64() * 1e3
}
fn main() {
    for id in ["US", "GB", "DE", "IN", "BR"] {
        let ps = patterns(id);
        let mut a = vec![]; let mut b = vec![];
        for _ in 0..7 { a.push(compile(&ps, false)); b.push(compile(&ps, true)); }
        a.sort_by(f64::total_cmp); b.sort_by(f64::total_cmp);
        println!("{id}: {} patterns, plain {:.2} ms, anchored {:.2} ms", ps.len(), a[3], b[3]);
    }
}
