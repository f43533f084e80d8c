//! Reading raw files in as few scans as their columns allow. Files of one
//! format, compression and set of columns are read by one scan, and each
//! row carries the URI of its file as a partition value. (One DataFrame per
//! file, combined by a union per file, made planning grow with the square
//! of the file count: 2,000 one-row files took minutes and gigabytes.)

use std::any::Any;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::{DEFAULT_SCHEMA_INFER_MAX_RECORD, FileFormat};
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::object_store::{ObjectStore, ObjectStoreExt};
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};

use crate::raw::RawFile;
use crate::raw_file_errors::DeclaredTypes;
use crate::spec::RawFormat;

/// The column of a scan that holds each row's file URI.
pub(crate) const FILE_COLUMN: &str = "__medallion_source_file";

/// Raw files that read alike: one format, one compression, the same columns.
pub(crate) struct RawGroup<'a> {
    pub files: Vec<&'a RawFile>,
    /// The files' columns, without [`FILE_COLUMN`].
    pub columns: SchemaRef,
}

/// A raw file whose columns are not known, and why.
pub(crate) struct BadRawFile {
    pub uri: String,
    pub problem: Problem,
}

pub(crate) enum Problem {
    Unreadable(DataFusionError),
    /// The file names this column twice: DataFusion would keep one of the
    /// two and drop the other.
    RepeatedColumn(String),
}

