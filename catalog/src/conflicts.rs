//! What counts as a real conflict when a rewrite re-plans on a new head.
//!
//! Compaction, `delete --where` and `replace_where` choose the files they
//! rewrite on one snapshot and commit on whatever head is current then. A
//! head that moved is no reason to fail by itself: the change still applies
//! while (1) every file it rewrites is still live, and, for an overwrite by
//! filter, (2) no snapshot committed since the files were chosen added rows
//! the filter could match. Like Iceberg Java's `validateAddedDataFiles`,
//! (2) looks only at snapshots that add rows (`append`, `overwrite`): a
//! `replace` (compaction) adds files holding rows that were there already,
//! and if it took a file the overwrite rewrites, (1) catches it and the
//! caller plans again on the new head ([`CatalogError::must_replan`]).
//! Every rewrite that copies rows also needs (3): no snapshot since it read
//! them added delete files that may delete rows of a file it rewrites (a
//! merge-on-read merge or delete), or the copies would bring those rows
//! back; like Java's `validateNoNewDeletesForDataFiles`, that re-plans too.

use std::collections::HashSet;

use iceberg::TableIdent;
use iceberg::expr::Predicate;
use iceberg::spec::{DataFile, ManifestContentType, ManifestStatus, Operation, SnapshotRef};
use iceberg::table::Table;

use crate::commit::{Attempt, AttemptPlanner};
use crate::error::{CatalogError, Context, Result};
use crate::position_deletes::may_delete_rows_of;
use crate::scan::live_files;
use crate::snapshot::SnapshotKind;

/// How often a rewrite whose plan went stale (its files rewritten, or the
/// history since it chose them expired, by a concurrent commit) is planned
/// again from the start on the new head before it gives up.
pub const REPLANS: u32 = 10;

/// The files an overwrite by filter (`delete --where`, `replace_where`)
/// replaces, chosen on one snapshot, and the filter that chose them.
#[derive(Debug, Clone)]
pub struct FilterOverwrite {
    /// The live files holding rows the filter matches.
    pub replaced: HashSet<String>,
    /// The snapshot `replaced` was chosen on (`None`: the table had none):
    /// the snapshots committed after it are the ones checked for new rows.
    pub chosen_on: Option<i64>,
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
    /// The snapshot the rewritten rows were read on.
    pub read_on: Option<i64>,
}

impl AttemptPlanner for RewriteLiveFiles {
    async fn plan(&mut self, head: &Table) -> Result<Attempt> {
        let live = live_paths(head).await?;
        require_live(head.identifier(), self.operation, &self.kind, &live)?;
        require_no_new_deletes(head, self.operation, &self.kind, self.read_on).await?;
        Ok(Attempt::of(self.kind.clone()))
    }
}

/// Overwrite by filter: the chosen files, on every head where they are all
/// still live and no snapshot since added rows the filter could match.
pub(crate) struct OverwriteByFilter {
    pub overwrite: FilterOverwrite,
    pub operation: &'static str,
    /// The files stay and their matching rows are deleted by position
    /// (merge-on-read), instead of being replaced by copies.
    pub by_position: bool,
}

