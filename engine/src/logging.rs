//! Log lines on stderr: text for people, or with `--log-format json` one
//! JSON object per line for log stacks (Loki), each carrying the fields of
//! the spans it is in: the command's `trace_id`, a job's `job`, `table`
//! and `job_id`, and an event's own (a commit's `snapshot_id`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the process's logger; `RUST_LOG` overrides `default_filter`.
pub fn init(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}

/// The span around a whole command, carrying its trace id. At error level,
/// so that every filter that lets a line through keeps its trace id too.
pub fn command_span(trace_id: &str) -> tracing::Span {
    tracing::error_span!("medallion", trace_id = %trace_id)
}

/// A new random trace id: 32 hex digits, as W3C trace context spells one.
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
