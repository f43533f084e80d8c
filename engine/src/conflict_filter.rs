//! A SQL predicate as the Iceberg filter that says which data files could
//! hold rows it matches, judged on their partition values and column
//! bounds: how `delete --where` and `replace_where` decide whether a file
//! committed while they ran conflicts with them
//! (`medallion_catalog::FilterOverwrite`). The translation only ever
//! widens: a part without an exact Iceberg form counts as "any file could
//! match", so a conflict is never missed, only sometimes seen where there
//! is none.

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, expr::InList};
use iceberg::expr::{Predicate, Reference};
use iceberg::spec::Datum;

/// True wherever `predicate` may be true, over columns of `schema`.
pub fn could_match(predicate: &Expr, schema: &DFSchema) -> Predicate {
    match predicate {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => could_match(left, schema).and(could_match(right, schema)),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => could_match(left, schema).or(could_match(right, schema)),
        _ => exact(predicate, schema).unwrap_or(Predicate::AlwaysTrue),
    }
}

/// `expr` itself, if every part of it has an exact Iceberg form.
fn exact(expr: &Expr, schema: &DFSchema) -> Option<Predicate> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => Some(exact(left, schema)?.and(exact(right, schema)?)),
            Operator::Or => Some(exact(left, schema)?.or(exact(right, schema)?)),
            _ => comparison(left, *op, right, schema),
        },
        Expr::Not(inner) => Some(exact(inner, schema)?.negate()),
        Expr::IsNull(inner) => Some(Reference::new(column(inner)?).is_null()),
        Expr::IsNotNull(inner) => Some(Reference::new(column(inner)?).is_not_null()),
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => {
            let within = comparison(expr, Operator::GtEq, low, schema)?.and(comparison(
                expr,
                Operator::LtEq,
                high,
                schema,
            )?);
            Some(if *negated { within.negate() } else { within })
        }
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => {
            let name = column(expr)?;
            let values = list
                .iter()
                .map(|value| datum(value, name, schema))
                .collect::<Option<Vec<_>>>()?;
            let reference = Reference::new(name);
            Some(if *negated {
                reference.is_not_in(values)
            } else {
                reference.is_in(values)
            })
        }
        Expr::Alias(alias) => exact(&alias.expr, schema),
        _ => None,
    }
}

/// `column op value` (either way round) as an Iceberg predicate.
fn comparison(left: &Expr, op: Operator, right: &Expr, schema: &DFSchema) -> Option<Predicate> {
    let (name, op, value) = match (column(left), column(right)) {
        (Some(name), None) => (name, op, right),
        (None, Some(name)) => (name, op.swap()?, left),
        _ => return None,
    };
    let value = datum(value, name, schema)?;
    let reference = Reference::new(name);
    Some(match op {
        Operator::Eq => reference.equal_to(value),
        Operator::NotEq => reference.not_equal_to(value),
        Operator::Lt => reference.less_than(value),
        Operator::LtEq => reference.less_than_or_equal_to(value),
        Operator::Gt => reference.greater_than(value),
        Operator::GtEq => reference.greater_than_or_equal_to(value),
        _ => return None,
    })
}

fn column(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(column) => Some(&column.name),
        _ => None,
    }
}

/// The value of a literal, or of a cast of one (`DATE '2024-06-02'`).
fn literal(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        Expr::Cast(cast) => literal(&cast.expr)?.cast_to(&cast.data_type).ok(),
        _ => None,
    }
}

/// A literal as a value of the column's own type, when it converts without
/// loss (`int_column < 5.5` has no exact form in whole numbers).
fn datum(expr: &Expr, column: &str, schema: &DFSchema) -> Option<Datum> {
    let value = &literal(expr)?;
    let field = schema.field_with_unqualified_name(column).ok()?;
    let cast = value.cast_to(field.data_type()).ok()?;
    if cast.cast_to(&value.data_type()).ok()? != *value {
        return None;
    }
    match cast {
        ScalarValue::Boolean(Some(v)) => Some(Datum::bool(v)),
        ScalarValue::Int32(Some(v)) => Some(Datum::int(v)),
        ScalarValue::Int64(Some(v)) => Some(Datum::long(v)),
        ScalarValue::Float32(Some(v)) => Some(Datum::float(v)),
        ScalarValue::Float64(Some(v)) => Some(Datum::double(v)),
        ScalarValue::Utf8(Some(v))
        | ScalarValue::LargeUtf8(Some(v))
        | ScalarValue::Utf8View(Some(v)) => Some(Datum::string(v)),
        ScalarValue::Date32(Some(v)) => Some(Datum::date(v)),
        ScalarValue::TimestampMicrosecond(Some(v), zone) => match field.data_type() {
            DataType::Timestamp(TimeUnit::Microsecond, _) if zone.is_some() => {
                Some(Datum::timestamptz_micros(v))
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => Some(Datum::timestamp_micros(v)),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::prelude::SessionContext;

    use super::*;

    fn filter(sql: &str) -> String {
        let schema = DFSchema::try_from(Arc::new(Schema::new(vec![
            Field::new("key", DataType::Int64, false),
            Field::new("day", DataType::Date32, true),
            Field::new("name", DataType::Utf8, true),
        ])))
        .unwrap();
        let expr = SessionContext::new().parse_sql_expr(sql, &schema).unwrap();
        could_match(&expr, &schema).to_string()
    }

    #[test]
    fn comparisons_with_literals_become_bounds_checks() {
        assert_eq!(filter("key >= 5 AND key < 10"), "(key >= 5) AND (key < 10)");
        assert_eq!(filter("10 > key"), "key < 10");
        assert_eq!(filter("day = '2024-01-02'"), "day = 2024-01-02");
        assert_eq!(filter("day >= DATE '2024-01-02'"), "day >= 2024-01-02");
        assert_eq!(filter("name IN ('a', 'b')"), "name IN (\"a\", \"b\")");
    }

    #[test]
    fn a_part_without_an_exact_form_widens_to_any_file() {
        // The conjunct it can judge still narrows the files.
        assert_eq!(filter("key < 10 AND length(name) > 3"), "key < 10");
        assert_eq!(filter("key < 10 OR length(name) > 3"), "TRUE");
        assert_eq!(filter("NOT (key < 10 AND length(name) > 3)"), "TRUE");
        // 5.5 is no whole number: no exact bound on an integer column.
        assert_eq!(filter("key < 5.5"), "TRUE");
    }
}
