//! Writing Iceberg v2 position delete files: for each data file with rows
//! to delete, one Parquet file of (`file_path`, `pos`) sorted by position,
//! in the data file's partition and naming it as `referenced_data_file`
//! (file-scoped deletes, as Iceberg Java writes by default), so readers
//! and maintenance know exactly which data file it belongs to. Nothing
//! here commits: the files join the table through `commit.rs`.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema};
use futures::{StreamExt, stream};
use iceberg::metadata_columns::{
    RESERVED_FIELD_ID_DELETE_FILE_PATH, RESERVED_FIELD_ID_DELETE_FILE_POS,
};
use iceberg::scan::FileScanTask;
use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, NestedField, PartitionKey, PrimitiveType, Schema,
    Struct, Type,
};
use iceberg::table::Table;
use iceberg::writer::file_writer::location_generator::{
    DefaultLocationGenerator, LocationGenerator,
};
use iceberg::writer::file_writer::{FileWriter, FileWriterBuilder, ParquetWriterBuilder};
use parquet::arrow::PARQUET_FIELD_ID_META_KEY;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use uuid::Uuid;

use crate::data_files::{delete_quietly, file_prefix};
use crate::error::{Context, Result};

/// Delete files written at once.
const WRITE_CONCURRENCY: usize = 4;

/// The rows of one data file to delete, by position from its first row.
pub struct DeletedPositions {
    /// The data file as the head's scan planned it (path, partition, spec).
    pub task: FileScanTask,
    pub positions: BTreeSet<u64>,
}

/// Writes one position delete file per data file in `deleted`; the files
/// written. On failure every file already written is deleted.
pub(crate) async fn write_position_deletes(
    table: &Table,
    job_id: Option<&str>,
    deleted: Vec<DeletedPositions>,
) -> Result<Vec<DataFile>> {
    let ident = table.identifier();
    let locations = DefaultLocationGenerator::new(table.metadata())
        .context(|| format!("cannot place delete files of {ident}"))?;
    let prefix = format!("{}-{}-deletes", file_prefix(job_id), Uuid::now_v7());
    let results: Vec<Result<DataFile>> = stream::iter(deleted.into_iter().enumerate())
        .map(|(index, positions)| {
            let file_name = format!("{prefix}-{index:05}.{}", DataFileFormat::Parquet);
            let location = location_for(table, &locations, &positions.task, &file_name);
            write_one(table, location, positions)
        })
        .buffer_unordered(WRITE_CONCURRENCY)
        .collect()
        .await;
    let (written, failed): (Vec<_>, Vec<_>) = results.into_iter().partition(|r| r.is_ok());
    let written: Vec<DataFile> = written.into_iter().map(|r| r.expect("ok")).collect();
    if let Some(Err(error)) = failed.into_iter().next() {
        delete_quietly(table, written.iter().map(|f| f.file_path().to_string())).await;
        return Err(error);
    }
    Ok(written)
}

/// Where the delete file of `task`'s data file goes: its partition's folder.
fn location_for(
    table: &Table,
    locations: &DefaultLocationGenerator,
    task: &FileScanTask,
    file_name: &str,
) -> String {
    let partition = match (&task.partition_spec, &task.partition) {
        (Some(spec), Some(data)) if !spec.is_unpartitioned() => Some(PartitionKey::new(
            spec.as_ref().clone(),
            table.metadata().current_schema().clone(),
            data.clone(),
        )),
        _ => None,
    };
    locations.generate_location(partition.as_ref(), file_name)
}

async fn write_one(table: &Table, location: String, deleted: DeletedPositions) -> Result<DataFile> {
    let ident = table.identifier();
    let DeletedPositions { task, positions } = deleted;
    let failed = || format!("cannot write a position delete file of {ident}");
    let output = table.file_io().new_output(&location).context(failed)?;
    let mut writer = ParquetWriterBuilder::new(delete_file_properties(), Arc::new(delete_schema()))
        .build(output)
        .await
        .context(failed)?;
    let positions: Vec<i64> = positions.into_iter().map(|p| p as i64).collect();
    let batch = RecordBatch::try_new(
        delete_arrow_schema(),
        vec![
            Arc::new(StringArray::from(vec![
                task.data_file_path.as_str();
                positions.len()
            ])),
            Arc::new(Int64Array::from(positions)),
        ],
    )
    .expect("columns of the delete schema");
    writer.write(&batch).await.context(failed)?;
    let mut builders = writer.close().await.context(failed)?;
    let mut builder = builders.pop().expect("a delete file with rows");
    builder
        .content(DataContentType::PositionDeletes)
        .partition(task.partition.clone().unwrap_or_else(Struct::empty))
        .partition_spec_id(task.partition_spec.as_ref().map_or(0, |s| s.spec_id()))
        .referenced_data_file(Some(task.data_file_path.clone()));
    builder
        .build()
        .map_err(|e| iceberg::Error::new(iceberg::ErrorKind::Unexpected, e.to_string()))
        .context(failed)
}

/// zstd like the data files, and `file_path` bounds kept whole (not cut to
/// 64 bytes): a reader then sees from the bounds alone which data file the
/// deletes belong to.
fn delete_file_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        ))
        .set_statistics_truncate_length(None)
        .build()
}

/// The Iceberg schema of a position delete file.
fn delete_schema() -> Schema {
    Schema::builder()
        .with_fields([
            NestedField::required(
                RESERVED_FIELD_ID_DELETE_FILE_PATH,
                "file_path",
                Type::Primitive(PrimitiveType::String),
            )
            .into(),
            NestedField::required(
                RESERVED_FIELD_ID_DELETE_FILE_POS,
                "pos",
                Type::Primitive(PrimitiveType::Long),
            )
            .into(),
        ])
        .build()
        .expect("the position delete schema")
}

/// The same schema in Arrow, with the field ids the Parquet writer needs.
fn delete_arrow_schema() -> Arc<ArrowSchema> {
    let field = |name: &str, data_type, id: i32| {
        Field::new(name, data_type, false).with_metadata(HashMap::from([(
            PARQUET_FIELD_ID_META_KEY.to_string(),
            id.to_string(),
        )]))
    };
    Arc::new(ArrowSchema::new(vec![
        field(
            "file_path",
            DataType::Utf8,
            RESERVED_FIELD_ID_DELETE_FILE_PATH,
        ),
        field("pos", DataType::Int64, RESERVED_FIELD_ID_DELETE_FILE_POS),
    ]))
}
