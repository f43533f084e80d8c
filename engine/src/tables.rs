//! Reading committed Iceberg tables with DataFusion's own Parquet scan.
//!
//! iceberg-datafusion 0.10 scans a table in a single partition; medallion
//! asks Iceberg which data files make up the snapshot and hands exactly
//! those files to a `ListingTable`, which reads them in parallel with
//! pruning and filter push-down. File columns are matched to the table's
//! by Iceberg field id, not by name (see [`FieldIds`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapter, DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter,
    PhysicalExprAdapterFactory,
};
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::spec::TableMetadata;
use iceberg::table::Table;
use medallion_catalog::snapshot_files;
use parquet::arrow::PARQUET_FIELD_ID_META_KEY;

pub async fn table_provider(
    table: &Table,
    snapshot_id: Option<i64>,
) -> Result<Arc<dyn TableProvider>> {
    let ident = table.identifier();
    let metadata = table.metadata();
    let snapshot = match snapshot_id {
        Some(id) => Some(metadata.snapshot_by_id(id).with_context(|| {
            format!("table {ident} has no snapshot {id}; `medallion history {ident}` lists them")
        })?),
        None => metadata.current_snapshot(),
    };
    // The table now reads in its current schema (a rename or an added
    // column needs no new snapshot); an earlier snapshot in its own.
    let iceberg_schema = snapshot_id
        .and(snapshot)
        .and_then(|s| s.schema_id())
        .and_then(|id| metadata.schema_by_id(id))
        .unwrap_or(metadata.current_schema());
    let paths = match snapshot {
        Some(snapshot) => data_files(table, snapshot.snapshot_id()).await?,
        None => Vec::new(),
    };
    provider_over(table, paths, iceberg_schema)
}

/// The rows appended to `table` after snapshot `since`: the files live now
/// that were not live then. `None` when that is not what changed (the
/// snapshot is gone, or files were removed since): read the whole table.
pub async fn appended_since(table: &Table, since: i64) -> Result<Option<Arc<dyn TableProvider>>> {
    let metadata = table.metadata();
    let Some(current) = metadata.current_snapshot() else {
        return Ok(None);
    };
    if metadata.snapshot_by_id(since).is_none() {
        return Ok(None);
    }
    let then: HashSet<String> = data_files(table, since).await?.into_iter().collect();
    let now = data_files(table, current.snapshot_id()).await?;
    let still_live = now.iter().filter(|path| then.contains(*path)).count();
    if still_live != then.len() {
        return Ok(None);
    }
    let added = now
        .into_iter()
        .filter(|path| !then.contains(path))
        .collect();
    provider_over(table, added, metadata.current_schema()).map(Some)
}

/// The data files of a snapshot, as Iceberg plans a scan of it.
async fn data_files(table: &Table, snapshot_id: i64) -> Result<Vec<String>> {
    Ok(snapshot_files(table, snapshot_id)
        .await?
        .into_iter()
        .map(|t| t.data_file_path)
        .collect())
}

fn provider_over(
    table: &Table,
    paths: Vec<String>,
    schema: &iceberg::spec::Schema,
) -> Result<Arc<dyn TableProvider>> {
    let ident = table.identifier();
    if paths.is_empty() {
        let schema = query_schema(schema)
            .with_context(|| format!("cannot map the schema of {ident} to Arrow"))?;
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    Ok(Arc::new(
        parquet_files(table.metadata(), &paths, schema)
            .with_context(|| format!("cannot read table {ident}"))?,
    ))
}

/// The Arrow schema queries see for an Iceberg schema: field-id metadata
/// belongs to the files, not to query results.
pub fn query_schema(schema: &iceberg::spec::Schema) -> Result<SchemaRef> {
    let arrow_schema = schema_to_arrow_schema(schema)?;
    Ok(Arc::new(Schema::new(
        arrow_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_metadata(Default::default()))
            .collect::<Vec<_>>(),
    )))
}

