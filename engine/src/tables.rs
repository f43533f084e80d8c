//! Reading committed Iceberg tables with DataFusion's own Parquet scan.
//!
//! iceberg-datafusion 0.10 scans a table in a single partition; medallion
//! asks Iceberg which data files make up the snapshot and hands exactly
//! those files to a `ListingTable`, which reads them in parallel with
//! statistics, pruning and filter push-down.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
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
    let arrow_schema = schema_to_arrow_schema(iceberg_schema)
        .with_context(|| format!("cannot map the schema of {ident} to Arrow"))?;
    // Field-id metadata belongs to the files, not to query results.
    let arrow_schema = Arc::new(arrow::datatypes::Schema::new(
        arrow_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_metadata(Default::default()))
            .collect::<Vec<_>>(),
    ));
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
    let urls = tasks
        .iter()
        .map(|t| ListingTableUrl::parse(&t.data_file_path))
        .collect::<datafusion::error::Result<Vec<_>>>()
        .with_context(|| format!("a data file path of {ident} is not a valid URL"))?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(arrow_schema);
    Ok(Arc::new(
        ListingTable::try_new(config).with_context(|| format!("cannot read table {ident}"))?,
    ))
}
