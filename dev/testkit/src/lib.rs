//! The front door of the service's tests: everything the tests of `shared/tests` share.
//!
//! - [`secrets`]: the one set of test secrets (pepper, session secret, Twilio account,
//!   captcha secret) and the secret sources holding them.
//! - [`TestApp`]: the service started through `otp_core::wiring::build`, as Lambda and the
//!   local run start it, on the backend a test picks: by default the memory store, the
//!   outbox and a [`ManualClock`]; [`Builder::store`] takes the Firestore emulator's store
//!   ([`emulator`]), [`Builder::twilio`] the real Twilio sender against the fake Twilio
//!   ([`twilio`]), [`Builder::secrets`] secrets from SSM on moto ([`moto`]).
//! - [`post`] and [`request`] (and [`TestApp::post`], `send`, `verify`): one request
//!   through the HTTP handler, answered as one [`Reply`]; [`TestApp::last_code`] and
//!   [`code_in`] read the code out of the SMS sent.
//! - [`store`]: the store tests' subjects, policies, stores under test and concurrent runs.
//! - [`emulator`] and [`moto`]: the Firestore emulator and moto, each with its guard: a test
//!   that needs one fails without it, unless `OTP_SKIP_EMULATOR=1` / `OTP_SKIP_MOTO=1` skips
//!   it, loudly.
//! - [`logs`]: what a test logs, captured in the Lambda JSON format.
//! - [`clock`]: the [`ManualClock`], which moves only when told to, and the tests' start time.

pub mod app;
pub mod clock;
pub mod emulator;
pub mod logs;
pub mod moto;
pub mod secrets;
pub mod server;
pub mod store;
pub mod tokens;
pub mod twilio;

pub use app::{Builder, CLIENT_IP, ORIGIN, Reply, TestApp, code_in, code_said, post, request, wrong_code};
pub use clock::{ManualClock, secs, t0, t0_ns};
pub use logs::capture_logs;
pub use secrets::{
    ACCOUNT_SID, AUTH_TOKEN, CAPTCHA_SECRET, FROM, GCP_CREDENTIALS, PEPPER, SESSION_SECRET, TOKEN_SIGNING_KEY,
    TOKEN_SIGNING_KEY_2,
};
pub use twilio::wait_for_callbacks;

/// Says on the process's stderr that a test was skipped, where no run can miss it: the test
/// harness hides what `eprintln!` prints in passing tests.
fn skip_loudly(notice: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n################################################################\n\
         ## SKIPPED {notice}\n\
         ################################################################"
    );
}
