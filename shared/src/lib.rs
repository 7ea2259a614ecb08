//! The SMS one-time-password service as a library: domain rules, ports, adapters and
//! the HTTP edge. The Lambda binaries and the local run only wire these parts together.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod ports;
pub mod secrets;
pub mod service;
pub mod telemetry;
pub mod wiring;

#[cfg(test)]
mod debug_redaction;

pub use config::Settings;
pub use error::ApiError;
pub use http::{Api, Endpoint};
pub use service::OtpService;
