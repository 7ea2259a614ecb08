//! The fake Twilio as a program, for the local run against Twilio's real shapes:
//! `cargo run -p fake-twilio`, then `OTP_SMS=twilio TWILIO_API_BASE=http://127.0.0.1:3002 scripts/dev`
//! with the credentials it prints. Never deployed.

use std::net::SocketAddr;

use fake_twilio::FakeTwilio;

/// Twilio's documented test sender (a "magic" From number).
const TEST_FROM: &str = "+15005550006";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let env = |name: &str, default: &str| std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or(default.into());
    let port: u16 = match env("FAKE_TWILIO_PORT", "3002").parse() {
        Ok(port) => port,
        Err(_) => {
            eprintln!("fake-twilio: FAKE_TWILIO_PORT must be a port number");
            std::process::exit(2);
        }
    };
    let account_sid = env("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000");
    let auth_token = env("TWILIO_AUTH_TOKEN", "fake-twilio-auth-token");
    let fake = match FakeTwilio::start_on(SocketAddr::from(([127, 0, 0, 1], port)), &account_sid, &auth_token).await {
        Ok(fake) => fake,
        Err(error) => {
            eprintln!("fake-twilio: cannot listen on 127.0.0.1:{port}: {error}");
            std::process::exit(1);
        }
    };
    let url = fake.url();
    println!("fake Twilio on {url}: POST /2010-04-01/Accounts/{{sid}}/Messages.json and .../Calls.json");
    println!(
        "  records: GET {url}/_fake/messages, GET {url}/_fake/calls, GET {url}/_fake/attempts; faults: POST {url}/_fake/faults"
    );
    println!(
        "  status callbacks to each send's StatusCallback URL; script them: POST {url}/_fake/delivery, list: GET {url}/_fake/callbacks"
    );
    println!("  run the service against it:");
    println!(
        "  OTP_SMS=twilio TWILIO_API_BASE={url} TWILIO_ACCOUNT_SID={account_sid} TWILIO_AUTH_TOKEN={auth_token} TWILIO_FROM={TEST_FROM} scripts/dev"
    );

    // Print each accepted message and call, as the outbox does: this is a developer's terminal.
    let (mut messages, mut calls) = (dev_serve::Printer::default(), dev_serve::Printer::default());
    dev_serve::every_tick_until_shutdown(|| {
        messages.print_new(&fake.messages(), |message| match (&message.content_sid, &message.content_variables) {
            (Some(sid), variables) => println!(
                "[fake-twilio] {} (WhatsApp template {sid}) to {}: variables {}\n",
                message.sid,
                message.to,
                variables.as_deref().unwrap_or("{}")
            ),
            (None, _) => println!("[fake-twilio] {} to {}:\n{}\n", message.sid, message.to, message.body),
        });
        calls.print_new(&fake.calls(), |call| {
            let twiml = call.twiml.as_deref().or(call.url.as_deref()).unwrap_or("");
            println!("[fake-twilio] call {} to {} from {}:\n{twiml}\n", call.sid, call.to, call.from);
        });
    })
    .await;
}
