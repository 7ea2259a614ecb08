//! The fake siteverify as a program, for the local run against the providers' real
//! shapes: `cargo run -p fake-captcha -- --port 3003`, then run the service with the
//! settings it prints. Never deployed.

use std::net::SocketAddr;

use fake_captcha::{Defaults, FakeCaptcha, Flavor};

const USAGE: &str =
    "usage: fake-captcha [--port N (3003)] [--secret S (fake-captcha-secret)] [--hostname H (localhost)]";

struct Options {
    port: u16,
    secret: String,
    hostname: String,
}

fn options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options { port: 3003, secret: "fake-captcha-secret".into(), hostname: "localhost".into() };
    while let Some(flag) = args.next() {
        let mut value = || args.next().filter(|v| !v.is_empty()).ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--port" => options.port = value()?.parse().map_err(|_| "--port must be a port number".to_owned())?,
            "--secret" => options.secret = value()?,
            "--hostname" => options.hostname = value()?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let options = match options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(problem) => {
            if !problem.is_empty() {
                eprintln!("fake-captcha: {problem}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let defaults = Defaults { hostname: options.hostname.clone(), ..Defaults::default() };
    let address = SocketAddr::from(([127, 0, 0, 1], options.port));
    let fake = match FakeCaptcha::start_on(address, &options.secret, defaults).await {
        Ok(fake) => fake,
        Err(error) => {
            eprintln!("fake-captcha: cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    let url = fake.url();
    println!("fake siteverify on {url} (secret {:?}):", options.secret);
    for flavor in Flavor::ALL {
        println!("  {:<9} POST {}", format!("{flavor:?}").to_lowercase(), fake.verify_url(flavor));
    }
    println!("  tokens: pass | pass:<hostname> | pass:<hostname>:<action>:<score> succeed once; anything else fails");
    println!("  records: GET {url}/_fake/calls; faults: POST {url}/_fake/faults; POST {url}/_fake/reset");
    println!("  the service's settings for it (API.md), e.g.:");
    println!(
        "  OTP_CAPTCHA=turnstile OTP_CAPTCHA_VERIFY_URL={} OTP_CAPTCHA_SECRET={} scripts/dev",
        fake.verify_url(Flavor::Turnstile),
        options.secret
    );

    // Print each call: this is a developer's terminal.
    dev_serve::print_new_records(
        || fake.calls(),
        |call| {
            let verdict = match call.success {
                Some(true) => "success".to_owned(),
                Some(false) => format!("failure {:?}", call.error_codes),
                None => format!("HTTP {} (fault {:?})", call.status, call.fault),
            };
            println!(
                "[fake-captcha] {:?} remoteip={:?}: {verdict}",
                call.flavor,
                call.remoteip.as_deref().unwrap_or("-")
            );
        },
    )
    .await;
}