impl AttemptPlanner for OverwriteByFilter {
    async fn plan(&mut self, head: &Table) -> Result<Attempt> {
        let files = self.overwrite.replaced.clone();
        let kind = match self.by_position {
            true => SnapshotKind::RowDelta(files),
            false => SnapshotKind::Overwrite(files),
        };
        let live = live_paths(head).await?;
        require_live(head.identifier(), self.operation, &kind, &live)?;
        require_no_new_deletes(head, self.operation, &kind, self.overwrite.chosen_on).await?;
        let conflicting = self.added_rows_that_could_match(head).await?;
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
    /// The data files that the appends and overwrites committed since the
    /// files were chosen added and whose partition values and column
    /// bounds could hold a row the filter matches, live now or not (a
    /// compaction may have moved their rows into files of its own).
    async fn added_rows_that_could_match(&self, head: &Table) -> Result<Vec<String>> {
        let Some(since) = snapshots_since(head, self.overwrite.chosen_on) else {
            return Err(CatalogError::HistoryLost {
                table: head.identifier().clone(),
                operation: self.operation.to_string(),
            });
        };
        let mut conflicting = Vec::new();
        for snapshot in since {
            let operation = &snapshot.summary().operation;
            if !matches!(operation, Operation::Append | Operation::Overwrite) {
                continue;
            }
            let added: Vec<String> = files_added_by(head, snapshot, ManifestContentType::Data)
                .await?
                .iter()
                .map(|f| f.file_path().to_string())
                .collect();
            if added.is_empty() {
                continue;
            }
            let could_match = self.files_that_could_match(head, snapshot).await?;
            conflicting.extend(
                added
                    .into_iter()
                    .filter(|path| could_match.as_ref().is_none_or(|m| m.contains(path))),
            );
        }
        Ok(conflicting)
    }

    /// The files of `snapshot` whose partition values and column bounds
    /// could hold a row the filter matches; `None`: any file could (the
    /// filter does not fit that snapshot's schema).
    async fn files_that_could_match(
        &self,
        head: &Table,
        snapshot: &SnapshotRef,
    ) -> Result<Option<HashSet<String>>> {
        let ident = head.identifier();
        let Ok(scan) = head
            .scan()
            .snapshot_id(snapshot.snapshot_id())
            .with_filter(self.overwrite.could_match.clone())
            .with_case_sensitive(false)
            .build()
        else {
            return Ok(None);
        };
        let tasks: Vec<iceberg::scan::FileScanTask> = futures::TryStreamExt::try_collect(
            scan.plan_files()
                .await
                .context(|| format!("cannot list the data files of {ident}"))?,
        )
        .await
        .context(|| format!("cannot list the data files of {ident}"))?;
        Ok(Some(tasks.into_iter().map(|t| t.data_file_path).collect()))
    }
}

/// The snapshots from the head back to (not including) `chosen_on`, newest
/// first; `None` when the lineage no longer reaches it (a snapshot in
/// between was expired, or a rollback left it out).
fn snapshots_since(head: &Table, chosen_on: Option<i64>) -> Option<Vec<&SnapshotRef>> {
    let metadata = head.metadata();
    let mut since = Vec::new();
    let mut next = metadata.current_snapshot_id();
    while next != chosen_on {
        let snapshot = metadata.snapshot_by_id(next?)?;
        since.push(snapshot);
        next = snapshot.parent_snapshot_id();
    }
    Some(since)
}

/// The data or delete files `snapshot` itself added: the `added` entries
/// of the manifests it wrote.
async fn files_added_by(
    head: &Table,
    snapshot: &SnapshotRef,
    content: ManifestContentType,
) -> Result<Vec<DataFile>> {
    let ident = head.identifier();
    let list = head
        .manifest_list_reader(snapshot)
        .load()
        .await
        .context(|| format!("cannot read a manifest list of {ident}"))?;
    let mut added = Vec::new();
    for manifest_file in list.entries() {
        if manifest_file.added_snapshot_id != snapshot.snapshot_id()
            || manifest_file.content != content
        {
            continue;
        }
        let manifest = manifest_file
            .load_manifest(head.file_io())
            .await
            .context(|| format!("cannot read a manifest of {ident}"))?;
        added.extend(
            manifest
                .entries()
                .iter()
                .filter(|e| e.status() == ManifestStatus::Added)
                .map(|e| e.data_file().clone()),
        );
    }
    Ok(added)
}

/// Fails when a snapshot committed since `read_on` added delete files that
/// may delete rows of a file `kind` rewrites: its copies were made without
/// those deletes, and committing them would bring the deleted rows back.
async fn require_no_new_deletes(
    head: &Table,
    operation: &str,
    kind: &SnapshotKind,
    read_on: Option<i64>,
) -> Result<()> {
    let Some(rewritten) = kind.named_files() else {
        return Ok(());
    };
    let Some(since) = snapshots_since(head, read_on) else {
        return Err(CatalogError::HistoryLost {
            table: head.identifier().clone(),
            operation: operation.to_string(),
        });
    };
    for snapshot in since {
        for delete in files_added_by(head, snapshot, ManifestContentType::Deletes).await? {
            if let Some(file) = rewritten.iter().find(|p| may_delete_rows_of(&delete, p)) {
                return Err(CatalogError::DeletedMeanwhile {
                    table: head.identifier().clone(),
                    operation: operation.to_string(),
                    file: file.clone(),
                });
            }
        }
    }
    Ok(())
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
    use iceberg::expr::Reference;
    use iceberg::spec::Datum;

    use super::*;
    use crate::commit::{CommitProperties, commit};
    use crate::connection::Lakehouse;
    use crate::data_files::write_data_files;
    use crate::schema::{WriteSchema, table_ident};
    use crate::write::WriteMode;

    type Partition = stream::Iter<std::vec::IntoIter<std::io::Result<RecordBatch>>>;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("key", DataType::Int64, false)]))
    }

    fn keys(values: impl IntoIterator<Item = i64>) -> Vec<Partition> {
        let batch = RecordBatch::try_new(
            schema(),
            vec![Arc::new(Int64Array::from_iter_values(values))],
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
            read_on: chosen_on.metadata().current_snapshot_id(),
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

    #[tokio::test]
    async fn a_compaction_of_files_whose_rows_a_merge_on_read_deleted_meanwhile_must_plan_again() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        let first = append(&lakehouse, &ident, &[1, 2, 3]).await;
        let second = append(&lakehouse, &ident, &[4, 5]).await;
        let chosen_on = lakehouse.load_table(&ident).await.unwrap();

        // A merge-on-read merge deletes key 2 of the first file by position.
        lakehouse
            .merge(ident.clone(), vec!["key".into()])
            .with_options(crate::write::WriteOptions {
                row_level: Some(crate::row_level::RowLevelMode::MergeOnRead),
                ..Default::default()
            })
            .execute(schema(), keys([2]))
            .await
            .unwrap();
        // The compaction's copy was read before that delete.
        let unchanged = WriteSchema::unchanged(chosen_on.metadata());
        let copy = write_data_files(&chosen_on, &unchanged, None, keys([1, 2, 3, 4, 5]))
            .await
            .unwrap();
        let mut planner = RewriteLiveFiles {
            kind: SnapshotKind::Replace(HashSet::from([first.clone(), second])),
            operation: "compact",
            read_on: chosen_on.metadata().current_snapshot_id(),
        };
        let properties = CommitProperties::default();
        let error = commit(
            &lakehouse,
            &ident,
            &properties,
            &unchanged,
            &copy,
            &mut planner,
        )
        .await
        .unwrap_err();
        assert!(error.must_replan(), "{error}");
        assert!(
            error.to_string().contains(&format!(
                "rows of {first}, which it rewrites, were deleted meanwhile"
            )),
            "{error}"
        );
        // Nothing landed: the deleted row stays deleted.
        let table = lakehouse.load_table(&ident).await.unwrap();
        let rows: usize = crate::scan::read_with_iceberg(&table)
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 5, "keys 1, 3, 4, 5 and the merged 2");
    }

    /// Appends rows with these keys; the one data file that append added.
    async fn append(lakehouse: &Lakehouse, ident: &TableIdent, values: &[i64]) -> String {
        let before = match lakehouse.try_load_table(ident).await.unwrap() {
            Some(table) => live_paths(&table).await.unwrap(),
            None => HashSet::new(),
        };
        lakehouse
            .write(ident.clone(), WriteMode::Append)
            .execute(schema(), keys(values.iter().copied()))
            .await
            .unwrap();
        let table = lakehouse.load_table(ident).await.unwrap();
        let mut added = live_paths(&table).await.unwrap().into_iter();
        added.find(|path| !before.contains(path)).unwrap()
    }

    /// What `compact` commits: `files` replaced by one file of `values`,
    /// the rows they held.
    async fn rewrite(lakehouse: &Lakehouse, ident: &TableIdent, files: &[&String], values: &[i64]) {
        let table = lakehouse.load_table(ident).await.unwrap();
        let unchanged = WriteSchema::unchanged(table.metadata());
        let streams = keys(values.iter().copied());
        let written = write_data_files(&table, &unchanged, None, streams)
            .await
            .unwrap();
        let mut planner = RewriteLiveFiles {
            kind: SnapshotKind::Replace(files.iter().map(|f| f.to_string()).collect()),
            operation: "compact",
            read_on: table.metadata().current_snapshot_id(),
        };
        let properties = CommitProperties::default();
        commit(
            lakehouse,
            ident,
            &properties,
            &unchanged,
            &written,
            &mut planner,
        )
        .await
        .unwrap();
    }

    /// A delete of the rows with key 25, held by `file`, chosen now.
    async fn delete_key_25(
        lakehouse: &Lakehouse,
        ident: &TableIdent,
        file: &str,
    ) -> FilterOverwrite {
        let table = lakehouse.load_table(ident).await.unwrap();
        FilterOverwrite {
            replaced: HashSet::from([file.to_string()]),
            chosen_on: table.metadata().current_snapshot_id(),
            could_match: Reference::new("key").equal_to(Datum::long(25)),
        }
    }

    async fn commit_delete(
        lakehouse: &Lakehouse,
        ident: &TableIdent,
        chosen: FilterOverwrite,
    ) -> Result<()> {
        let no_rows_stay: Vec<Partition> = Vec::new();
        lakehouse
            .delete_rows(
                ident,
                chosen,
                CommitProperties::default(),
                schema(),
                no_rows_stay,
            )
            .await
            .map(|_| ())
    }

    /// A table of key 25 in one file and keys 20 and 21 in another, and a
    /// delete of key 25 chosen on it.
    struct Chosen {
        _dir: tempfile::TempDir,
        lakehouse: Lakehouse,
        ident: TableIdent,
        holding_25: String,
        low: String,
        delete: FilterOverwrite,
    }

    async fn a_delete_of_key_25() -> Chosen {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        let holding_25 = append(&lakehouse, &ident, &[25]).await;
        let low = append(&lakehouse, &ident, &[20, 21]).await;
        let delete = delete_key_25(&lakehouse, &ident, &holding_25).await;
        Chosen {
            _dir: dir,
            lakehouse,
            ident,
            holding_25,
            low,
            delete,
        }
    }

    #[tokio::test]
    async fn an_overwrite_by_filter_lands_beside_a_compaction_of_other_files_whose_bounds_overlap_it()
     {
        let chosen = a_delete_of_key_25().await;
        let (lakehouse, ident) = (&chosen.lakehouse, &chosen.ident);
        let high = append(lakehouse, ident, &[30, 31]).await;

        // Its output spans keys 20 to 31, so by its bounds it could hold 25;
        // but a `replace` adds no rows.
        rewrite(lakehouse, ident, &[&chosen.low, &high], &[20, 21, 30, 31]).await;
        commit_delete(lakehouse, ident, chosen.delete)
            .await
            .unwrap();

        let table = lakehouse.load_table(ident).await.unwrap();
        let summary = &table.metadata().current_snapshot().unwrap().summary();
        assert_eq!(summary.additional_properties["total-records"], "4");
    }

    #[tokio::test]
    async fn matching_rows_appended_meanwhile_conflict_even_once_compacted_away() {
        let chosen = a_delete_of_key_25().await;
        let (lakehouse, ident) = (&chosen.lakehouse, &chosen.ident);

        // A new row with key 25, then moved by a compaction into a file of
        // its own: the delete would leave it behind.
        let appended = append(lakehouse, ident, &[25]).await;
        rewrite(lakehouse, ident, &[&chosen.low, &appended], &[20, 21, 25]).await;
        let error = commit_delete(lakehouse, ident, chosen.delete)
            .await
            .unwrap_err();
        assert!(!error.must_replan(), "{error}");
        assert!(
            error.to_string().contains(&format!(
                "1 data file(s) committed after the rows to replace were chosen could hold rows \
                 the filter matches, which would survive (the first: {appended})"
            )),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_overwrite_whose_files_a_compaction_took_must_be_planned_again() {
        let chosen = a_delete_of_key_25().await;
        let (lakehouse, ident) = (&chosen.lakehouse, &chosen.ident);

        rewrite(
            lakehouse,
            ident,
            &[&chosen.low, &chosen.holding_25],
            &[20, 21, 25],
        )
        .await;
        let error = commit_delete(lakehouse, ident, chosen.delete)
            .await
            .unwrap_err();
        assert!(error.must_replan(), "{error}");
        let table = lakehouse.load_table(ident).await.unwrap();
        assert_eq!(
            live_paths(&table).await.unwrap().len(),
            1,
            "nothing changed"
        );
    }
}
