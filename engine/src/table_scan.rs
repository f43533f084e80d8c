//! A DataFusion scan over exactly the data files an Iceberg snapshot names.
//!
//! The file list comes from the table's manifests, with each file's size and
//! row count, so planning lists nothing in storage: no request per file at
//! planning (a `ListingTable` sends a HEAD for each), and a file the
//! metadata names but storage lacks is an error when it is opened, never an
//! empty read (a listing finds nothing where the file should be and reads
//! it as empty; see [`crate::missing_files`]). Position deletes of other
//! engines are applied per file as row selections, read at the first scan
//! ([`crate::position_deletes`]).

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{Statistics, project_schema};
use datafusion::datasource::TableType;
use datafusion::datasource::listing::{ListingTableUrl, PartitionedFile};
use datafusion::datasource::physical_plan::parquet::{
    CachedParquetFileReaderFactory, ParquetAccessPlan,
};
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr_adapter::PhysicalExprAdapterFactory;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use iceberg::scan::FileScanTask;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use tokio::sync::OnceCell;

use crate::field_ids::FieldIds;
use crate::missing_files::NamingMissingFiles;
use crate::position_deletes::{access_plan, deleted_rows};

/// The data files of one table (or of one snapshot's part of it) as a
/// DataFusion table, read in parallel with Parquet pruning and by field id.
#[derive(Debug)]
pub struct DataFilesTable {
    /// The table's name, for errors about its files.
    table: String,
    schema: SchemaRef,
    store: ObjectStoreUrl,
    files: Vec<PartitionedFile>,
    /// The data file URIs as the metadata spells them, for errors.
    uris: Arc<HashMap<Path, String>>,
    /// The files that have position deletes, with them.
    with_deletes: Vec<FileScanTask>,
    /// Their access plans, made at the first scan.
    plans: OnceCell<Arc<HashMap<Path, Arc<ParquetAccessPlan>>>>,
    field_ids: Arc<FieldIds>,
    statistics: Statistics,
}

impl DataFilesTable {
    /// A table over these data files of `table`, read in `schema` (the
    /// query's Arrow schema of an Iceberg schema, see
    /// [`crate::tables::query_schema`]).
    pub fn try_new(
        table: &str,
        tasks: &[FileScanTask],
        schema: SchemaRef,
        field_ids: FieldIds,
    ) -> Result<Self> {
        let mut store = None;
        let mut files = Vec::with_capacity(tasks.len());
        let mut uris = HashMap::with_capacity(tasks.len());
        for task in tasks {
            let url = ListingTableUrl::parse(&task.data_file_path).with_context(|| {
                format!(
                    "data file {} of {table} is not a valid URL",
                    task.data_file_path
                )
            })?;
            match &store {
                None => store = Some(url.object_store()),
                Some(first) if *first != url.object_store() => bail!(
                    "the data files of {table} live in more than one store ({first} and {}); \
                     medallion reads a table from one store",
                    url.object_store()
                ),
                Some(_) => {}
            }
            uris.insert(url.prefix().clone(), task.data_file_path.clone());
            files.push(partitioned_file(task, &url));
        }
        let rows: Option<u64> = tasks.iter().map(|t| t.record_count).sum();
        let statistics = Statistics {
            // Inexact, so that no count is answered from metadata alone: the
            // files are opened, and a missing one is noticed.
            num_rows: rows.map_or(Precision::Absent, |r| Precision::Inexact(r as usize)),
            total_byte_size: Precision::Absent,
            column_statistics: Statistics::unknown_column(&schema),
        };
        Ok(Self {
            table: table.to_string(),
            store: store.unwrap_or_else(ObjectStoreUrl::local_filesystem),
            schema,
            files,
            uris: Arc::new(uris),
            with_deletes: tasks
                .iter()
                .filter(|t| !t.deletes.is_empty())
                .cloned()
                .collect(),
            plans: OnceCell::new(),
            field_ids: Arc::new(field_ids),
            statistics,
        })
    }
}

/// One whole data file, its size known from the manifest (so the footer is
/// read without asking storage for the size first).
fn partitioned_file(task: &FileScanTask, url: &ListingTableUrl) -> PartitionedFile {
    PartitionedFile::new_from_meta(ObjectMeta {
        location: url.prefix().clone(),
        last_modified: chrono::DateTime::UNIX_EPOCH,
        size: task.file_size_in_bytes,
        e_tag: None,
        version: None,
    })
}

impl DataFilesTable {
    /// The files to scan, those with position deletes carrying the access
    /// plan that leaves their deleted rows out.
    async fn files_to_scan(&self, store: &Arc<dyn ObjectStore>) -> Result<Vec<PartitionedFile>> {
        if self.with_deletes.is_empty() {
            return Ok(self.files.clone());
        }
        let plans = self
            .plans
            .get_or_try_init(|| self.access_plans(store))
            .await
            .with_context(|| format!("cannot read the position deletes of {}", self.table))?;
        let mut files = self.files.clone();
        for file in &mut files {
            if let Some(plan) = plans.get(&file.object_meta.location) {
                file.extensions = Some(plan.clone());
            }
        }
        Ok(files)
    }

    async fn access_plans(
        &self,
        store: &Arc<dyn ObjectStore>,
    ) -> Result<Arc<HashMap<Path, Arc<ParquetAccessPlan>>>> {
        let deleted = deleted_rows(store, &self.store, &self.with_deletes).await?;
        let mut plans = HashMap::new();
        for file in &self.files {
            let location = &file.object_meta.location;
            let Some(rows) = self.uris.get(location).and_then(|uri| deleted.get(uri)) else {
                continue;
            };
            let plan = access_plan(store, location, file.object_meta.size, rows).await?;
            plans.insert(location.clone(), Arc::new(plan));
        }
        Ok(Arc::new(plans))
    }
}

#[async_trait::async_trait]
impl TableProvider for DataFilesTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Filters prune row groups and pages, but rows are still filtered above
    /// the scan.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        if self.files.is_empty() {
            let schema = project_schema(&self.schema, projection)?;
            return Ok(Arc::new(EmptyExec::new(schema)));
        }
        let runtime = state.runtime_env();
        let store = runtime.object_store(&self.store)?;
        let cached = CachedParquetFileReaderFactory::new(
            store.clone(),
            runtime.cache_manager.get_file_metadata_cache(),
        );
        let files = self
            .files_to_scan(&store)
            .await
            .map_err(|e| DataFusionError::External(e.into()))?;
        let naming =
            NamingMissingFiles::new(&self.table, store, Arc::new(cached), self.uris.clone());
        let source = ParquetSource::new(self.schema.clone())
            .with_parquet_file_reader_factory(Arc::new(naming));
        let adapter: Arc<dyn PhysicalExprAdapterFactory> = self.field_ids.clone();
        // One group, as a `ListingTable` plans it: DataFusion's file-scan
        // repartitioning deals byte ranges of the files to the cores when
        // the table is big enough to gain from it, and a small table stays
        // one stream (a rewrite of it writes one file, not one per core).
        let config = FileScanConfigBuilder::new(self.store.clone(), Arc::new(source))
            .with_file_group(FileGroup::new(files))
            .with_statistics(self.statistics.clone())
            .with_projection_indices(projection.cloned())?
            .with_limit(limit)
            .with_expr_adapter(Some(adapter))
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}
