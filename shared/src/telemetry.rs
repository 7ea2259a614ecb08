//! Logging: structured JSON lines in Lambda (with the request id from the runtime's
//! span), readable text locally. Nothing logged carries a code, a secret or a full number.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = if json {
        builder.json().with_current_span(true).with_span_list(false).without_time().try_init()
    } else {
        builder.compact().try_init()
    };
}
