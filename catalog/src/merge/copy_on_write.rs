//! Copy-on-write merge: the files holding a merged key are read whole and
//! rewritten without the matched rows (and without the rows their delete
//! files already removed); the copies replace them in one snapshot.

use std::collections::HashSet;

use arrow::array::RecordBatch;
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::boolean::not;
use futures::{StreamExt, TryStreamExt, stream};
use iceberg::scan::FileScanTask;

use super::key_scan::{KeyScan, READ_CONCURRENCY, key_error};
use crate::commit::Attempt;
use crate::data_files::write_data_files;
use crate::error::BoxError;
use crate::error::{CatalogError, Result};
use crate::scan::{read_file, read_files};
use crate::schema::WriteSchema;
use crate::snapshot::SnapshotKind;

/// Rewrites the head's files that hold a merged key, without those rows.
pub(super) async fn rewrite_matched(
    scan: &KeyScan<'_>,
    tasks: Vec<FileScanTask>,
) -> Result<Attempt> {
    let touched = touched_files(scan, tasks).await?;
    if touched.is_empty() {
        return Ok(Attempt::of(SnapshotKind::Append));
    }
    let replaced: HashSet<String> = touched.iter().map(|t| t.data_file_path.clone()).collect();
    let writers = READ_CONCURRENCY.min(touched.len());
    let mut groups: Vec<Vec<FileScanTask>> = vec![Vec::new(); writers];
    for (index, task) in touched.into_iter().enumerate() {
        groups[index % writers].push(task);
    }
    let streams: Vec<_> = groups
        .into_iter()
        .map(|group| {
            let keys = scan.keys.clone();
            read_files(scan.head, group)
                .map(move |batch| -> std::result::Result<RecordBatch, BoxError> {
                    let batch = batch?;
                    let stays = not(&keys.matches(&batch)?)?;
                    Ok(filter_record_batch(&batch, &stays)?)
                })
                .boxed()
        })
        .collect();
    // The rows that stay come in the head's schema and are written in it.
    let unchanged = WriteSchema::unchanged(scan.head.metadata());
    let rewritten = write_data_files(scan.head, &unchanged, scan.job_id, streams).await?;
    Ok(Attempt {
        kind: SnapshotKind::Overwrite(replaced),
        rewritten,
    })
}

/// The files holding at least one merged key (a file's delete files
/// applied: a key only a deleted row held touches nothing).
async fn touched_files(scan: &KeyScan<'_>, tasks: Vec<FileScanTask>) -> Result<Vec<FileScanTask>> {
    stream::iter(tasks)
        .map(|task| async move {
            let mut keys_only = task.clone();
            keys_only.project_field_ids = scan.key_ids.clone();
            let mut batches = read_file(scan.head, keys_only)?;
            while let Some(batch) = batches.next().await {
                let matches = scan
                    .keys
                    .matches(&batch?)
                    .map_err(|e| key_error(scan.head, e))?;
                if matches.true_count() > 0 {
                    return Ok(Some(task));
                }
            }
            Ok(None)
        })
        .buffer_unordered(READ_CONCURRENCY)
        .try_filter_map(|task| async move { Ok::<_, CatalogError>(task) })
        .try_collect()
        .await
}