/// Finds the columns of every file (footers read, CSV and JSON sampled,
/// many files at once) and groups the files that share them.
pub(crate) async fn group_by_columns<'a>(
    state: &SessionState,
    files: &'a [RawFile],
) -> std::result::Result<Vec<RawGroup<'a>>, BadRawFile> {
    let concurrency = state.config_options().execution.meta_fetch_concurrency;
    let schemas: Vec<SchemaRef> = futures::stream::iter(files)
        .map(|file| async move {
            file_columns(state, file)
                .await
                .map_err(|problem| BadRawFile {
                    uri: file.uri.clone(),
                    problem,
                })
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    let mut groups: Vec<RawGroup> = Vec::new();
    let mut index: HashMap<(&str, String, Fields), usize> = HashMap::new();
    for (file, columns) in files.iter().zip(schemas) {
        let key = (
            file.format.extension(),
            format!("{:?}", file.compression.get_variant()),
            columns.fields().clone(),
        );
        match index.entry(key) {
            Entry::Occupied(at) => groups[*at.get()].files.push(file),
            Entry::Vacant(slot) => {
                slot.insert(groups.len());
                groups.push(RawGroup {
                    files: vec![file],
                    columns,
                });
            }
        }
    }
    Ok(groups)
}

/// The columns of one raw file as DataFusion reads it.
async fn file_columns(
    state: &SessionState,
    file: &RawFile,
) -> std::result::Result<SchemaRef, Problem> {
    let listed = listed_columns(state, file)
        .await
        .map_err(Problem::Unreadable)?;
    let mut seen = std::collections::HashSet::new();
    if let Some(repeated) = listed.fields().iter().find(|f| !seen.insert(f.name())) {
        return Err(Problem::RepeatedColumn(repeated.name().clone()));
    }
    match file.format {
        // The footer is cached: this applies the session's Parquet options.
        RawFormat::Parquet => inferred(state, file).await.map_err(Problem::Unreadable),
        _ => Ok(Arc::new(listed)),
    }
}

/// The columns DataFusion infers for one file.
async fn inferred(state: &SessionState, file: &RawFile) -> Result<SchemaRef> {
    let format = file_format(state, file.format, file.compression);
    let store = store_of(state, file)?;
    format
        .infer_schema(state, &store, std::slice::from_ref(&file.meta))
        .await
}

/// A file's columns as it lists them. DataFusion merges the columns of a
/// schema it infers by name, which hides a repeated one.
async fn listed_columns(state: &SessionState, file: &RawFile) -> Result<Schema> {
    let store = store_of(state, file)?;
    match file.format {
        RawFormat::Parquet => {
            DFParquetMetadata::new(store.as_ref(), &file.meta)
                .with_file_metadata_cache(Some(
                    state.runtime_env().cache_manager.get_file_metadata_cache(),
                ))
                .fetch_schema()
                .await
        }
        RawFormat::Csv => csv_header_schema(state, &store, file).await,
        // A JSON object has no order of keys to repeat one in: the last of
        // two equal keys wins, as in most JSON readers.
        RawFormat::Json => match inferred(state, file).await {
            Ok(schema) => Ok(Schema::clone(&schema)),
            Err(error) => Err(crate::json_lines::at_its_line(store.as_ref(), file, error).await),
        },
    }
}

/// A CSV file's columns, typed from its first rows, before any merging.
async fn csv_header_schema(
    state: &SessionState,
    store: &Arc<dyn ObjectStore>,
    file: &RawFile,
) -> Result<Schema> {
    let csv = csv_format(state, file.compression);
    let bytes = store
        .get(&file.meta.location)
        .await?
        .into_stream()
        .map_err(DataFusionError::from)
        .boxed();
    let chunks = csv.read_to_delimited_chunks_from_stream(bytes).await;
    let rows = csv
        .options()
        .schema_infer_max_rec
        .unwrap_or(DEFAULT_SCHEMA_INFER_MAX_RECORD);
    Ok(csv.infer_schema_from_stream(state, rows, chunks).await?.0)
}

fn csv_format(state: &SessionState, compression: FileCompressionType) -> CsvFormat {
    CsvFormat::default()
        .with_options(state.default_table_options().csv)
        .with_has_header(true)
        .with_file_compression_type(compression)
}

/// How DataFusion reads a file of this format, with the session's options.
fn file_format(
    state: &SessionState,
    format: RawFormat,
    compression: FileCompressionType,
) -> Arc<dyn FileFormat> {
    let options = state.default_table_options();
    match format {
        RawFormat::Parquet => Arc::new(ParquetFormat::default().with_options(options.parquet)),
        RawFormat::Csv => Arc::new(csv_format(state, compression)),
        RawFormat::Json => Arc::new(
            JsonFormat::default()
                .with_options(options.json)
                .with_file_compression_type(compression),
        ),
    }
}

fn store_url(file: &RawFile) -> Result<ObjectStoreUrl> {
    Ok(ListingTableUrl::parse(&file.uri)?.object_store())
}

fn store_of(state: &SessionState, file: &RawFile) -> Result<Arc<dyn ObjectStore>> {
    state.runtime_env().object_store(store_url(file)?)
}

/// One group of raw files as a table: their columns plus [`FILE_COLUMN`].
#[derive(Debug)]
pub(crate) struct RawScan {
    format: Arc<dyn FileFormat>,
    columns: SchemaRef,
    schema: SchemaRef,
    store: ObjectStoreUrl,
    files: Vec<PartitionedFile>,
    /// Named in an error about a value that does not parse.
    declared: DeclaredTypes,
}

impl RawScan {
    pub fn new(state: &SessionState, group: &RawGroup, declared: DeclaredTypes) -> Result<Self> {
        let first = group.files[0];
        let mut fields: Vec<Arc<Field>> = group.columns.fields().iter().cloned().collect();
        fields.push(file_field());
        let files = group
            .files
            .iter()
            .map(|file| {
                PartitionedFile::new_from_meta(file.meta.clone())
                    .with_partition_values(vec![ScalarValue::Utf8(Some(file.uri.clone()))])
            })
            .collect();
        Ok(Self {
            format: file_format(state, first.format, first.compression),
            columns: group.columns.clone(),
            schema: Arc::new(Schema::new(fields)),
            store: store_url(first)?,
            files,
            declared,
        })
    }
}

fn file_field() -> Arc<Field> {
    Arc::new(Field::new(FILE_COLUMN, DataType::Utf8, false))
}

#[async_trait]
impl TableProvider for RawScan {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Files within a partition are read one after the other, so a
        // thousand files in a few partitions hold a few open at a time.
        let partitions = state.config_options().execution.target_partitions;
        let groups = FileGroup::new(self.files.clone()).split_files(partitions);
        let source = self
            .format
            .file_source(TableSchema::new(self.columns.clone(), vec![file_field()]));
        let config = FileScanConfigBuilder::new(self.store.clone(), source)
            .with_file_groups(groups)
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .build();
        let plan = self.format.create_physical_plan(state, config).await?;
        Ok(crate::raw_file_errors::naming_files(
            plan,
            self.declared.clone(),
        ))
    }
}
