//! Partitioned tables: the partition fields job specs name, such as
//! `day(order_date)` or `bucket(16, customer_key)`, as Iceberg transforms.

use arrow::datatypes::Schema as ArrowSchema;
use iceberg::TableIdent;
use iceberg::arrow::arrow_type_to_type;
use iceberg::spec::{PartitionSpec, Schema, Transform, Type, UnboundPartitionSpec};

use crate::error::{CatalogError, Result};
use crate::schema::storage_type;

/// One partition field: a transform of a source column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionField {
    pub column: String,
    pub transform: Transform,
}

impl PartitionField {
    /// Parses `column`, `year(c)`, `month(c)`, `day(c)`, `hour(c)`,
    /// `bucket(N, c)` or `truncate(W, c)`.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let text = text.trim();
        let invalid = || {
            format!(
                "`{text}` is not a partition field; use a column name, year(c), month(c), day(c), \
                 hour(c), bucket(N, c) or truncate(W, c)"
            )
        };
        let Some((function, rest)) = text.split_once('(') else {
            if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == ')') {
                return Err(invalid());
            }
            return Ok(Self {
                column: text.to_string(),
                transform: Transform::Identity,
            });
        };
        let arguments: Vec<&str> = rest
            .strip_suffix(')')
            .ok_or_else(invalid)?
            .split(',')
            .map(str::trim)
            .collect();
        let number = |n: &str| n.parse::<u32>().ok().filter(|&n| n > 0).ok_or_else(invalid);
        let (transform, column) = match (
            function.trim().to_ascii_lowercase().as_str(),
            arguments.as_slice(),
        ) {
            ("year", [c]) => (Transform::Year, *c),
            ("month", [c]) => (Transform::Month, *c),
            ("day", [c]) => (Transform::Day, *c),
            ("hour", [c]) => (Transform::Hour, *c),
            ("bucket", [n, c]) => (Transform::Bucket(number(n)?), *c),
            ("truncate", [w, c]) => (Transform::Truncate(number(w)?), *c),
            _ => return Err(invalid()),
        };
        if column.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            column: column.to_string(),
            transform,
        })
    }

    /// Whether this field fits the output of a job, as its table will store
    /// it: the column is there and the transform takes its type, by
    /// Iceberg's own rule. Says what does not fit otherwise.
    pub fn check_output(&self, output: &ArrowSchema) -> std::result::Result<(), String> {
        let Ok(column) = output.field_with_name(&self.column) else {
            let names: Vec<&str> = output.fields().iter().map(|f| f.name().as_str()).collect();
            return Err(format!(
                "the output has no column `{}`; its columns are {}",
                self.column,
                names.join(", ")
            ));
        };
        let stored = arrow_type_to_type(&storage_type(column.data_type())).map_err(|e| {
            format!(
                "column `{}` is {}, which Iceberg cannot store: {}",
                self.column,
                column.data_type(),
                e.message()
            )
        })?;
        self.takes(&stored)
    }

    /// Iceberg's rule: `month` takes dates and timestamps, `truncate` no
    /// dates, `bucket` no floats, and so on.
    fn takes(&self, column_type: &Type) -> std::result::Result<(), String> {
        match self.transform.result_type(column_type) {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "column `{}` is {column_type}, and {}; partition by another column, or a \
                 transform that takes {column_type}",
                self.column,
                e.message()
            )),
        }
    }

    /// The partition field's name, as Spark and PyIceberg name it.
    fn name(&self) -> String {
        let column = &self.column;
        match self.transform {
            Transform::Identity => column.clone(),
            Transform::Year => format!("{column}_year"),
            Transform::Month => format!("{column}_month"),
            Transform::Day => format!("{column}_day"),
            Transform::Hour => format!("{column}_hour"),
            Transform::Bucket(_) => format!("{column}_bucket"),
            Transform::Truncate(_) => format!("{column}_trunc"),
            Transform::Void | Transform::Unknown => format!("{column}_void"),
        }
    }
}

