//! Errors reading a raw file name the file. One scan reads many files (see
//! `raw_scan`), and what Parquet, CSV and JSON readers say (a corrupt page,
//! `Error while parsing value 'x' ... at line 1501`) names no file; each
//! file's reader here wraps its errors in the file's URI. A CSV value that
//! does not parse is restated at its line and column, and a Parquet file
//! that does not decode names the column that does not; both re-read the
//! file, only once its read has failed.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::{DataFusionError, Result, ScalarValue, exec_datafusion_err};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    CsvSource, FileOpenFuture, FileOpener, FileScanConfig, FileScanConfigBuilder, FileSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::object_store::ObjectStore;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr};
use datafusion::physical_expr_common::sort_expr::PhysicalSortExpr;
use datafusion::physical_plan::filter_pushdown::FilterPushdownPropagation;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan, SortOrderPushdownResult};
use futures::{StreamExt, TryStreamExt};

use crate::csv_lines::CsvFiles;
use crate::parquet_columns::{failing_column, is_decoding};

/// The declared type of each raw column a step declares, by raw name.
pub(crate) type DeclaredTypes = Arc<HashMap<String, String>>;

/// `plan`, a format's scan of raw files, rebuilt with its file source
/// wrapped in [`Named`]; a plan that is not a file scan stays as it is.
pub(crate) fn naming_files(
    plan: Arc<dyn ExecutionPlan>,
    declared: DeclaredTypes,
) -> Arc<dyn ExecutionPlan> {
    let Some(config) = plan
        .as_any()
        .downcast_ref::<DataSourceExec>()
        .and_then(|exec| exec.data_source().as_any().downcast_ref::<FileScanConfig>())
    else {
        return plan;
    };
    let source = Named::wrap(config.file_source().clone(), declared);
    DataSourceExec::from_data_source(
        FileScanConfigBuilder::from(config.clone())
            .with_source(source)
            .build(),
    )
}

/// What a file's reader said, under the file's name (the reader's error
/// stays its cause).
fn in_file(uri: &str, error: DataFusionError) -> DataFusionError {
    error.context(format!("cannot read raw file {uri}"))
}

/// The URI the scan gave the file as its partition value, else its path.
fn uri_of(file: &PartitionedFile) -> String {
    match file.partition_values.first() {
        Some(ScalarValue::Utf8(Some(uri))) => uri.clone(),
        _ => file.object_meta.location.to_string(),
    }
}

/// How a format's failed read is looked into again.
enum Diagnosis {
    Csv(CsvFiles),
    Parquet,
    None,
}

struct NamedOpener {
    inner: Arc<dyn FileOpener>,
    store: Arc<dyn ObjectStore>,
    diagnosis: Arc<Diagnosis>,
}

impl NamedOpener {
    /// `error`, from reading `file`, said with what the file itself tells.
    async fn explained(
        store: Arc<dyn ObjectStore>,
        diagnosis: &Diagnosis,
        file: &PartitionedFile,
        uri: &str,
        error: DataFusionError,
    ) -> DataFusionError {
        match diagnosis {
            Diagnosis::Csv(csv) => match csv.restated(store.as_ref(), file, uri, &error).await {
                Some(restated) => restated,
                None => in_file(uri, error),
            },
            Diagnosis::Parquet if is_decoding(&error) => {
                match failing_column(store, &file.object_meta).await {
                    Some(column) => in_file(
                        uri,
                        exec_datafusion_err!(
                            "column {column} does not decode ({error}); replace the file with a readable copy"
                        ),
                    ),
                    None => in_file(uri, error),
                }
            }
            Diagnosis::Parquet | Diagnosis::None => in_file(uri, error),
        }
    }
}

impl FileOpener for NamedOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let uri = uri_of(&file);
        let opening = self
            .inner
            .open(file.clone())
            .map_err(|e| in_file(&uri, e))?;
        let (store, diagnosis) = (self.store.clone(), self.diagnosis.clone());
        Ok(Box::pin(async move {
            let stream = opening.await.map_err(|e| in_file(&uri, e))?;
            let file = Arc::new(file);
            Ok(stream
                .or_else(move |error| {
                    let (store, diagnosis) = (store.clone(), diagnosis.clone());
                    let (file, uri) = (file.clone(), uri.clone());
                    async move { Err(Self::explained(store, &diagnosis, &file, &uri, error).await) }
                })
                .boxed())
        }))
    }
}

/// A file source whose openers name their file in every error; the rest
/// is the wrapped source's, re-wrapped wherever it makes a new source.
struct Named {
    inner: Arc<dyn FileSource>,
    declared: DeclaredTypes,
}

impl Named {
    fn wrap(inner: Arc<dyn FileSource>, declared: DeclaredTypes) -> Arc<dyn FileSource> {
        Arc::new(Named { inner, declared })
    }

    fn rewrap(&self, inner: Arc<dyn FileSource>) -> Arc<dyn FileSource> {
        Self::wrap(inner, self.declared.clone())
    }

    fn diagnosis(&self, config: &FileScanConfig) -> Diagnosis {
        if let Some(csv) = self.inner.as_any().downcast_ref::<CsvSource>() {
            return Diagnosis::Csv(CsvFiles {
                columns: self.inner.table_schema().file_schema().clone(),
                declared: self.declared.clone(),
                quote: csv.quote(),
                terminator: csv.terminator(),
                compression: config.file_compression_type,
            });
        }
        match self.inner.file_type() {
            "parquet" => Diagnosis::Parquet,
            _ => Diagnosis::None,
        }
    }
}

impl FileSource for Named {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let inner = self
            .inner
            .create_file_opener(object_store.clone(), base_config, partition)?;
        Ok(Arc::new(NamedOpener {
            inner,
            store: object_store,
            diagnosis: Arc::new(self.diagnosis(base_config)),
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_schema(&self) -> &TableSchema {
        self.inner.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        self.rewrap(self.inner.with_batch_size(batch_size))
    }

    fn filter(&self) -> Option<Arc<dyn PhysicalExpr>> {
        self.inner.filter()
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        self.inner.projection()
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        self.inner.metrics()
    }

    fn file_type(&self) -> &str {
        self.inner.file_type()
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_extra(t, f)
    }

    fn supports_repartitioning(&self) -> bool {
        self.inner.supports_repartitioning()
    }

    fn repartitioned(
        &self,
        target_partitions: usize,
        repartition_file_min_size: usize,
        output_ordering: Option<LexOrdering>,
        config: &FileScanConfig,
    ) -> Result<Option<FileScanConfig>> {
        self.inner.repartitioned(
            target_partitions,
            repartition_file_min_size,
            output_ordering,
            config,
        )
    }

    fn try_pushdown_filters(
        &self,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn FileSource>>> {
        let mut pushed = self.inner.try_pushdown_filters(filters, config)?;
        pushed.updated_node = pushed.updated_node.map(|s| self.rewrap(s));
        Ok(pushed)
    }

    fn try_pushdown_sort(
        &self,
        order: &[PhysicalSortExpr],
        eq_properties: &EquivalenceProperties,
    ) -> Result<SortOrderPushdownResult<Arc<dyn FileSource>>> {
        Ok(self
            .inner
            .try_pushdown_sort(order, eq_properties)?
            .map(|s| self.rewrap(s)))
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        Ok(self
            .inner
            .try_pushdown_projection(projection)?
            .map(|s| self.rewrap(s)))
    }
}
