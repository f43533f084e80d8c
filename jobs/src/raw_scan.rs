//! Reading raw files in as few scans as their columns allow. Files of one
//! format and set of columns are read by one scan, and each
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
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::Expr;
use datafusion::object_store::ObjectStore;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};

use crate::raw::RawFile;
use crate::spec::RawFormat;

/// The column of a scan that holds each row's file URI.
pub(crate) const FILE_COLUMN: &str = "__medallion_source_file";

/// Raw files that read alike: one format, the same columns.
pub(crate) struct RawGroup<'a> {
    pub files: Vec<&'a RawFile>,
    /// The files' columns, without [`FILE_COLUMN`].
    pub columns: SchemaRef,
}

/// A raw file whose columns are not known, and why.
pub(crate) struct BadRawFile {
    pub uri: String,
    pub source: DataFusionError,
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
                .map_err(|source| BadRawFile {
                    uri: file.uri.clone(),
                    source,
                })
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    let mut groups: Vec<RawGroup> = Vec::new();
    let mut index: HashMap<(&str, Fields), usize> = HashMap::new();
    for (file, columns) in files.iter().zip(schemas) {
        let key = (file.format.extension(), columns.fields().clone());
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
async fn file_columns(state: &SessionState, file: &RawFile) -> Result<SchemaRef> {
    let format = file_format(state, file.format);
    let store = store_of(state, file)?;
    format
        .infer_schema(state, &store, std::slice::from_ref(&file.meta))
        .await
}

/// How DataFusion reads a file of this format, with the session's options.
fn file_format(state: &SessionState, format: RawFormat) -> Arc<dyn FileFormat> {
    let options = state.default_table_options();
    match format {
        RawFormat::Parquet => Arc::new(ParquetFormat::default().with_options(options.parquet)),
        RawFormat::Csv => Arc::new(
            CsvFormat::default()
                .with_options(options.csv)
                .with_has_header(true),
        ),
        RawFormat::Json => Arc::new(JsonFormat::default().with_options(options.json)),
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
}

impl RawScan {
    pub fn new(state: &SessionState, group: &RawGroup) -> Result<Self> {
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
            format: file_format(state, first.format),
            columns: group.columns.clone(),
            schema: Arc::new(Schema::new(fields)),
            store: store_url(first)?,
            files,
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
        self.format.create_physical_plan(state, config).await
    }
}
