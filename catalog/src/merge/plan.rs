//! What each commit attempt of a merge does on the head it builds on: the
//! checks every merge shares, then the rows its keys match, removed by
//! rewriting their files (copy-on-write) or by position deletes
//! (merge-on-read).

use std::sync::Arc;

use iceberg::TableIdent;
use iceberg::table::Table;

use super::key_scan::KeyScan;
use super::keys::MergeKeys;
use super::{copy_on_write, merge_on_read};
use crate::commit::{Attempt, AttemptPlanner};
use crate::error::{CatalogError, Result};
use crate::row_level::RowLevelMode;
use crate::scan::live_files;
use crate::snapshot::SnapshotKind;

/// Plans a merge afresh on every head, so a concurrent commit's rows with
/// a merged key are matched too instead of being duplicated.
pub(super) struct MergePlanner<'a> {
    pub ident: &'a TableIdent,
    /// Names the files an attempt writes.
    pub job_id: Option<&'a str>,
    pub keys: Arc<MergeKeys>,
    pub mode: RowLevelMode,
}

impl AttemptPlanner for MergePlanner<'_> {
    async fn plan(&mut self, head: &Table) -> Result<Attempt> {
        // No file holds a merged key: the new rows are appended.
        let unchanged = || Attempt::of(SnapshotKind::Append);
        if !self.keys.kept {
            if live_files(head).await?.is_empty() {
                return Ok(unchanged());
            }
            return Err(self.problem(
                "another job committed rows while this merge into the empty table ran; \
                 re-run the job (the same job id is safe to re-run)",
            ));
        }
        if self.keys.is_empty() {
            return Ok(unchanged());
        }
        let tasks = live_files(head).await?;
        let scan = KeyScan {
            head,
            keys: &self.keys,
            key_ids: self.key_ids(head)?,
            job_id: self.job_id,
        };
        match self.mode {
            RowLevelMode::CopyOnWrite => copy_on_write::rewrite_matched(&scan, tasks).await,
            RowLevelMode::MergeOnRead => merge_on_read::delete_matched(&scan, tasks).await,
        }
    }
}

impl MergePlanner<'_> {
    fn key_ids(&self, head: &Table) -> Result<Vec<i32>> {
        let schema = head.metadata().current_schema();
        self.keys
            .names
            .iter()
            .map(|name| {
                schema.field_by_name(name).map(|f| f.id).ok_or_else(|| {
                    self.problem(&format!("key column `{name}` is no longer in the table"))
                })
            })
            .collect()
    }

    fn problem(&self, detail: &str) -> CatalogError {
        CatalogError::Merge {
            table: self.ident.clone(),
            detail: detail.into(),
        }
    }
}
