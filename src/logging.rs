//! tracing subscriber setup: human-readable or JSON lines on stderr.
//!
//! `RUST_LOG` overrides the default filter (`info`). Sessions open one span each with
//! `system_id` and `peer`; passwords are never recorded and short_message text only
//! when `server.log_message_text` is set (checked at the call sites).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. Calling it twice keeps the first (tests).
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_set = match format {
        LogFormat::Human => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}
