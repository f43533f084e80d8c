//! Streaming record batches into a table's Parquet data files: one task per
//! input stream, each splitting its rows by partition ([`PartitionWriters`])
//! and rolling files at the table's target size. Nothing here commits: the
//! files become part of the table only through `commit.rs`, and a failed
//! write deletes what it streamed.

use std::error::Error as StdError;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt};
use iceberg::TableIdent;
use iceberg::arrow::{RecordBatchPartitionSplitter, schema_to_arrow_schema};
use iceberg::spec::{DataFile, DataFileFormat, TableMetadata, TableProperties};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::error::{CatalogError, Context, Result};
use crate::fanout::PartitionWriters;
use crate::schema::WriteSchema;

const ROW_GROUP_ROWS: usize = 256 * 1024;

/// A column's dictionary is given up beyond this size. Parquet's default
/// (1 MiB) keeps interning unique keys and comments for 100,000+ rows per
/// row group before falling back to plain encoding; at 64 KiB only columns
/// of few values (dates, statuses, clerks) stay dictionary-encoded, and the
/// bronze orders encode 37% faster into a 12% smaller file
/// (the `write` group of `engine/benches/hot_paths.rs`).
const DICTIONARY_PAGE_LIMIT: usize = 64 * 1024;

/// How every data file medallion writes is encoded: zstd (level 1 compresses
/// as well as 3 on this data, faster), row groups of at most 256Ki rows.
pub fn data_file_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_LIMIT)
        .build()
}

/// The table's `write.target-file-size-bytes`, or Iceberg's default.
pub(crate) fn target_file_size(metadata: &TableMetadata) -> usize {
    metadata
        .properties()
        .get(TableProperties::PROPERTY_WRITE_TARGET_FILE_SIZE_BYTES)
        .and_then(|v| v.parse().ok())
        .unwrap_or(TableProperties::PROPERTY_WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT)
}

type Rolling = RollingFileWriterBuilder<
    ParquetWriterBuilder,
    DefaultLocationGenerator,
    DefaultFileNameGenerator,
>;

/// Streams every partition into data files of `table` in `written`'s schema
/// (one task per partition, in parallel); the files written. On failure
/// every file already written is deleted. `job_id` names the files.
pub(crate) async fn write_data_files<S, E>(
    table: &Table,
    written: &WriteSchema,
    job_id: Option<&str>,
    partitions: Vec<S>,
) -> Result<Vec<DataFile>>
where
    S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
{
    let writers = FileWriters::new(table, written, job_id)?;
    let mut tasks = JoinSet::new();
    for (index, stream) in partitions.into_iter().enumerate() {
        tasks.spawn(writers.clone().write(index, stream));
    }
    join_writers(table, tasks).await
}

/// What every writer of one write shares: where its files go, how they
/// are named and split by partition, and the columns they take.
#[derive(Clone)]
pub(crate) struct FileWriters {
    ident: TableIdent,
    rolling: Rolling,
    splitter: Option<Arc<RecordBatchPartitionSplitter>>,
    target: SchemaRef,
    sources: Arc<[Option<usize>]>,
}

impl FileWriters {
    pub(crate) fn new(table: &Table, written: &WriteSchema, job_id: Option<&str>) -> Result<Self> {
        let ident = table.identifier().clone();
        let target = Arc::new(
            schema_to_arrow_schema(&written.schema)
                .context(|| format!("cannot map the schema of {ident} to Arrow"))?,
        );
        Ok(Self {
            rolling: rolling_writer(table, written, job_id)?,
            splitter: splitter(table, written)?,
            sources: written.sources.clone().into(),
            target,
            ident,
        })
    }

