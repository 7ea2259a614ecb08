//! Implementations of the ports. `memory` and `outbox` serve the local run and tests
//! only; a function running in Lambda refuses them (see `wiring`).

pub mod captcha;
pub mod clock;
pub mod emf;
pub mod firestore;
pub mod memory;
pub mod memory_delivery;
pub mod outbox;
pub mod twilio;
pub mod twilio_webhook;
