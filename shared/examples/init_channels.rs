//! What the channels add to a cold start's init, measured: the settings that name them
//! (`OTP_CHANNELS`, `TWILIO_WHATSAPP_FROM`, `TWILIO_WHATSAPP_CONTENT_SID`) and the Twilio
//! sender built with its WhatsApp sender, against the same with SMS alone. Nothing else of
//! the channels runs at init: the TwiML and the template's variables are made per send,
//! and verify-otp builds no more than before (it sends nothing and warms no Twilio
//! connection). `cargo run --release -p otp-core --example init_channels`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use otp_core::Settings;
use otp_core::adapters::twilio::{TwilioConfig, TwilioSender};
use otp_core::secrets::env::EnvSecrets;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The init steps the channels touch: the settings, then the Twilio sender with them.
fn init(pairs: &[(&str, &str)]) -> Duration {
    let started = Instant::now();
    let settings = Settings::from_lookup(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
        .expect("valid settings");
    let config = TwilioConfig::new(None).with_whatsapp(settings.twilio_whatsapp.clone());
    let sender = TwilioSender::new(config, Arc::new(EnvSecrets::from_lookup(|_| None))).expect("client builds");
    let elapsed = started.elapsed();
    drop(std::hint::black_box(sender));
    elapsed
}

fn main() {
    let sms = [("OTP_SMS", "twilio")];
    let all = [
        ("OTP_SMS", "twilio"),
        ("OTP_CHANNELS", "sms,whatsapp,voice"),
        ("TWILIO_WHATSAPP_FROM", "whatsapp:+14155550123"),
        ("TWILIO_WHATSAPP_CONTENT_SID", "HX0123456789abcdef0123456789abcdef"),
    ];
    // Warm the allocator and the TLS roots once, as any first measurement would pay them.
    init(&sms);
    let runs = 200;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(init(&sms));
        b.push(init(&all));
    }
    let (a, b) = (median(a), median(b));
    let added = b.saturating_sub(a);
    println!(
        "init of the settings and the Twilio sender, median of {runs}: SMS alone {a:?}, every channel {b:?}; added {added:?}"
    );
}
