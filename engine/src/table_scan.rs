//! A DataFusion scan over exactly the data files an Iceberg snapshot names.
//!
//! The file list comes from the table's manifests, with each file's size and
//! row count, so planning lists nothing in storage: no request per file at
//! planning (a `ListingTable` sends a HEAD for each), and a file the
//! metadata names but storage lacks is an error when it is opened, never an
//! empty read (a listing finds nothing where the file should be and reads
//! it as empty; see [`crate::missing_files`]). Position deletes and
//! deletion vectors are applied per file as row selections, read at the
//! first scan ([`crate::position_deletes`]); equality deletes by an
//! anti-join of the files they apply to ([`crate::equality_deletes`]).

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
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr_adapter::PhysicalExprAdapterFactory;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use iceberg::scan::FileScanTask;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use tokio::sync::OnceCell;

use crate::distributed::{IcebergScanExec, travels_to_workers};
use crate::equality_deletes::{
    DeleteGroup, EqualityDeleteFile, FileGroups, anti_join, first_columns,
};
use crate::field_ids::FieldIds;
use crate::position_deletes::{access_plan, deleted_rows, location};
use crate::table_files::TableFiles;

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
    /// The files by the equality delete files that apply to them.
    groups: FileGroups,
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
            files.push(partitioned_file(
                url.prefix().clone(),
                task.file_size_in_bytes,
            ));
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
            groups: FileGroups::of(tasks),
            field_ids: Arc::new(field_ids),
            statistics,
        })
    }
}

/// One whole data file, its size known from the manifest (so the footer is
/// read without asking storage for the size first).
fn partitioned_file(location: Path, size: u64) -> PartitionedFile {
    PartitionedFile::new_from_meta(ObjectMeta {
        location,
        last_modified: chrono::DateTime::UNIX_EPOCH,
        size,
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
        let store = state.runtime_env().object_store(&self.store)?;
        let files = self
            .files_to_scan(&store)
            .await
            .map_err(|e| DataFusionError::External(e.into()))?;
        if self.groups.with_deletes.is_empty() {
            return self.parquet_scan(state, self.data(files), projection.cloned(), limit);
        }
        let mut inputs = Vec::new();
        if !self.groups.plain.is_empty() {
            let plain = pick(&files, &self.groups.plain);
            let projection = projection.cloned();
            inputs.push(self.parquet_scan(state, self.data(plain), projection, limit)?);
        }
        for group in &self.groups.with_deletes {
            let scan = self
                .without_equality_deletes(state, group, pick(&files, &group.files), projection)
                .map_err(|e| DataFusionError::External(e.into()))?;
            inputs.push(scan);
        }
        UnionExec::try_new(inputs)
    }
}

/// The files at these indices.
fn pick(files: &[PartitionedFile], indices: &[usize]) -> Vec<PartitionedFile> {
    indices.iter().map(|&i| files[i].clone()).collect()
}

/// The files of one Parquet scan, their URIs as the metadata spells them
/// (for errors), and what is known of their rows.
struct ScanFiles {
    files: Vec<PartitionedFile>,
    uris: Arc<HashMap<Path, String>>,
    statistics: Statistics,
}

impl DataFilesTable {
    /// Some of the table's data files, to scan.
    fn data(&self, files: Vec<PartitionedFile>) -> ScanFiles {
        ScanFiles {
            files,
            uris: self.uris.clone(),
            statistics: self.statistics.clone(),
        }
    }

    /// One parallel Parquet scan of these files (by field id).
    fn parquet_scan(
        &self,
        state: &dyn Session,
        scan: ScanFiles,
        projection: Option<Vec<usize>>,
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let files = Arc::new(TableFiles {
            table: self.table.clone(),
            uris: scan.uris,
            field_ids: self.field_ids.clone(),
        });
        let source = ParquetSource::new(self.schema.clone());
        let source = files.reading(source, state.runtime_env(), &self.store)?;
        let adapter: Arc<dyn PhysicalExprAdapterFactory> = self.field_ids.clone();
        // One group, as a `ListingTable` plans it: DataFusion's file-scan
        // repartitioning deals byte ranges of the files to the cores when
        // the table is big enough to gain from it, and a small table stays
        // one stream (a rewrite of it writes one file, not one per core).
        let config = FileScanConfigBuilder::new(self.store.clone(), Arc::new(source))
            .with_file_group(FileGroup::new(scan.files))
            .with_statistics(scan.statistics)
            .with_projection_indices(projection)?
            .with_limit(limit)
            .with_expr_adapter(Some(adapter))
            .build();
        let scan = DataSourceExec::from_data_source(config);
        if travels_to_workers(state) {
            return Ok(Arc::new(IcebergScanExec::new(scan, files)));
        }
        Ok(scan)
    }

    /// The rows of a group's data files that none of its equality delete
    /// files deletes, in the query's `projection`. The data is read with
    /// the equality columns too; no limit is pushed below the joins.
    fn without_equality_deletes(
        &self,
        state: &dyn Session,
        group: &DeleteGroup,
        files: Vec<PartitionedFile>,
        projection: Option<&Vec<usize>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let wanted: Vec<usize> = match projection {
            Some(columns) => columns.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let sets = group.by_field_ids();
        let mut read = wanted.clone();
        let mut keys_of_sets = Vec::new();
        for field_ids in sets.keys() {
            let keys = self.columns_of(field_ids)?;
            for key in &keys {
                if !read.contains(key) {
                    read.push(*key);
                }
            }
            keys_of_sets.push(keys);
        }
        let mut plan = self.parquet_scan(state, self.data(files), Some(read.clone()), None)?;
        for (deletes, keys) in sets.values().zip(keys_of_sets) {
            let delete_scan = self.delete_file_scan(state, deletes, &keys)?;
            plan = anti_join(delete_scan, plan, &keys, &read)?;
        }
        first_columns(plan, wanted.len())
    }

    /// The table's columns of these field ids, in their order.
    fn columns_of(&self, field_ids: &[i32]) -> Result<Vec<usize>> {
        field_ids
            .iter()
            .map(|id| {
                let name = self.field_ids.name_of(*id).with_context(|| {
                    format!(
                        "an equality delete file of {} compares field {id}, which is not a \
                         top-level column of its schema; medallion cannot apply it",
                        self.table
                    )
                })?;
                Ok(self.schema.index_of(name)?)
            })
            .collect()
    }

    /// A scan of the `keys` columns of equality delete files.
    fn delete_file_scan(
        &self,
        state: &dyn Session,
        deletes: &[&EqualityDeleteFile],
        keys: &[usize],
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut files = Vec::new();
        let mut uris = HashMap::new();
        for delete in deletes {
            let path = location(&self.store, &delete.uri)?;
            uris.insert(path.clone(), delete.uri.clone());
            files.push(partitioned_file(path, delete.size));
        }
        // Their size is unknown: the data files' row count would tell the
        // join planner the delete rows are as many as the table's.
        let unknown = Statistics::new_unknown(&self.schema);
        let scan = ScanFiles {
            files,
            uris: Arc::new(uris),
            statistics: unknown,
        };
        Ok(self.parquet_scan(state, scan, Some(keys.to_vec()), None)?)
    }
}
