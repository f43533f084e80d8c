//! A rewrite by filter (`delete --where`, `replace_where`) planned again
//! from the start when a concurrent commit made its plan stale: a
//! compaction rewrote the files it rewrites, or an expiry took the history
//! it is checked against. The new head decides which files hold matching
//! rows, as Iceberg Java's retried overwrites choose the compacted files.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use medallion_catalog::{CatalogError, REPLANS};

/// Runs `attempt` until it succeeds, fails for another reason, or has run
/// [`REPLANS`] times; `what` names the change in the log.
pub async fn on_new_heads<T, F, Fut>(what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut number = 1;
    loop {
        match attempt().await {
            Err(e) if number < REPLANS && stale_plan(&e) => {
                tracing::info!(attempt = number, error = %e, "{what} re-plans on the new head");
                // Grows with each try, so a compaction looping beside it
                // lets it through.
                tokio::time::sleep(Duration::from_millis(100) * number).await;
                number += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Whether the failure was a plan a concurrent commit made stale.
fn stale_plan(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<CatalogError>()
            .is_some_and(CatalogError::must_replan)
    })
}
