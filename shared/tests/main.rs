//! The integration tests of `otp-core`, one binary with a module per file: black-box
//! through `Api::handle` (and the Lambda path), on both stores, with the real adapters
//! against the Firestore emulator, moto, the fake Twilio and the fake siteverify. Only
//! `lambda_wiring.rs` is a binary of its own (it sets process-wide environment variables);
//! tests that count the process-wide phone pattern cache fork a process of their own
//! (rusty-fork). Run one file's tests with `cargo test -p otp-core --test main pumping::`.

mod abuse;
mod any_input;
mod api;
mod captcha;
mod concurrency;
mod delivery_conformance;
mod events;
mod firestore_store;
mod logs;
mod pumping;
mod sms_status;
mod ssm;
mod store_conformance;
mod store_faults;
mod twilio;
mod twilio_openapi;