    /// Streams one partition's rows (the `index`th) into data files.
    pub(crate) async fn write<S, E>(self, index: usize, mut stream: S) -> Result<Vec<DataFile>>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        let Self {
            ident,
            rolling,
            splitter,
            target,
            sources,
        } = self;
        let mut writer = PartitionWriters::new(DataFileWriterBuilder::new(rolling), splitter);
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| CatalogError::Source {
                partition: index,
                source: e.into(),
            })?;
            if batch.num_rows() == 0 {
                continue;
            }
            let batch = conform(&batch, &sources, &target)
                .context(|| format!("cannot convert the job's output to the columns of {ident}"))?;
            writer
                .write(batch)
                .await
                .context(|| format!("cannot write a data file of {ident}"))?;
        }
        writer
            .close()
            .await
            .context(|| format!("cannot finish a data file of {ident}"))
    }
}

/// Every write gets its own file-name prefix: iceberg-rust's name
/// generator restarts its counter per generator, so a shared prefix would
/// let two writes overwrite each other's files.
fn rolling_writer(table: &Table, written: &WriteSchema, job_id: Option<&str>) -> Result<Rolling> {
    let metadata = table.metadata();
    let prefix = format!("{}-{}", file_prefix(job_id), Uuid::now_v7());
    Ok(RollingFileWriterBuilder::new(
        ParquetWriterBuilder::new(data_file_properties(), written.schema.clone()),
        target_file_size(metadata),
        table.file_io().clone(),
        DefaultLocationGenerator::new(metadata)
            .context(|| format!("cannot place data files of {}", table.identifier()))?,
        DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet),
    ))
}

/// Splits rows by the table's partition spec; `None` when unpartitioned.
fn splitter(
    table: &Table,
    written: &WriteSchema,
) -> Result<Option<Arc<RecordBatchPartitionSplitter>>> {
    let spec = table.metadata().default_partition_spec();
    if spec.is_unpartitioned() {
        return Ok(None);
    }
    let splitter = RecordBatchPartitionSplitter::try_new_with_computed_values(
        written.schema.clone(),
        spec.clone(),
    )
    .context(|| format!("cannot partition the data of {}", table.identifier()))?;
    Ok(Some(Arc::new(splitter)))
}

/// The files of every writer task; at the first failure the others are
/// stopped and everything written is deleted.
async fn join_writers(
    table: &Table,
    mut tasks: JoinSet<Result<Vec<DataFile>>>,
) -> Result<Vec<DataFile>> {
    let mut files = Vec::new();
    let mut failure = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(written)) => files.extend(written),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
                tasks.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                failure.get_or_insert(CatalogError::WriterTask(e));
                tasks.abort_all();
            }
        }
    }
    if let Some(e) = failure {
        delete_quietly(table, files.iter().map(|f| f.file_path().to_string())).await;
        return Err(e);
    }
    Ok(files)
}

/// Reorders and casts a batch into the written Arrow schema (which carries
/// the Iceberg field ids the writers need); columns without a source are
/// null.
fn conform(
    batch: &RecordBatch,
    sources: &[Option<usize>],
    target: &SchemaRef,
) -> arrow::error::Result<RecordBatch> {
    let columns = sources
        .iter()
        .zip(target.fields())
        .map(|(source, field)| match source {
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
            Some(index) => {
                let column = batch.column(*index);
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    cast(column, field.data_type())
                }
            }
        })
        .collect::<arrow::error::Result<Vec<ArrayRef>>>()?;
    RecordBatch::try_new(target.clone(), columns)
}

/// The start of the names of a write's files: its job id, made safe for a
/// path.
pub(crate) fn file_prefix(job_id: Option<&str>) -> String {
    job_id.map(sanitize).unwrap_or_else(|| "write".into())
}

fn sanitize(job_id: &str) -> String {
    job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Removes files that no snapshot references. Failure only leaves orphans,
/// which orphan-file removal collects, so it is logged and not raised.
pub(crate) async fn delete_quietly(table: &Table, paths: impl IntoIterator<Item = String>) {
    for path in paths {
        if let Err(e) = table.file_io().delete(&path).await {
            tracing::warn!(path, error = %e, "could not delete an unreferenced file");
        }
    }
}
