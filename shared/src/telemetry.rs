//! Logging: structured JSON lines in Lambda (with the request id from the runtime's
//! span), readable text locally. Nothing logged carries a code, a secret, a full number,
//! a client address or an API key, at any level: other crates are capped at `info`,
//! whatever `RUST_LOG` says, since at `debug` and `trace` the Lambda runtime logs whole
//! events (body, headers, source IP) and the HTTP stacks log what they carry.

use tracing::{Level, Metadata};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, FilterFn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber once; later calls do nothing.
pub fn init(json: bool) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    if json {
        let _ = json_subscriber(filter, std::io::stdout).try_init();
    } else {
        let layer = tracing_subscriber::fmt::layer().with_target(false).compact().with_filter(safe(filter));
        let _ = tracing_subscriber::registry().with(layer).try_init();
    }
}

/// Crates of this project: theirs are the only events logged below `info`.
fn our_target(target: &str) -> bool {
    ["otp_core", "otp_dev", "send_otp", "verify_otp", "fake_twilio"]
        .iter()
        .any(|crate_name| target.strip_prefix(crate_name).is_some_and(|rest| rest.is_empty() || rest.starts_with("::")))
}

/// `filter`, with every other crate capped at `info`.
fn safe<S>(filter: EnvFilter) -> impl Filter<S> {
    filter
        .and(FilterFn::new(|metadata: &Metadata<'_>| our_target(metadata.target()) || *metadata.level() <= Level::INFO))
}

/// The Lambda log format, writing to `writer`: one JSON object per line, with the
/// current span's fields (lambda_runtime's `Lambda runtime invoke` span carries
/// `requestId`). Tests capture the same format through their own writer.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_target(false)
        .json()
        .with_current_span(true)
        .with_span_list(false)
        // CloudWatch stamps every line already.
        .without_time()
        .with_writer(writer)
        .with_filter(safe(filter));
    tracing_subscriber::registry().with(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_crates_log_below_info() {
        assert!(our_target("otp_core::service"));
        assert!(our_target("otp_core"));
        assert!(our_target("otp_dev"));
        assert!(!our_target("lambda_runtime::layers::api_response"));
        assert!(!our_target("lambda_http"));
        assert!(!our_target("otp_core_evil"), "a crate whose name merely starts like ours");
    }
}
