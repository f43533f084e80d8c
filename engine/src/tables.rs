//! Reading committed Iceberg tables with DataFusion's own Parquet scan.
//!
//! iceberg-datafusion 0.10 scans a table in a single partition; medallion
//! asks Iceberg which data files make up the snapshot and hands exactly
//! those files to a `ListingTable`, which reads them in parallel with
//! statistics, pruning and filter push-down.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::table::Table;
use medallion_catalog::snapshot_files;

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
    let schema_id = snapshot
        .and_then(|s| s.schema_id())
        .unwrap_or(metadata.current_schema_id());
    let iceberg_schema = metadata
        .schema_by_id(schema_id)
        .unwrap_or(metadata.current_schema());
    let arrow_schema = query_schema(iceberg_schema)
        .with_context(|| format!("cannot map the schema of {ident} to Arrow"))?;
    let paths = match snapshot {
        Some(snapshot) => data_files(table, snapshot.snapshot_id()).await?,
        None => Vec::new(),
    };
    provider_over(table, paths, arrow_schema)
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
    let schema = query_schema(metadata.current_schema())
        .with_context(|| format!("cannot map the schema of {} to Arrow", table.identifier()))?;
    provider_over(table, added, schema).map(Some)
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
    schema: SchemaRef,
) -> Result<Arc<dyn TableProvider>> {
    if paths.is_empty() {
        return Ok(Arc::new(EmptyTable::new(schema)));
    }
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    Ok(Arc::new(parquet_files(&paths, schema).with_context(
        || format!("cannot read table {}", table.identifier()),
    )?))
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

/// A DataFusion table over exactly these Parquet files.
pub fn parquet_files(paths: &[&str], schema: SchemaRef) -> Result<ListingTable> {
    let urls = paths
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<datafusion::error::Result<Vec<_>>>()
        .context("a data file path is not a valid URL")?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(ListingTable::try_new(config)?)
}
