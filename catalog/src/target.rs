//! The table a write of rows goes to: created on its first write (with the
//! partitioning the job asks for), purged again if that first write fails,
//! and how the rows' columns fit it.

use std::collections::HashMap;

use arrow::datatypes::Schema;
use iceberg::arrow::arrow_schema_to_schema_auto_assign_ids;
use iceberg::spec::{FormatVersion, TableProperties};
use iceberg::table::Table;
use iceberg::{TableCreation, TableIdent};

use crate::connection::Lakehouse;
use crate::error::{CatalogError, Context, Result};
use crate::partition::{PartitionField, check_spec, unbound_spec};
use crate::schema::{
    SchemaEvolution, WriteSchema, check_typed, fit_schema, normalize_arrow_schema,
};

/// How a table a write creates is laid out; an existing one must match.
pub(crate) struct TableLayout<'a> {
    /// Empty: an existing table may be partitioned any way.
    pub partition_by: &'a [PartitionField],
    /// `None`: v2 for a new table, any for an existing one.
    pub format_version: Option<FormatVersion>,
}

/// The target table, and whether this write created it. An existing table
/// must already be partitioned as `partition_by` says (empty: as it is),
/// and of the format version asked for, if one is.
pub(crate) async fn ensure_table(
    lakehouse: &Lakehouse,
    ident: &TableIdent,
    schema: &Schema,
    layout: TableLayout<'_>,
) -> Result<(Table, bool)> {
    let partition_by = layout.partition_by;
    if let Some(table) = lakehouse.try_load_table(ident).await? {
        check_format_version(&table, layout.format_version)?;
        if !partition_by.is_empty() {
            let metadata = table.metadata();
            check_spec(
                ident,
                metadata.current_schema(),
                metadata.default_partition_spec(),
                partition_by,
            )?;
        }
        return Ok((table, false));
    }
    lakehouse.ensure_namespace(ident.namespace()).await?;
    check_typed(ident, schema)?;
    let iceberg_schema = arrow_schema_to_schema_auto_assign_ids(&normalize_arrow_schema(schema))
        .context(|| format!("the output of the job cannot be stored in Iceberg table {ident}"))?;
    let partition_spec = unbound_spec(ident, &iceberg_schema, partition_by)?;
    let creation = TableCreation::builder()
        .name(ident.name().to_string())
        .schema(iceberg_schema)
        .partition_spec(partition_spec)
        .format_version(layout.format_version.unwrap_or(FormatVersion::V2))
        .properties(HashMap::from([
            (
                TableProperties::PROPERTY_DEFAULT_FILE_FORMAT.to_string(),
                "parquet".to_string(),
            ),
            (
                "write.parquet.compression-codec".to_string(),
                "zstd".to_string(),
            ),
        ]))
        .build();
    match lakehouse
        .catalog()
        .create_table(ident.namespace(), creation)
        .await
    {
        Ok(_) => {
            tracing::info!(table = %ident, "created table");
            // SeaweedFS answers each of several concurrent creates of one
            // table with a new table of its own (its own uuid, at times its
            // own location) and keeps one of them: the table is the one the
            // catalog kept, wherever the files are to go.
            Ok((lakehouse.load_table(ident).await?, true))
        }
        // A concurrent writer may have created it first; catalogs say so
        // differently (SQLite: a unique-constraint error), so look.
        Err(e) => match lakehouse.try_load_table(ident).await? {
            Some(table) => Ok((table, false)),
            None => Err(e).context(|| format!("cannot create table {ident}")),
        },
    }
}

fn check_format_version(table: &Table, asked: Option<FormatVersion>) -> Result<()> {
    let version = table.metadata().format_version();
    match asked {
        Some(asked) if asked != version => Err(CatalogError::FormatVersion {
            table: table.identifier().clone(),
            version,
            asked,
        }),
        _ => Ok(()),
    }
}

/// A failed first write leaves no empty table behind, nor its first
/// metadata file: the table is purged, not only dropped.
pub(crate) async fn drop_if_still_empty(lakehouse: &Lakehouse, ident: &TableIdent) {
    if let Ok(table) = lakehouse.load_table(ident).await
        && table.metadata().snapshots().len() == 0
        && let Err(e) = lakehouse.catalog().purge_table(ident).await
    {
        tracing::warn!(table = %ident, error = %e, "could not drop the table created by a failed write");
    }
}

/// How data of this schema lands in the table (see [`fit_schema`]).
pub(crate) fn fit(table: &Table, data: &Schema, evolution: SchemaEvolution) -> Result<WriteSchema> {
    let ident = table.identifier();
    let written = fit_schema(ident, table.metadata(), data, evolution)?;
    let nulls: Vec<&str> = written
        .schema
        .as_struct()
        .fields()
        .iter()
        .zip(&written.sources)
        .filter(|(_, source)| source.is_none())
        .map(|(field, _)| field.name.as_str())
        .collect();
    if !nulls.is_empty() {
        tracing::info!(table = %ident, columns = nulls.join(", "), "columns missing from the data are written as nulls");
    }
    Ok(written)
}
