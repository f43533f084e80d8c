//! Reading Iceberg position deletes: which rows of which data files they
//! delete. A v2 position delete file is Parquet with `file_path` and `pos`
//! (the row's position in that data file, from 0); one file may delete rows
//! of many data files. A v3 deletion vector is a bitmap of the positions of
//! one data file, in a Puffin file ([`crate::deletion_vectors`]). Positions
//! are held in memory per data file: as many as the deletes hold, never the
//! data. The engine's scans and the merge-on-read writers read them the
//! same way.

use std::collections::{BTreeSet, HashMap, HashSet};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use futures::stream::{self, StreamExt, TryStreamExt};
use iceberg::arrow::ArrowFileReader;
use iceberg::io::FileMetadata;
use iceberg::metadata_columns::RESERVED_FIELD_ID_DELETE_FILE_PATH;
use iceberg::scan::FileScanTask;
use iceberg::spec::{DataContentType, DataFile, Datum, PrimitiveLiteral};
use iceberg::table::Table;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::ProjectionMask;
use parquet::arrow::async_reader::AsyncFileReader;

use crate::deletion_vectors::read_deletion_vectors;
use crate::error::{BoxError, CatalogError, Result};

/// The deleted row positions of each data file (by its URI), sorted.
pub type DeletedRows = HashMap<String, BTreeSet<u64>>;

/// The position delete files and deletion vector files the `tasks` name,
/// each once, with its size.
pub fn position_delete_files(tasks: &[FileScanTask]) -> Vec<(&str, u64)> {
    let mut files: Vec<(&str, u64)> = tasks
        .iter()
        .flat_map(|t| &t.deletes)
        .filter(|d| d.file_type == DataContentType::PositionDeletes)
        .map(|d| (d.file_path.as_str(), d.file_size_in_bytes))
        .collect();
    files.sort();
    files.dedup();
    files
}

/// Adds the positions one delete file at `path` (of `size` bytes) holds for
/// the `data_files` to `deleted`: a Parquet position delete file, or a
/// Puffin file of deletion vectors, told apart by the name Iceberg's
/// writers give them (a scan task does not carry the file format).
pub async fn read_delete_file<R>(
    reader: R,
    path: &str,
    size: u64,
    data_files: &HashSet<&str>,
    deleted: &mut DeletedRows,
) -> std::result::Result<(), BoxError>
where
    R: AsyncFileReader + Unpin + Send + 'static,
{
    if is_deletion_vector_file(path) {
        read_deletion_vectors(reader, size, data_files, deleted).await
    } else {
        read_positions(reader, data_files, deleted).await
    }
}

/// Whether the delete file at `path` is a Puffin file of deletion vectors.
pub(crate) fn is_deletion_vector_file(path: &str) -> bool {
    path.ends_with(".puffin")
}

/// Adds the positions one position delete file holds for the `data_files`
/// to `deleted`; its rows for other data files are skipped.
async fn read_positions<R>(
    reader: R,
    data_files: &HashSet<&str>,
    deleted: &mut DeletedRows,
) -> std::result::Result<(), BoxError>
where
    R: AsyncFileReader + Unpin + Send + 'static,
{
    read_columns(reader, &["file_path", "pos"], |batch| {
        let paths = batch
            .column_by_name("file_path")
            .ok_or("no file_path column")?;
        let paths = cast(paths, &DataType::Utf8)?;
        let paths = paths.as_string::<i32>();
        let positions = batch.column_by_name("pos").ok_or("no pos column")?;
        let positions = cast(positions, &DataType::Int64)?;
        let positions = positions.as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            if paths.is_null(row) || positions.is_null(row) {
                continue;
            }
            let path = paths.value(row);
            if data_files.contains(path) {
                let position = u64::try_from(positions.value(row)).map_err(|_| "a negative pos")?;
                deleted
                    .entry(path.to_string())
                    .or_default()
                    .insert(position);
            }
        }
        Ok(())
    })
    .await
}

