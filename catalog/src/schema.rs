use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use iceberg::TableIdent;

use crate::error::{CatalogError, Result};

/// Parses `layer.table` (or deeper namespaces) into a table identifier.
pub fn table_ident(name: &str) -> Result<TableIdent> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(CatalogError::Config(format!(
            "table name `{name}` must be `<namespace>.<table>`, e.g. `bronze.orders`"
        )));
    }
    TableIdent::from_strs(parts)
        .map_err(|e| CatalogError::Config(format!("bad table name `{name}`: {e}")))
}

/// The Arrow type an Iceberg table stores for a type a query may produce.
/// Iceberg has one string, one binary, microsecond timestamps and no small
/// integers, so the many physical Arrow encodings map onto those.
fn storage_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::BinaryView | DataType::LargeBinary => DataType::Binary,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 | DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Date64 => DataType::Date32,
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        }
        DataType::Dictionary(_, value) => storage_type(value),
        other => other.clone(),
    }
}

/// The schema a table gets for a query's output: storage types, every column
/// optional (nullability inferred by a planner is not a contract).
pub fn normalize_arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), storage_type(f.data_type()), true))
            .collect::<Vec<_>>(),
    ))
}

/// For every column of the table, the position of the query column that fills
/// it. Columns are matched by name; types must agree after normalisation.
pub(crate) fn column_mapping(
    table: &TableIdent,
    table_schema: &Schema,
    query_schema: &Schema,
) -> Result<Vec<usize>> {
    let mut problems = Vec::new();
    let mut mapping = Vec::with_capacity(table_schema.fields().len());
    for field in table_schema.fields() {
        match query_schema.index_of(field.name()) {
            Ok(index) => {
                let query_type = storage_type(query_schema.field(index).data_type());
                if &query_type != field.data_type() {
                    problems.push(format!(
                        "column `{}` is {} in the table but {} in the data",
                        field.name(),
                        field.data_type(),
                        query_type
                    ));
                }
                mapping.push(index);
            }
            Err(_) => problems.push(format!(
                "column `{}` is missing from the data",
                field.name()
            )),
        }
    }
    for field in query_schema.fields() {
        if table_schema.index_of(field.name()).is_err() {
            problems.push(format!("column `{}` is not in the table", field.name()));
        }
    }
    if problems.is_empty() {
        Ok(mapping)
    } else {
        Err(CatalogError::SchemaMismatch {
            table: table.clone(),
            detail: problems.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_and_large_strings_store_as_utf8() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Utf8View, false),
            Field::new("b", DataType::LargeUtf8, false),
            Field::new("c", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        ]);
        let normalized = normalize_arrow_schema(&schema);
        assert_eq!(normalized.field(0).data_type(), &DataType::Utf8);
        assert_eq!(normalized.field(1).data_type(), &DataType::Utf8);
        assert_eq!(
            normalized.field(2).data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert!(normalized.fields().iter().all(|f| f.is_nullable()));
    }

    #[test]
    fn mapping_names_every_difference() {
        let ident = table_ident("bronze.orders").unwrap();
        let table = Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]);
        let query = Schema::new(vec![
            Field::new("b", DataType::Utf8View, true),
            Field::new("a", DataType::Int64, true),
        ]);
        assert_eq!(column_mapping(&ident, &table, &query).unwrap(), vec![1, 0]);

        let drifted = Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("c", DataType::Utf8, true),
        ]);
        let err = column_mapping(&ident, &table, &drifted)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column `a` is Int64 in the table but Utf8 in the data"),
            "{err}"
        );
        assert!(err.contains("column `b` is missing"), "{err}");
        assert!(err.contains("column `c` is not in the table"), "{err}");
    }

    #[test]
    fn table_names_need_a_namespace() {
        assert!(table_ident("orders").is_err());
        assert_eq!(
            table_ident("gold.sales_dashboard").unwrap().name(),
            "sales_dashboard"
        );
    }
}
