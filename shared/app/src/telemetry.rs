//! Logging: JSON lines (Lambda's JSON log format), one per event, each carrying the
//! invocation's request id from the runtime's per-invocation span.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Level from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`,
/// default `info`. Safe to call more than once (later calls do nothing).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase();
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init();
}
