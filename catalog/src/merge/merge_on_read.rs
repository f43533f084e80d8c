//! Merge-on-read merge: the rows a merged key matches stay where they are
//! and are deleted by position (a delete file, or on a v3 table a deletion
//! vector, per data file holding one), so a small update writes what
//! changed, not the files it touches.
//! Rows the file's earlier delete files removed are not deleted again.

use std::collections::BTreeSet;

use futures::{StreamExt, TryStreamExt, stream};
use iceberg::scan::FileScanTask;

use super::key_scan::{KeyScan, READ_CONCURRENCY, key_error};
use crate::commit::Attempt;
use crate::delete_files::DeletedPositions;
use crate::error::{CatalogError, Result};
use crate::position_deletes::{DeletedRows, deleted_positions};
use crate::row_level::write_deletes;
use crate::scan::read_file;
use crate::snapshot::SnapshotKind;

/// Position deletes of the head's rows whose key the merge holds.
pub(super) async fn delete_matched(
    scan: &KeyScan<'_>,
    tasks: Vec<FileScanTask>,
) -> Result<Attempt> {
    let already = deleted_positions(scan.head, &tasks).await?;
    let already = &already;
    let matched: Vec<DeletedPositions> = stream::iter(tasks)
        .map(|task| async move {
            let positions = matched_positions(scan, &task, already).await?;
            Ok((!positions.is_empty()).then_some(DeletedPositions { task, positions }))
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_filter_map(|found| async move { Ok::<_, CatalogError>(found) })
        .try_collect()
        .await?;
    let deleted_from = matched
        .iter()
        .map(|m| m.task.data_file_path.clone())
        .collect();
    let deletes = write_deletes(scan.head, scan.job_id, matched, already).await?;
    Ok(Attempt {
        kind: SnapshotKind::RowDelta(deleted_from),
        rewritten: deletes,
    })
}

/// The positions (from the file's first row) of the live rows of `task`
/// whose key is merged.
async fn matched_positions(
    scan: &KeyScan<'_>,
    task: &FileScanTask,
    already: &DeletedRows,
) -> Result<BTreeSet<u64>> {
    let gone = already.get(&task.data_file_path);
    let mut keys_only = task.clone();
    keys_only.project_field_ids = scan.key_ids.clone();
    // Every row is read, deleted or not, so that a row's place in the
    // stream is its position in the file.
    keys_only.deletes.clear();
    let mut batches = read_file(scan.head, keys_only)?;
    let mut positions = BTreeSet::new();
    let mut first = 0u64;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        let matches = scan
            .keys
            .matches(&batch)
            .map_err(|e| key_error(scan.head, e))?;
        // `matches` has no nulls: a row's key is in the set or it is not.
        for row in matches.values().set_indices() {
            let position = first + row as u64;
            if !gone.is_some_and(|g| g.contains(&position)) {
                positions.insert(position);
            }
        }
        first += batch.num_rows() as u64;
    }
    Ok(positions)
}
