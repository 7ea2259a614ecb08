//! Logging: structured JSON lines in Lambda (with the request id from the runtime's
//! span), readable text locally. Nothing logged carries a code, a secret or a full number.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber once; later calls do nothing.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if json {
        let _ = json_subscriber(filter, std::io::stdout).try_init();
    } else {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).compact().try_init();
    }
}

/// The Lambda log format, writing to `writer`: one JSON object per line, with the
/// current span's fields (lambda_runtime's `Lambda runtime invoke` span carries
/// `requestId`). Tests capture the same format through their own writer.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .json()
        .with_current_span(true)
        .with_span_list(false)
        // CloudWatch stamps every line already.
        .without_time()
        .with_writer(writer)
        .finish()
}