/// A DataFusion table over exactly these Parquet files of an Iceberg table
/// of this schema.
///
/// DataFusion matches a file's statistics to the table's columns by name,
/// which after a rename or a type change would say a column is all null
/// (and answer `COUNT(column)` from that) or give one column another's
/// minimum. So statistics are read only for a table whose every column has
/// kept its name and type in every schema it ever had: the usual case, where
/// row counts let the planner build joins on the smaller side.
pub fn parquet_files(
    metadata: &TableMetadata,
    paths: &[&str],
    schema: &iceberg::spec::Schema,
) -> Result<ListingTable> {
    let ids = schema
        .as_struct()
        .fields()
        .iter()
        .map(|f| (f.name.clone(), f.id))
        .collect();
    let schema = query_schema(schema)?;
    let urls = paths
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<datafusion::error::Result<Vec<_>>>()
        .context("a data file path is not a valid URL")?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_collect_stat(columns_never_renamed_or_retyped(metadata));
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema)
        .with_expr_adapter_factory(Arc::new(FieldIds { ids }));
    Ok(ListingTable::try_new(config)?)
}

/// True when every field id has had one name and one type in all of the
/// table's schemas, so statistics matched by name belong to the right column.
fn columns_never_renamed_or_retyped(metadata: &TableMetadata) -> bool {
    let mut seen: HashMap<i32, (&str, &iceberg::spec::Type)> = HashMap::new();
    metadata.schemas_iter().all(|schema| {
        schema.as_struct().fields().iter().all(|field| {
            let (name, field_type) = *seen
                .entry(field.id)
                .or_insert((field.name.as_str(), field.field_type.as_ref()));
            name == field.name && field_type == field.field_type.as_ref()
        })
    })
}

/// Reads each data file's columns by Iceberg field id (the `PARQUET:field_id`
/// every Iceberg writer stores): a renamed column still reads its old
/// files, and a column added later under a dropped or renamed column's old
/// name reads as null there instead of as the other column's values. Types
/// are then cast as DataFusion does for any schema change (old int files of
/// a widened long column).
#[derive(Debug)]
struct FieldIds {
    /// The table's field id of each column, by name.
    ids: HashMap<String, i32>,
}

impl PhysicalExprAdapterFactory for FieldIds {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> datafusion::common::Result<Arc<dyn PhysicalExprAdapter>> {
        let in_file: HashMap<i32, &str> = physical_file_schema
            .fields()
            .iter()
            .filter_map(|f| {
                let id = f.metadata().get(PARQUET_FIELD_ID_META_KEY)?.parse().ok()?;
                Some((id, f.name().as_str()))
            })
            .collect();
        // A file without field ids (not written by an Iceberg writer) can
        // only be read by name.
        if in_file.is_empty() {
            return DefaultPhysicalExprAdapterFactory
                .create(logical_file_schema, physical_file_schema);
        }
        // Each table column under its name in this file; one the file lacks
        // under a name no file column has, which DataFusion reads as null.
        let names: HashMap<String, String> = logical_file_schema
            .fields()
            .iter()
            .map(|f| {
                let in_this_file = match self.ids.get(f.name()).and_then(|id| in_file.get(id)) {
                    Some(name) => name.to_string(),
                    None => format!("{} (not in this file)", f.name()),
                };
                (f.name().clone(), in_this_file)
            })
            .collect();
        let renamed = Schema::new(
            logical_file_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_name(&names[f.name()]))
                .collect::<Vec<_>>(),
        );
        Ok(Arc::new(ByFieldId {
            names,
            inner: DefaultPhysicalExprAdapter::new(Arc::new(renamed), physical_file_schema),
        }))
    }
}

#[derive(Debug)]
struct ByFieldId {
    /// Table column name -> its name in the file.
    names: HashMap<String, String>,
    inner: DefaultPhysicalExprAdapter,
}

impl PhysicalExprAdapter for ByFieldId {
    fn rewrite(
        &self,
        expr: Arc<dyn PhysicalExpr>,
    ) -> datafusion::common::Result<Arc<dyn PhysicalExpr>> {
        let in_file_names = expr
            .transform(|e| {
                if let Some(column) = e.as_any().downcast_ref::<Column>()
                    && let Some(name) = self.names.get(column.name())
                {
                    let renamed: Arc<dyn PhysicalExpr> =
                        Arc::new(Column::new(name, column.index()));
                    return Ok(Transformed::yes(renamed));
                }
                Ok(Transformed::no(e))
            })
            .data()?;
        self.inner.rewrite(in_file_names)
    }
}
