//! Reading committed Iceberg tables with DataFusion's own Parquet scan.
//!
//! iceberg-datafusion 0.10 scans a table in a single partition; medallion
//! asks Iceberg which data files make up the snapshot and hands exactly
//! those files to a `ListingTable`, which reads them in parallel with
//! statistics, pruning and filter push-down.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::empty::EmptyTable;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use futures::TryStreamExt;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::table::Table;

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
    let Some(snapshot) = snapshot else {
        return Ok(Arc::new(EmptyTable::new(arrow_schema)));
    };
    let scan = table
        .scan()
        .snapshot_id(snapshot.snapshot_id())
        .build()
        .with_context(|| format!("cannot plan a scan of {ident}"))?;
    let tasks: Vec<_> = scan
        .plan_files()
        .await
        .with_context(|| format!("cannot list the data files of {ident}"))?
        .try_collect()
        .await
        .with_context(|| format!("cannot list the data files of {ident}"))?;
    if tasks.iter().any(|t| !t.deletes.is_empty()) {
        bail!("{ident} has row-level delete files, which medallion cannot read yet");
    }
    if tasks.is_empty() {
        return Ok(Arc::new(EmptyTable::new(arrow_schema)));
    }
    let paths: Vec<&str> = tasks.iter().map(|t| t.data_file_path.as_str()).collect();
    Ok(Arc::new(
        parquet_files(&paths, arrow_schema)
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
