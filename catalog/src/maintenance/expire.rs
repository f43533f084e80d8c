//! `expire-snapshots`: forget old snapshots and delete the files only they
//! needed. The current snapshot, its newest ancestors and every snapshot a
//! branch or tag points at are always kept.

use std::collections::HashSet;

use iceberg::{ErrorKind, TableIdent, TableUpdate};

use super::moment_before;
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

const ATTEMPTS: u32 = 5;

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

impl Lakehouse {
    pub async fn expire_snapshots(
        &self,
        ident: &TableIdent,
        options: &ExpireOptions,
    ) -> Result<ExpireReport> {
        let retain_last = options.retain_last.max(1);
        let cutoff_ms = moment_before(options.older_than).timestamp_millis();
        for attempt in 1..=ATTEMPTS {
            let table = self.load_table(ident).await?;
            let metadata = table.metadata();
            let mut keep = referenced_snapshots(metadata);
            keep.extend(lineage(&table).take(retain_last).map(|s| s.snapshot_id()));
            let expired: Vec<i64> = metadata
                .snapshots()
                .filter(|s| !keep.contains(&s.snapshot_id()))
                .filter(|s| s.timestamp_ms() < cutoff_ms)
                .map(|s| s.snapshot_id())
                .collect();
            let report = |files_deleted| ExpireReport {
                table: ident.to_string(),
                snapshots_expired: expired.len(),
                snapshots_kept: metadata.snapshots().len() - expired.len(),
                files_deleted,
            };
            if expired.is_empty() {
                return Ok(report(0));
            }
            let before = files_of_snapshots(&table, metadata.snapshots()).await?;
            let after = files_of_snapshots(
                &table,
                metadata
                    .snapshots()
                    .filter(|s| !expired.contains(&s.snapshot_id())),
            )
            .await?;
            let result = self
                .transport()
                .commit(
                    &table,
                    on_current_head(metadata),
                    vec![TableUpdate::RemoveSnapshots {
                        snapshot_ids: expired.clone(),
                    }],
                    &uuid::Uuid::now_v7().to_string(),
                )
                .await;
            match result {
                Ok(()) => {
                    let unreferenced: Vec<&String> = before.difference(&after).collect();
                    let mut deleted = 0;
                    for path in unreferenced {
                        match table.file_io().delete(path).await {
                            Ok(()) => deleted += 1,
                            // Orphan-file removal collects what is left.
                            Err(e) => {
                                tracing::warn!(path, error = %e, "could not delete an expired file")
                            }
                        }
                    }
                    tracing::info!(table = %ident, expired = expired.len(), deleted, "expired snapshots");
                    return Ok(report(deleted));
                }
                Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts && attempt < ATTEMPTS => {
                    tracing::debug!(table = %ident, attempt, "expire conflicted with a commit, retrying");
                }
                Err(e) => {
                    return Err(e).context(|| format!("cannot expire snapshots of {ident}"));
                }
            }
        }
        Err(CatalogError::CommitConflict {
            table: ident.clone(),
            attempts: ATTEMPTS,
        })
    }
}