/// Streams the batches of these columns of a Parquet file to `each`.
async fn read_columns<R>(
    reader: R,
    columns: &[&str],
    mut each: impl FnMut(RecordBatch) -> std::result::Result<(), BoxError>,
) -> std::result::Result<(), BoxError>
where
    R: AsyncFileReader + Unpin + Send + 'static,
{
    let builder = ParquetRecordBatchStreamBuilder::new(reader).await?;
    let schema = builder.parquet_schema();
    let wanted: Vec<usize> = (0..schema.num_columns())
        .filter(|i| columns.contains(&schema.column(*i).name()))
        .collect();
    let mask = ProjectionMask::leaves(schema, wanted);
    let mut batches = builder.with_projection(mask).build()?;
    while let Some(batch) = batches.try_next().await? {
        each(batch)?;
    }
    Ok(())
}

/// How many delete files are read at once. They are small: read one after
/// another, a table with a delete file beside each data file waits a round
/// trip to storage per file before its scan starts.
const DELETE_FILE_CONCURRENCY: usize = 8;

/// Reads every delete file the `tasks` name (a few at once), each through
/// the reader `open` gives it, keeping the positions of the tasks' own data
/// files. An error names the delete file it came from.
pub async fn read_delete_files_of<R, F, Fut>(
    tasks: &[FileScanTask],
    open: F,
) -> std::result::Result<DeletedRows, (String, BoxError)>
where
    R: AsyncFileReader + Unpin + Send + 'static,
    F: Fn(String, u64) -> Fut,
    Fut: Future<Output = std::result::Result<R, BoxError>>,
{
    let data_files: HashSet<&str> = tasks.iter().map(|t| t.data_file_path.as_str()).collect();
    let data_files = &data_files;
    let open = &open;
    let files: Vec<(String, u64)> = position_delete_files(tasks)
        .into_iter()
        .map(|(path, size)| (path.to_string(), size))
        .collect();
    let mut reads = stream::iter(files)
        .map(|(path, size): (String, u64)| async move {
            let mut deleted = DeletedRows::new();
            let read = async {
                let reader = open(path.clone(), size).await?;
                read_delete_file(reader, &path, size, data_files, &mut deleted).await
            };
            match read.await {
                Ok(()) => Ok(deleted),
                Err(e) => Err((path, e)),
            }
        })
        .buffer_unordered(DELETE_FILE_CONCURRENCY);
    let mut all = DeletedRows::new();
    while let Some(deleted) = reads.try_next().await? {
        for (data_file, positions) in deleted {
            all.entry(data_file).or_default().extend(positions);
        }
    }
    Ok(all)
}

/// The rows the delete files of `tasks` delete from the tasks' data files,
/// read through the table's own storage.
pub(crate) async fn deleted_positions(
    table: &Table,
    tasks: &[FileScanTask],
) -> Result<DeletedRows> {
    let open = |path: String, size: u64| async move {
        let file = table.file_io().new_input(&path)?.reader().await?;
        Ok(ArrowFileReader::new(FileMetadata { size }, file))
    };
    read_delete_files_of(tasks, open)
        .await
        .map_err(|(path, source)| CatalogError::DeleteFile {
            table: table.identifier().clone(),
            path,
            source,
        })
}

/// The one data file whose rows a delete file deletes, when its metadata
/// says so: its `referenced_data_file`, or equal `file_path` bounds.
pub(crate) fn only_data_file_of(delete: &DataFile) -> Option<String> {
    if delete.content_type() != DataContentType::PositionDeletes {
        return None;
    }
    if let Some(path) = delete.referenced_data_file() {
        return Some(path);
    }
    match path_bounds(delete) {
        Some((lower, upper)) if lower == upper => Some(lower.to_string()),
        _ => None,
    }
}

/// Whether a delete file may delete rows of the data file at `path`: an
/// equality delete or a position delete file without bounds may delete
/// rows of any.
pub(crate) fn may_delete_rows_of(delete: &DataFile, path: &str) -> bool {
    if delete.content_type() != DataContentType::PositionDeletes {
        return true;
    }
    if let Some(only) = only_data_file_of(delete) {
        return only == path;
    }
    path_bounds(delete).is_none_or(|(lower, upper)| lower <= path && path <= upper)
}

