//! A rewrite by filter (`delete --where`, `replace_where`) planned again
//! from the start when a concurrent commit made its plan stale: a
//! compaction rewrote the files it rewrites, or an expiry took the history
//! it is checked against, or an expiry deleted a file the plan was reading
//! (a compaction replaced it, then `expire-snapshots` removed it). The new
//! head decides which files hold matching rows, as Iceberg Java's retried
//! overwrites choose the compacted files.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use medallion_catalog::{CatalogError, MissingDataFile, REPLANS};

/// Runs `attempt` until it succeeds, fails for another reason, or has run
/// [`REPLANS`] times; `what` names the change in the log.
pub async fn on_new_heads<T, F, Fut>(what: &str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut number = 1;
    let mut last_missing = None;
    loop {
        match attempt().await {
            Err(e) if number < REPLANS && stale_plan(&e, &mut last_missing) => {
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

/// Whether the failure was a plan a concurrent commit made stale. A data
/// file missing from storage may be one an expiry removed once a
/// compaction had replaced it: planned again on the new head, the plan no
/// longer reads it. The same file missing twice in a row is still in the
/// table, which is then damaged, and that is the error.
fn stale_plan(error: &anyhow::Error, last_missing: &mut Option<String>) -> bool {
    let replanned = error.chain().any(|cause| {
        cause
            .downcast_ref::<CatalogError>()
            .is_some_and(CatalogError::must_replan)
    });
    let missing = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<MissingDataFile>())
        .map(|m| m.file.clone());
    match missing {
        Some(file) if last_missing.as_ref() != Some(&file) => {
            *last_missing = Some(file);
            true
        }
        _ => replanned,
    }
}
