//! `compact`: rewrite a table's small data files into files of the target
//! size (`write.target-file-size-bytes`), and every file with position
//! deletes into one without them (the deletes folded in, their delete
//! files dropped, as Iceberg's `rewrite_data_files` with a delete-file
//! threshold of one). The commit is a `replace` of
//! exactly those files: a concurrent append still lands, and a concurrent
//! commit that removed one of them makes the compaction start again on the
//! new head (never undo that commit), up to [`REPLANS`] times.

use std::collections::HashSet;
use std::time::Duration;

use iceberg::TableIdent;
use iceberg::scan::FileScanTask;

use crate::commit::{CommitProperties, commit};
use crate::conflicts::{REPLANS, RewriteLiveFiles};
use crate::connection::Lakehouse;
use crate::data_files::{target_file_size, write_data_files};
use crate::error::Result;
use crate::history::{ADDED_DATA_FILES, ADDED_RECORDS, DELETED_DATA_FILES, summary_number};
use crate::scan::{live_files, read_files};
use crate::schema::WriteSchema;
use crate::snapshot::SnapshotKind;

#[derive(Debug, Clone, serde::Serialize)]
pub struct CompactReport {
    pub table: String,
    pub files_rewritten: usize,
    pub files_written: usize,
    pub rows: u64,
    pub snapshot_id: Option<i64>,
}

/// A file below this share of the target size counts as small.
const SMALL_SHARE: f64 = 0.75;

impl Lakehouse {
    pub async fn compact(&self, ident: &TableIdent, job_id: &str) -> Result<CompactReport> {
        let mut number = 1;
        loop {
            match self.compact_head(ident, job_id).await {
                Err(e) if number < REPLANS && e.must_replan() => {
                    tracing::info!(table = %ident, attempt = number, error = %e, "compact re-plans on the new head");
                    tokio::time::sleep(Duration::from_millis(100) * number).await;
                    number += 1;
                }
                outcome => return outcome,
            }
        }
    }

    /// Compacts the small files of the current head.
    async fn compact_head(&self, ident: &TableIdent, job_id: &str) -> Result<CompactReport> {
        let table = self.load_table(ident).await?;
        let target_size = target_file_size(table.metadata()) as u64;
        // A file with deletes is rewritten whatever its size: its copy holds
        // only its live rows, and its delete files leave with it.
        let small: Vec<FileScanTask> = live_files(&table)
            .await?
            .into_iter()
            .filter(|t| {
                !t.deletes.is_empty()
                    || (t.file_size_in_bytes as f64) < target_size as f64 * SMALL_SHARE
            })
            .collect();
        let mut report = CompactReport {
            table: ident.to_string(),
            files_rewritten: 0,
            files_written: 0,
            rows: 0,
            snapshot_id: None,
        };
        let has_deletes = small.iter().any(|t| !t.deletes.is_empty());
        if small.len() < 2 && !has_deletes {
            return Ok(report);
        }
        // One writer per target-sized output, so the new files come out full.
        let bytes: u64 = small.iter().map(|t| t.file_size_in_bytes).sum();
        let writers = (bytes.div_ceil(target_size) as usize).clamp(1, 4);
        let mut groups: Vec<Vec<FileScanTask>> = vec![Vec::new(); writers];
        for (index, task) in small.iter().cloned().enumerate() {
            groups[index % writers].push(task);
        }
        let streams = groups
            .into_iter()
            .map(|group| read_files(&table, group))
            .collect();
        let replaced: HashSet<String> = small.iter().map(|t| t.data_file_path.clone()).collect();
        let properties = CommitProperties::default()
            .job_id(job_id)
            .operation("compact");
        // The scan reads every file in the current schema, by field id.
        let unchanged = WriteSchema::unchanged(table.metadata());
        let files = write_data_files(&table, &unchanged, Some(job_id), streams).await?;
        // The same rows in other files: a `replace`, which readers skip.
        let mut planner = RewriteLiveFiles {
            kind: SnapshotKind::Replace(replaced),
            operation: "compact",
            read_on: table.metadata().current_snapshot_id(),
        };
        let outcome = commit(self, ident, &properties, &unchanged, &files, &mut planner).await?;
        // What the snapshot itself records, whichever run committed it.
        let committed = self.load_table(ident).await?;
        let snapshot_id = outcome.snapshot_id();
        if let Some(snapshot) = committed.metadata().snapshot_by_id(snapshot_id) {
            let count = |key| summary_number(snapshot.summary(), key).unwrap_or(0);
            report.files_rewritten = count(DELETED_DATA_FILES) as usize;
            report.files_written = count(ADDED_DATA_FILES) as usize;
            report.rows = count(ADDED_RECORDS);
        }
        report.snapshot_id = Some(snapshot_id);
        Ok(report)
    }
}