/// Whether a position delete file covers none of the `live` data files, by
/// its `file_path` bounds; `None`: it has none to tell.
pub(crate) fn covers_none(delete: &DataFile, live: &BTreeSet<String>) -> Option<bool> {
    if delete.content_type() != DataContentType::PositionDeletes {
        return None;
    }
    let (lower, upper) = path_bounds(delete)?;
    let first = live.range(lower.to_string()..).next();
    Some(first.is_none_or(|first| first.as_str() > upper))
}

/// The data files a position delete file's rows name, read from its
/// `file_path` column (a delete file written without bounds).
pub(crate) async fn data_files_named_by(
    table: &Table,
    delete: &DataFile,
) -> iceberg::Result<BTreeSet<String>> {
    let path = delete.file_path();
    let input = table.file_io().new_input(path)?;
    let size = delete.file_size_in_bytes();
    let reader = ArrowFileReader::new(FileMetadata { size }, input.reader().await?);
    let mut named = BTreeSet::new();
    read_columns(reader, &["file_path"], |batch| {
        let paths = cast(batch.column(0), &DataType::Utf8)?;
        let paths = paths.as_string::<i32>();
        named.extend(paths.iter().flatten().map(str::to_string));
        Ok(())
    })
    .await
    .map_err(|e| {
        let message = format!("cannot read the position delete file {path}");
        iceberg::Error::new(iceberg::ErrorKind::Unexpected, message).with_source(anyhow::anyhow!(e))
    })?;
    Ok(named)
}

/// The least and greatest `file_path` a position delete file holds.
fn path_bounds(delete: &DataFile) -> Option<(&str, &str)> {
    Some((
        path_bound(delete.lower_bounds())?,
        path_bound(delete.upper_bounds())?,
    ))
}

fn path_bound(bounds: &HashMap<i32, Datum>) -> Option<&str> {
    match bounds
        .get(&RESERVED_FIELD_ID_DELETE_FILE_PATH)
        .map(Datum::literal)
    {
        Some(PrimitiveLiteral::String(path)) => Some(path.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use iceberg::spec::{DataFileBuilder, DataFileFormat};

    use super::*;

    /// A position delete file of `rows` rows whose `file_path` bounds are
    /// `lower` and `upper`, naming its data file when `referenced`.
    fn delete_file(lower: &str, upper: &str, referenced: Option<&str>) -> DataFile {
        let bound =
            |path: &str| HashMap::from([(RESERVED_FIELD_ID_DELETE_FILE_PATH, Datum::string(path))]);
        DataFileBuilder::default()
            .content(DataContentType::PositionDeletes)
            .file_path("s3://t/data/deletes.parquet".into())
            .file_format(DataFileFormat::Parquet)
            .record_count(2)
            .file_size_in_bytes(100)
            .lower_bounds(bound(lower))
            .upper_bounds(bound(upper))
            .referenced_data_file(referenced.map(str::to_string))
            .build()
            .unwrap()
    }

    #[test]
    fn a_delete_file_covers_the_data_files_between_its_path_bounds() {
        let delete = delete_file("s3://t/data/b", "s3://t/data/d", None);
        assert_eq!(only_data_file_of(&delete), None);
        assert!(may_delete_rows_of(&delete, "s3://t/data/c"));
        assert!(!may_delete_rows_of(&delete, "s3://t/data/e"));
        let live = |paths: &[&str]| paths.iter().map(|p| format!("s3://t/data/{p}")).collect();
        assert_eq!(covers_none(&delete, &live(&["a", "e"])), Some(true));
        assert_eq!(covers_none(&delete, &live(&["a", "c"])), Some(false));
        assert_eq!(covers_none(&delete, &live(&["d"])), Some(false));
    }

    #[test]
    fn a_delete_file_of_one_data_file_names_it_by_reference_or_by_equal_bounds() {
        let named = delete_file("s3://t/data/a", "s3://t/data/z", Some("s3://t/data/b"));
        assert_eq!(only_data_file_of(&named).as_deref(), Some("s3://t/data/b"));
        assert!(!may_delete_rows_of(&named, "s3://t/data/c"));
        let bounded = delete_file("s3://t/data/b", "s3://t/data/b", None);
        assert_eq!(
            only_data_file_of(&bounded).as_deref(),
            Some("s3://t/data/b")
        );
    }
}
