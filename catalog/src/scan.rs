//! Reading a table's data files back with Iceberg's own Arrow reader, for
//! the operations that rewrite files (merge, compact).

use std::collections::BTreeSet;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use futures::TryStreamExt;
use futures::stream::{self, BoxStream, StreamExt};
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataContentType, SnapshotRef};
use iceberg::table::Table;

use crate::error::{BoxError, CatalogError, Context, MissingDataFile, Result};
use crate::position_deletes::{DeletedRows, deleted_positions, is_deletion_vector_file};

/// The data files of the table's current snapshot, as scan tasks over all
/// columns, each with its position delete files, for the operations that
/// rewrite files (merge, compact, delete): reading a task applies its
/// deletes, so a rewrite folds them in.
pub async fn live_files(table: &Table) -> Result<Vec<FileScanTask>> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(Vec::new());
    };
    snapshot_files(table, snapshot.snapshot_id()).await
}

/// The data files of a snapshot, as scan tasks over all columns, each with
/// the delete files that apply to it (Iceberg matches them by partition and
/// sequence number). Readers apply them all: position deletes, v3 deletion
/// vectors and equality deletes.
pub async fn snapshot_files(table: &Table, snapshot_id: i64) -> Result<Vec<FileScanTask>> {
    let ident = table.identifier();
    table
        .scan()
        .snapshot_id(snapshot_id)
        .build()
        .context(|| format!("cannot scan {ident}"))?
        .plan_files()
        .await
        .context(|| format!("cannot list the data files of {ident}"))?
        .try_collect()
        .await
        .context(|| format!("cannot list the data files of {ident}"))
}

/// The record batches of one data file, in the table's Arrow schema, its
/// deletes applied. A file storage lacks is a [`MissingDataFile`], never an
/// empty read.
pub(crate) fn read_file(
    table: &Table,
    task: FileScanTask,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    if !has_vectors(&task) {
        return read_with_iceberg_reader(table, task);
    }
    let table = table.clone();
    let read = async move {
        let mut deleted = deleted_positions(&table, std::slice::from_ref(&task)).await?;
        read_with_deletes_read(&table, task, &mut deleted)
    };
    Ok(stream::once(read).try_flatten().boxed())
}

/// One data file, its deletion vectors' positions (if it has vectors)
/// taken from `deleted`, already read; iceberg-rust's reader applies any
/// other deletes.
fn read_with_deletes_read(
    table: &Table,
    task: FileScanTask,
    deleted: &mut DeletedRows,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    if !has_vectors(&task) {
        return read_with_iceberg_reader(table, task);
    }
    let gone = deleted.remove(&task.data_file_path).unwrap_or_default();
    read_whole_without(table, task, gone)
}

fn has_vectors(task: &FileScanTask) -> bool {
    task.deletes
        .iter()
        .any(|d| is_deletion_vector_file(&d.file_path))
}

/// A file with deletion vectors, which iceberg-rust's reader does not
/// read: the file is read whole, in order, without the `gone` positions
/// (of all its deletes). Its equality deletes would take rows out of that
/// order, so a file with both is refused.
fn read_whole_without(
    table: &Table,
    mut task: FileScanTask,
    gone: BTreeSet<u64>,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    if task
        .deletes
        .iter()
        .any(|d| d.file_type == DataContentType::EqualityDeletes)
    {
        return Err(CatalogError::Unsupported {
            table: table.identifier().clone(),
            what: "data files with both deletion vectors and equality delete files",
            action: "rewrite",
        });
    }
    task.deletes.clear();
    Ok(without_positions(
        read_with_iceberg_reader(table, task)?,
        gone,
    ))
}

/// The batches of one whole data file without the rows at the `gone`
/// positions (counted from the file's first row).
fn without_positions(
    batches: BoxStream<'static, Result<RecordBatch>>,
    gone: BTreeSet<u64>,
) -> BoxStream<'static, Result<RecordBatch>> {
    let mut first = 0u64;
    batches
        .map(move |batch| {
            let batch = batch?;
            let rows = batch.num_rows() as u64;
            let keep: BooleanArray = (first..first + rows)
                .map(|p| Some(!gone.contains(&p)))
                .collect();
            first += rows;
            filter_record_batch(&batch, &keep).map_err(|e| CatalogError::Iceberg {
                context: "cannot leave deleted rows out".to_string(),
                source: Box::new(e.into()),
            })
        })
        .boxed()
}

fn read_with_iceberg_reader(
    table: &Table,
    task: FileScanTask,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let ident = table.identifier().to_string();
    let path = task.data_file_path.clone();
    let batches = table
        .reader_builder()
        .build()
        .read(stream::iter([Ok(task)]).boxed())
        .map_err(|e| read_error(&ident, &path, e))?
        .stream();
    Ok(batches
        .map(move |batch| batch.map_err(|e| read_error(&ident, &path, e)))
        .boxed())
}

fn read_error(table: &str, path: &str, error: iceberg::Error) -> CatalogError {
    match MissingDataFile::in_chain(table, path, &error) {
        Some(missing) => missing.into(),
        None => CatalogError::Iceberg {
            context: format!("cannot read {path} of {table}"),
            source: Box::new(error),
        },
    }
}

/// The record batches of several data files, one file after the other.
/// The deletes of those with deletion vectors are read first, together: a
/// Puffin file holds the vectors of many files, and is read once.
pub(crate) fn read_files(
    table: &Table,
    tasks: Vec<FileScanTask>,
) -> BoxStream<'static, std::result::Result<RecordBatch, BoxError>> {
    let table = table.clone();
    let read = async move {
        let with_vectors: Vec<FileScanTask> =
            tasks.iter().filter(|t| has_vectors(t)).cloned().collect();
        let mut deleted = deleted_positions(&table, &with_vectors).await?;
        let files = stream::iter(tasks).flat_map(move |task| {
            match read_with_deletes_read(&table, task, &mut deleted) {
                Ok(batches) => batches.map(|b| b.map_err(BoxError::from)).boxed(),
                Err(e) => stream::iter([Err(BoxError::from(e))]).boxed(),
            }
        });
        Ok::<_, BoxError>(files)
    };
    stream::once(read).try_flatten().boxed()
}

/// Every file the given snapshots need: their manifest lists, manifests
/// and live data files.
pub(crate) async fn files_of_snapshots<'a>(
    table: &Table,
    snapshots: impl IntoIterator<Item = &'a SnapshotRef>,
) -> Result<std::collections::HashSet<String>> {
    let ident = table.identifier();
    let mut files = std::collections::HashSet::new();
    for snapshot in snapshots {
        files.insert(snapshot.manifest_list().to_string());
        let list = table
            .manifest_list_reader(snapshot)
            .load()
            .await
            .context(|| format!("cannot read a manifest list of {ident}"))?;
        for manifest_file in list.entries() {
            if !files.insert(manifest_file.manifest_path.clone()) {
                continue;
            }
            let manifest = manifest_file
                .load_manifest(table.file_io())
                .await
                .context(|| format!("cannot read a manifest of {ident}"))?;
            files.extend(
                manifest
                    .entries()
                    .iter()
                    .filter(|e| e.is_alive())
                    .map(|e| e.file_path().to_string()),
            );
        }
    }
    Ok(files)
}

/// Every row of the table's current snapshot, as iceberg-rust's own reader
/// returns them: what other engines see, for tests to compare against.
#[cfg(test)]
pub(crate) async fn read_with_iceberg(table: &Table) -> Vec<RecordBatch> {
    table
        .scan()
        .build()
        .unwrap()
        .to_arrow()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap()
}
