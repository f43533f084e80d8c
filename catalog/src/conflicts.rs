//! What counts as a real conflict when a rewrite re-plans on a new head.
//!
//! Compaction, `delete --where` and `replace_where` choose the files they
//! rewrite on one snapshot and commit on whatever head is current then. A
//! head that moved is no reason to fail by itself: the change still applies
//! while (1) every file it rewrites is still live, and, for an overwrite by
//! filter, (2) no data file added since the files were chosen could hold a
//! row the filter matches (its partition values and column bounds say so,
//! as Iceberg Java's `validateNoConflictingDeletes` and
//! `validateAddedDataFiles` judge). Only a head that breaks one of these
//! fails the commit.

use std::collections::HashSet;

use iceberg::TableIdent;
use iceberg::expr::{Bind, Predicate};
use iceberg::table::Table;

use crate::commit::{Attempt, AttemptPlanner};
use crate::error::{CatalogError, Context, Result};
use crate::scan::live_files;
use crate::snapshot::SnapshotKind;

/// The files an overwrite by filter (`delete --where`, `replace_where`)
/// replaces, chosen on one snapshot, and the filter that chose them.
#[derive(Debug, Clone)]
pub struct FilterOverwrite {
    /// The live files holding rows the filter matches.
    pub replaced: HashSet<String>,
    /// Every live file when `replaced` was chosen: any other file live at
    /// commit time was added meanwhile.
    pub chosen_among: HashSet<String>,
    /// True for a file whose partition values or column bounds could hold
    /// a row the filter matches; `Predicate::AlwaysTrue` when the filter has
    /// no Iceberg form (then every added file conflicts).
    pub could_match: Predicate,
}

/// Rewrites the same files on every head while they are all still live:
/// compaction (`Replace`) or an overwrite of chosen files.
pub(crate) struct RewriteLiveFiles {
    pub kind: SnapshotKind,
    /// What the rewrite is, for the error: `compact`, `delete`, ...
    pub operation: &'static str,
}

impl AttemptPlanner for RewriteLiveFiles {
    async fn plan(&mut self, head: &Table) -> Result<Attempt> {
        let live = live_paths(head).await?;
        require_live(head.identifier(), self.operation, &self.kind, &live)?;
        Ok(Attempt::of(self.kind.clone()))
    }
}

/// Overwrite by filter: the chosen files, on every head where they are all
/// still live and no file added since could hold a matching row.
pub(crate) struct OverwriteByFilter {
    pub overwrite: FilterOverwrite,
    pub operation: &'static str,
}

impl AttemptPlanner for OverwriteByFilter {
    async fn plan(&mut self, head: &Table) -> Result<Attempt> {
        let kind = SnapshotKind::Overwrite(self.overwrite.replaced.clone());
        let live = live_paths(head).await?;
        require_live(head.identifier(), self.operation, &kind, &live)?;
        let added: HashSet<&String> = live
            .iter()
            .filter(|path| !self.overwrite.chosen_among.contains(*path))
            .collect();
        if added.is_empty() {
            return Ok(Attempt::of(kind));
        }
        let could_match = self.files_that_could_match(head).await?;
        let conflicting: Vec<&&String> = added
            .iter()
            .filter(|path| could_match.as_ref().is_none_or(|m| m.contains(**path)))
            .collect();
        match conflicting.first() {
            None => Ok(Attempt::of(kind)),
            Some(first) => Err(CatalogError::ReplaceConflict {
                table: head.identifier().clone(),
                detail: format!(
                    "{} data file(s) committed after the rows to replace were chosen could hold \
                     rows the filter matches, which would survive (the first: {first})",
                    conflicting.len()
                ),
            }),
        }
    }
}

