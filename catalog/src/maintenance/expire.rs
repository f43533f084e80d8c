//! `expire-snapshots`: forget old snapshots and delete the files only they
//! needed. The current snapshot, its newest ancestors and every snapshot a
//! branch or tag points at are always kept.

use std::collections::HashSet;
use std::time::Instant;

use iceberg::table::Table;
use iceberg::{ErrorKind, TableIdent, TableUpdate};

use super::moment_before;
use crate::commit::RetryPolicy;
use crate::connection::Lakehouse;
use crate::error::{CatalogError, Context, Result};
use crate::history::lineage;
use crate::scan::files_of_snapshots;
use crate::snapshot::on_current_head;

#[derive(Debug, Clone)]
pub struct ExpireOptions {
    /// Ancestors of the current snapshot to keep, the current one included.
    pub retain_last: usize,
    /// Expire only snapshots older than this.
    pub older_than: std::time::Duration,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpireReport {
    pub table: String,
    pub snapshots_expired: usize,
    pub snapshots_kept: usize,
    pub files_deleted: usize,
}

/// Snapshots a branch or tag points at (other engines may have made them).
/// iceberg-rust keeps the refs map private; its serialized form shows it.
fn referenced_snapshots(metadata: &iceberg::spec::TableMetadata) -> HashSet<i64> {
    let json = serde_json::to_value(metadata).unwrap_or_default();
    let mut ids: HashSet<i64> = json["refs"]
        .as_object()
        .into_iter()
        .flat_map(|refs| refs.values())
        .filter_map(|r| r["snapshot-id"].as_i64())
        .collect();
    ids.extend(metadata.current_snapshot_id());
    ids
}

/// The snapshots of `table` that `options` expire.
fn expirable(table: &Table, options: &ExpireOptions) -> Vec<i64> {
    let metadata = table.metadata();
    let cutoff_ms = moment_before(options.older_than).timestamp_millis();
    let mut keep = referenced_snapshots(metadata);
    keep.extend(
        lineage(table)
            .take(options.retain_last.max(1))
            .map(|s| s.snapshot_id()),
    );
    metadata
        .snapshots()
        .filter(|s| !keep.contains(&s.snapshot_id()))
        .filter(|s| s.timestamp_ms() < cutoff_ms)
        .map(|s| s.snapshot_id())
        .collect()
}

impl Lakehouse {
    /// Expires old snapshots in one commit. Each attempt only decides which
    /// snapshots go and commits that, so it is quick enough to land between
    /// the commits of steady writers; a conflict re-plans on the new head
    /// with the same bounded backoff as every other commit. Which files only
    /// the expired snapshots needed is worked out after the commit landed.
    pub async fn expire_snapshots(
        &self,
        ident: &TableIdent,
        options: &ExpireOptions,
    ) -> Result<ExpireReport> {
        let started = Instant::now();
        let mut retry = None;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let table = self.load_table(ident).await?;
            let retry = *retry.get_or_insert_with(|| RetryPolicy::of(&table));
            let expired = expirable(&table, options);
            if expired.is_empty() {
                return Ok(ExpireReport {
                    table: ident.to_string(),
                    snapshots_expired: 0,
                    snapshots_kept: table.metadata().snapshots().len(),
                    files_deleted: 0,
                });
            }
            let result = self
                .transport()
                .commit(
                    &table,
                    on_current_head(table.metadata()),
                    vec![TableUpdate::RemoveSnapshots {
                        snapshot_ids: expired.clone(),
                    }],
                    &uuid::Uuid::now_v7().to_string(),
                )
                .await;
            match result {
                Ok(()) => return Ok(delete_expired_files(&table, &expired).await),
                Err(e)
                    if e.kind() == ErrorKind::CatalogCommitConflicts
                        && retry.allows_retry_after(attempt, started.elapsed()) =>
                {
                    tracing::debug!(table = %ident, attempt, "expire conflicted with a commit, retrying");
                    tokio::time::sleep(retry.backoff(attempt)).await;
                }
                Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts => {
                    return Err(CatalogError::CommitConflict {
                        table: ident.clone(),
                        attempts: attempt,
                    });
                }
                Err(e) => {
                    return Err(e).context(|| format!("cannot expire snapshots of {ident}"));
                }
            }
        }
    }
}

/// Deletes the files only the `expired` snapshots of `base` (the metadata
/// the expiry committed on) needed. A file that cannot be listed or deleted
/// stays for orphan-file removal: the expiry itself has landed.
async fn delete_expired_files(base: &Table, expired: &[i64]) -> ExpireReport {
    let ident = base.identifier();
    let metadata = base.metadata();
    let report = |files_deleted| ExpireReport {
        table: ident.to_string(),
        snapshots_expired: expired.len(),
        snapshots_kept: metadata.snapshots().len() - expired.len(),
        files_deleted,
    };
    let kept = metadata
        .snapshots()
        .filter(|s| !expired.contains(&s.snapshot_id()));
    let files = match (
        files_of_snapshots(base, metadata.snapshots()).await,
        files_of_snapshots(base, kept).await,
    ) {
        (Ok(before), Ok(after)) => before.difference(&after).cloned().collect::<Vec<_>>(),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(table = %ident, error = %e, "expired snapshots, but could not list their files; remove-orphan-files will take them");
            return report(0);
        }
    };
    let mut deleted = 0;
    for path in &files {
        match base.file_io().delete(path).await {
            Ok(()) => deleted += 1,
            // Orphan-file removal collects what is left.
            Err(e) => tracing::warn!(path, error = %e, "could not delete an expired file"),
        }
    }
    tracing::info!(table = %ident, expired = expired.len(), deleted, "expired snapshots");
    report(deleted)
}
