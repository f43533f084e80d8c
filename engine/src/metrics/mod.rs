//! Prometheus metrics: the series a batch command records (`batch.rs`,
//! `dq.rs`, commit attempts in `commits.rs`) in a [`Registry`], published
//! at its end to a Pushgateway (`push.rs`) or a file (`file.rs`). A
//! long-running process serves [`Registry::render`] on `/metrics`.

mod batch;
mod commits;
mod dq;
mod endpoint;
mod file;
pub mod names;
mod push;
mod registry;
mod text;

pub use batch::{layer_of, record_job, record_run};
pub use commits::CommitCounts;
pub use dq::record_dq;
pub use endpoint::serve_metrics;
pub use registry::Registry;

use crate::config::MetricsSettings;

/// Publishes the registry where the configuration says: the file, the
/// Pushgateway, both or neither; nothing when it holds no series. A failure is a warning and never fails
/// the command: its data is committed (or its failure reported) already.
pub async fn publish(registry: &Registry, settings: &MetricsSettings, instance: &str) {
    // `tables` or `sql` record nothing: the last run's file stays.
    if registry.families().is_empty() {
        return;
    }
    if let Some(path) = &settings.file
        && let Err(e) = file::write_file(registry, path)
    {
        tracing::warn!("metrics not written: {}", crate::errors::one_line(&e));
    }
    if let Some(url) = &settings.push_url
        && let Err(e) = push::push(registry, url, instance).await
    {
        tracing::warn!(
            "metrics not pushed to {}: {}; check --metrics-push-url (MEDALLION_METRICS_PUSH_URL)",
            medallion_catalog::redacted_uri(url),
            crate::errors::one_line(&e)
        );
    }
}
