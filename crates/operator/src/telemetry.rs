//! The operator's logs: `tracing` events to stderr, each reconcile's inside a span naming its
//! job, filtered by `TRAINCTL_LOG`, else `RUST_LOG` (`info` when neither is set or valid).

use tracing_subscriber::EnvFilter;

/// Sends the process's `tracing` events to stderr (once; later calls change nothing).
pub fn init_logging() {
    let filter = EnvFilter::try_from_env("TRAINCTL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