/// The partition spec of a new table with `schema`.
pub(crate) fn unbound_spec(
    ident: &TableIdent,
    schema: &Schema,
    fields: &[PartitionField],
) -> Result<UnboundPartitionSpec> {
    let mut builder = UnboundPartitionSpec::builder();
    for field in fields {
        let source =
            schema
                .field_by_name(&field.column)
                .ok_or_else(|| CatalogError::SchemaMismatch {
                    table: ident.clone(),
                    detail: format!("partition column `{}` is not in the data", field.column),
                })?;
        field
            .takes(&source.field_type)
            .map_err(|detail| CatalogError::SchemaMismatch {
                table: ident.clone(),
                detail,
            })?;
        builder = builder
            .add_partition_field(source.id, field.name(), field.transform)
            .map_err(|e| CatalogError::SchemaMismatch {
                table: ident.clone(),
                detail: format!("cannot partition by {}: {e}", field.column),
            })?;
    }
    Ok(builder.build())
}

/// An existing table must be partitioned as the job says; medallion does
/// not evolve partition specs.
pub(crate) fn check_spec(
    ident: &TableIdent,
    schema: &Schema,
    spec: &PartitionSpec,
    wanted: &[PartitionField],
) -> Result<()> {
    let actual: Vec<PartitionField> = spec
        .fields()
        .iter()
        .map(|f| PartitionField {
            column: schema
                .name_by_field_id(f.source_id)
                .unwrap_or("?")
                .to_string(),
            transform: f.transform,
        })
        .collect();
    if actual == wanted {
        return Ok(());
    }
    let show = |fields: &[PartitionField]| {
        if fields.is_empty() {
            "nothing".to_string()
        } else {
            fields
                .iter()
                .map(|f| format!("{}({})", f.transform, f.column))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    Err(CatalogError::SchemaMismatch {
        table: ident.clone(),
        detail: format!(
            "the table is partitioned by {} but the job by {}; changing a table's partitioning is not supported yet",
            show(&actual),
            show(wanted)
        ),
    })
}

#[cfg(test)]
mod tests {
    use arrow::datatypes::{DataType, Field};
    use iceberg::arrow::arrow_schema_to_schema_auto_assign_ids;

    use super::*;

    #[test]
    fn new_tables_and_job_outputs_take_the_transforms_iceberg_allows() {
        let output = ArrowSchema::new(vec![
            Field::new("order_key", DataType::Int64, true),
            Field::new("order_date", DataType::Date32, true),
        ]);
        let schema = arrow_schema_to_schema_auto_assign_ids(&output).unwrap();
        let ident = TableIdent::from_strs(["gold", "x"]).unwrap();
        for (text, fits) in [
            ("month(order_date)", true),
            ("bucket(4, order_key)", true),
            ("month(order_key)", false),
            ("truncate(4, order_date)", false),
        ] {
            let field = PartitionField::parse(text).unwrap();
            assert_eq!(field.check_output(&output).is_ok(), fits, "{text}");
            let spec = unbound_spec(&ident, &schema, std::slice::from_ref(&field));
            assert_eq!(spec.is_ok(), fits, "{text}");
        }
    }

    #[test]
    fn partition_fields_parse_like_spark_writes_them() {
        let parsed = |t: &str| PartitionField::parse(t).unwrap();
        assert_eq!(parsed("region").transform, Transform::Identity);
        assert_eq!(parsed("day(order_date)").transform, Transform::Day);
        assert_eq!(parsed("day(order_date)").column, "order_date");
        assert_eq!(
            parsed("bucket(16, customer_key)").transform,
            Transform::Bucket(16)
        );
        assert_eq!(parsed("truncate(4,name)").transform, Transform::Truncate(4));
        assert_eq!(
            parsed("bucket(16, customer_key)").name(),
            "customer_key_bucket"
        );
        for bad in [
            "",
            "day()",
            "bucket(x, c)",
            "bucket(0, c)",
            "week(d)",
            "day(d",
            "a b",
        ] {
            assert!(PartitionField::parse(bad).is_err(), "{bad}");
        }
    }
}
