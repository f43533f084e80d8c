//! An Iceberg table scan as one plan node, on its way to a worker.
//!
//! A scan of a table's data files is a DataFusion Parquet scan plus three
//! things DataFusion's plan encoding drops: the access plans that leave out
//! the rows of position deletes and deletion vectors (carried on each file),
//! the reading of columns by field id (the scan's expression adapter) and
//! the reader that names a missing file. Encoded bare, a worker would read
//! deleted rows back and renamed columns as null. So in a distributed
//! session each such scan is planned wrapped in an [`IcebergScanExec`],
//! which [`super::codec`] encodes whole and rebuilds on the worker.
//!
//! The wrapper passes DataFusion's repartitioning of the files into byte
//! ranges through to the scan (each worker reads its share on every core);
//! filters and projections that optimizer rules would push into a bare scan
//! stay above it, and the scan prunes less than a local one.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use datafusion::common::{Result, Statistics, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

use crate::table_files::TableFiles;

/// A Parquet scan of an Iceberg table's data files, with the table it reads.
#[derive(Debug)]
pub struct IcebergScanExec {
    scan: Arc<DataSourceExec>,
    files: Arc<TableFiles>,
}

impl IcebergScanExec {
    /// `scan`, a Parquet scan through `files`' reader, wrapped.
    pub fn new(scan: Arc<DataSourceExec>, files: Arc<TableFiles>) -> Self {
        Self { scan, files }
    }

    /// A scan of these files of `files`' table; `config` reads them through
    /// a plain Parquet source, which this makes read them as the table's.
    pub fn decoded(
        config: FileScanConfig,
        files: Arc<TableFiles>,
        ctx: &TaskContext,
    ) -> Result<Self> {
        let Some(parquet) = config
            .file_source()
            .as_any()
            .downcast_ref::<ParquetSource>()
        else {
            return internal_err!(
                "an Iceberg scan reads Parquet, not {}",
                config.file_source().file_type()
            );
        };
        let source = files.reading(
            parquet.clone(),
            &ctx.runtime_env(),
            &config.object_store_url,
        )?;
        let mut config = config;
        config.file_source = Arc::new(source);
        config.expr_adapter_factory = Some(files.field_ids.clone());
        Ok(Self {
            scan: DataSourceExec::from_data_source(config),
            files,
        })
    }

    /// The same scan over other groups of its files (a task's share).
    pub fn with_config(&self, config: FileScanConfig) -> Self {
        Self {
            scan: DataSourceExec::from_data_source(config),
            files: self.files.clone(),
        }
    }

    pub fn config(&self) -> &FileScanConfig {
        self.scan
            .data_source()
            .as_any()
            .downcast_ref::<FileScanConfig>()
            .expect("an Iceberg scan is a file scan")
    }

    pub fn files(&self) -> &Arc<TableFiles> {
        &self.files
    }

    /// The Parquet scan, as DataFusion's plan encoding writes it.
    pub fn parquet_scan(&self) -> Arc<dyn ExecutionPlan> {
        self.scan.clone()
    }
}

impl DisplayAs for IcebergScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "IcebergScanExec: table={}, ", self.files.table)?;
        self.scan.fmt_as(t, f)
    }
}

impl ExecutionPlan for IcebergScanExec {
    fn name(&self) -> &str {
        "IcebergScanExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.scan.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return internal_err!(
                "IcebergScanExec is a leaf; it was given {} children",
                children.len()
            );
        }
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.scan.execute(partition, context)
    }

    /// DataFusion deals a scan's files out to the cores as byte ranges.
    fn repartitioned(
        &self,
        target_partitions: usize,
        config: &ConfigOptions,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(plan) = self.scan.repartitioned(target_partitions, config)? else {
            return Ok(None);
        };
        let Some(scan) = plan.as_any().downcast_ref::<DataSourceExec>() else {
            return internal_err!("a repartitioned file scan is a DataSourceExec");
        };
        Ok(Some(Arc::new(Self::new(
            Arc::new(scan.clone()),
            self.files.clone(),
        ))))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.scan.metrics()
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Statistics> {
        self.scan.partition_statistics(partition)
    }
}