impl OverwriteByFilter {
    /// The live files of `head` whose partition values and column bounds
    /// could hold a row the filter matches; `None`: any file could (the
    /// filter no longer fits the table's schema).
    async fn files_that_could_match(&self, head: &Table) -> Result<Option<HashSet<String>>> {
        let ident = head.identifier();
        let Some(snapshot_id) = head.metadata().current_snapshot_id() else {
            return Ok(Some(HashSet::new()));
        };
        let filter = self.overwrite.could_match.clone();
        if filter
            .clone()
            .bind(head.metadata().current_schema().clone(), false)
            .is_err()
        {
            return Ok(None);
        }
        let tasks: Vec<_> = futures::TryStreamExt::try_collect(
            head.scan()
                .snapshot_id(snapshot_id)
                .with_filter(filter)
                .with_case_sensitive(false)
                .build()
                .context(|| format!("cannot scan {ident}"))?
                .plan_files()
                .await
                .context(|| format!("cannot list the data files of {ident}"))?,
        )
        .await
        .context(|| format!("cannot list the data files of {ident}"))?;
        Ok(Some(
            tasks
                .into_iter()
                .map(|t: iceberg::scan::FileScanTask| t.data_file_path)
                .collect(),
        ))
    }
}

async fn live_paths(head: &Table) -> Result<HashSet<String>> {
    Ok(live_files(head)
        .await?
        .into_iter()
        .map(|t| t.data_file_path)
        .collect())
}

/// Fails when a file the snapshot rewrites is no longer live on the head:
/// a concurrent commit rewrote or deleted it, and committing anyway would
/// bring its rows back or lose the other commit's change.
fn require_live(
    table: &TableIdent,
    operation: &str,
    kind: &SnapshotKind,
    live: &HashSet<String>,
) -> Result<()> {
    let gone: Vec<&String> = kind
        .named_files()
        .into_iter()
        .flatten()
        .filter(|path| !live.contains(*path))
        .collect();
    match gone.first() {
        None => Ok(()),
        Some(file) => Err(CatalogError::RewrittenMeanwhile {
            table: table.clone(),
            operation: operation.to_string(),
            count: gone.len(),
            file: file.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use futures::stream;

    use super::*;
    use crate::commit::{CommitProperties, commit};
    use crate::connection::Lakehouse;
    use crate::schema::{WriteSchema, table_ident};
    use crate::write::WriteMode;

    type Partition = stream::Iter<std::vec::IntoIter<std::io::Result<RecordBatch>>>;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("key", DataType::Int64, false)]))
    }

    fn keys(range: std::ops::Range<i64>) -> Vec<Partition> {
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from_iter_values(range))],
        )
        .unwrap();
        vec![stream::iter(vec![Ok(batch)])]
    }

    #[tokio::test]
    async fn a_rewrite_whose_files_were_rewritten_meanwhile_fails_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        for range in [0..5, 5..10] {
            lakehouse
                .write(ident.clone(), WriteMode::Append)
                .execute(schema(), keys(range))
                .await
                .unwrap();
        }
        let chosen_on = lakehouse.load_table(&ident).await.unwrap();
        let files = live_paths(&chosen_on).await.unwrap();

        // A concurrent commit replaces every row before the rewrite commits.
        lakehouse
            .write(ident.clone(), WriteMode::Overwrite)
            .execute(schema(), keys(20..30))
            .await
            .unwrap();
        let mut planner = RewriteLiveFiles {
            kind: SnapshotKind::Replace(files),
            operation: "compact",
        };
        let unchanged = WriteSchema::unchanged(chosen_on.metadata());
        let error = commit(
            &lakehouse,
            &ident,
            &CommitProperties::default(),
            &unchanged,
            &[],
            &mut planner,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with(
                "compact of bronze.things conflicts with a concurrent commit: 2 data file(s) it \
                 rewrites were rewritten or deleted meanwhile"
            ) && error.contains("run it again"),
            "{error}"
        );
        let table = lakehouse.load_table(&ident).await.unwrap();
        assert_eq!(
            live_paths(&table).await.unwrap().len(),
            1,
            "nothing changed"
        );
    }
}
