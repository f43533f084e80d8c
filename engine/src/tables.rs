//! Reading committed Iceberg tables with DataFusion's own Parquet scan.
//!
//! iceberg-datafusion 0.10 scans a table in a single partition; medallion
//! asks Iceberg which data files make up the snapshot and scans exactly
//! those files in parallel with pruning and filter push-down
//! ([`DataFilesTable`]), matching file columns to the table's by Iceberg
//! field id ([`FieldIds`]).

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::scan::FileScanTask;
use iceberg::table::Table;
use medallion_catalog::snapshot_files;

use crate::field_ids::FieldIds;
use crate::table_scan::DataFilesTable;

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
    let files = match snapshot {
        Some(snapshot) => snapshot_files(table, snapshot.snapshot_id()).await?,
        None => Vec::new(),
    };
    Ok(Arc::new(data_files_table(table, &files, iceberg_schema)?))
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
    let then: HashSet<String> = snapshot_files(table, since)
        .await?
        .into_iter()
        .map(|t| t.data_file_path)
        .collect();
    let now = snapshot_files(table, current.snapshot_id()).await?;
    let still_live = now
        .iter()
        .filter(|t| then.contains(&t.data_file_path))
        .count();
    if still_live != then.len() {
        return Ok(None);
    }
    let added: Vec<FileScanTask> = now
        .into_iter()
        .filter(|t| !then.contains(&t.data_file_path))
        .collect();
    let provider = data_files_table(table, &added, metadata.current_schema())?;
    Ok(Some(Arc::new(provider)))
}

/// A DataFusion table over exactly these data files of an Iceberg table,
/// read in this schema of it.
pub fn data_files_table(
    table: &Table,
    files: &[FileScanTask],
    schema: &iceberg::spec::Schema,
) -> Result<DataFilesTable> {
    let ident = table.identifier();
    let arrow_schema = query_schema(schema)
        .with_context(|| format!("cannot map the schema of {ident} to Arrow"))?;
    DataFilesTable::try_new(
        &ident.to_string(),
        files,
        arrow_schema,
        FieldIds::of(schema),
    )
    .with_context(|| format!("cannot read table {ident}"))
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
