//! Each row checked against the declared columns (its values parsed into
//! the declared types; required, pattern, min and max) and, when it
//! passes, appended to the Arrow batch of the dataset's schema.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder,
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::compute::kernels::cast_utils::{Parser, parse_decimal};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use medallion_jobs::{Dataset, DatasetColumn};

/// A value parsed into its declared type.
#[derive(Clone, Copy)]
enum Value<'a> {
    Null,
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Boolean(bool),
    Utf8(&'a str),
    Date(i32),
    Timestamp(i64),
    Decimal(i128),
}

/// The rows that passed, as Arrow builders of the declared columns.
pub struct RowBuilder {
    schema: SchemaRef,
    columns: Vec<DatasetColumn>,
    builders: Vec<Builder>,
    rows: usize,
}

impl RowBuilder {
    pub fn new(dataset: &Dataset) -> Self {
        Self {
            schema: dataset.schema(),
            builders: dataset
                .columns
                .iter()
                .map(|c| Builder::new(&c.data_type))
                .collect(),
            columns: dataset.columns.clone(),
            rows: 0,
        }
    }

    /// Checks a row's values (in declared order) and appends it, or says
    /// what is wrong with it and leaves the batch as it was.
    pub fn push(&mut self, values: &[Option<Cow<'_, str>>]) -> Result<(), String> {
        let mut parsed = Vec::with_capacity(self.columns.len());
        for (column, value) in self.columns.iter().zip(values) {
            let value = check(column, value.as_deref())
                .map_err(|reason| format!("column `{}`: {reason}", column.name))?;
            parsed.push(value);
        }
        for (builder, value) in self.builders.iter_mut().zip(parsed) {
            builder.append(value);
        }
        self.rows += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    /// The rows so far as one batch; the builder starts empty again.
    pub fn finish(&mut self) -> RecordBatch {
        let arrays: Vec<ArrayRef> = self.builders.iter_mut().map(Builder::finish).collect();
        self.rows = 0;
        RecordBatch::try_new(self.schema.clone(), arrays)
            .expect("the builders follow the dataset's schema")
    }
}

/// One value against its column: parsed, then required, pattern, bounds.
fn check<'a>(column: &DatasetColumn, text: Option<&'a str>) -> Result<Value<'a>, String> {
    let is_string = column.data_type == DataType::Utf8;
    // An empty field is a null, but for a string, whose empty text is a value.
    let text = text.filter(|t| is_string || !t.trim().is_empty());
    let Some(text) = text else {
        return if column.required {
            Err("is required but empty".into())
        } else {
            Ok(Value::Null)
        };
    };
    if let Some(pattern) = &column.pattern
        && !pattern.is_match(text)
    {
        return Err(format!("`{text}` does not match the pattern `{pattern}`"));
    }
    let value = parse(
        &column.data_type,
        if is_string { text } else { text.trim() },
    )
    .ok_or_else(|| format!("`{text}` is not a valid {}", type_name(&column.data_type)))?;
    if let Some(number) = as_f64(value, &column.data_type) {
        if let Some(min) = column.min.filter(|min| number < *min) {
            return Err(format!("`{text}` is below the minimum {min}"));
        }
        if let Some(max) = column.max.filter(|max| number > *max) {
            return Err(format!("`{text}` is above the maximum {max}"));
        }
    }
    Ok(value)
}

/// The text as the type, exactly: `1.5` is not an integer, `1.234` not a
/// decimal(10,2).
fn parse<'a>(data_type: &DataType, text: &'a str) -> Option<Value<'a>> {
    Some(match data_type {
        DataType::Utf8 => Value::Utf8(text),
        DataType::Int32 => Value::Int32(text.parse().ok()?),
        DataType::Int64 => Value::Int64(text.parse().ok()?),
        DataType::Float32 => Value::Float32(text.parse().ok()?),
        DataType::Float64 => Value::Float64(text.parse().ok()?),
        DataType::Boolean => Value::Boolean(match text.to_ascii_lowercase().as_str() {
            "true" | "t" | "1" => true,
            "false" | "f" | "0" => false,
            _ => return None,
        }),
        DataType::Date32 => Value::Date(Date32Type::parse(text)?),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            Value::Timestamp(TimestampMicrosecondType::parse(text)?)
        }
        DataType::Decimal128(precision, scale) => {
            let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
            if decimals > *scale as usize {
                return None;
            }
            Value::Decimal(parse_decimal::<Decimal128Type>(text, *precision, *scale).ok()?)
        }
        _ => return None,
    })
}

fn as_f64(value: Value<'_>, data_type: &DataType) -> Option<f64> {
    match value {
        Value::Int32(v) => Some(v.into()),
        Value::Int64(v) => Some(v as f64),
        Value::Float32(v) => Some(v.into()),
        Value::Float64(v) => Some(v),
        Value::Decimal(v) => match data_type {
            DataType::Decimal128(_, scale) => Some(v as f64 / 10f64.powi((*scale).into())),
            _ => None,
        },
        _ => None,
    }
}

fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 => "string".into(),
        DataType::Int32 => "int32".into(),
        DataType::Int64 => "int64".into(),
        DataType::Float32 => "float32".into(),
        DataType::Float64 => "float64".into(),
        DataType::Boolean => "boolean (true or false)".into(),
        DataType::Date32 => "date (YYYY-MM-DD)".into(),
        DataType::Timestamp(..) => "timestamp (RFC 3339)".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        other => other.to_string(),
    }
}

/// An Arrow builder of one declared type.
enum Builder {
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
    Utf8(StringBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Decimal(Decimal128Builder),
}

impl Builder {
    /// The types `parse_type` knows; each has a builder.
    fn new(data_type: &DataType) -> Self {
        match data_type {
            DataType::Int32 => Self::Int32(Int32Builder::new()),
            DataType::Int64 => Self::Int64(Int64Builder::new()),
            DataType::Float32 => Self::Float32(Float32Builder::new()),
            DataType::Float64 => Self::Float64(Float64Builder::new()),
            DataType::Boolean => Self::Boolean(BooleanBuilder::new()),
            DataType::Date32 => Self::Date(Date32Builder::new()),
            DataType::Timestamp(_, zone) => {
                Self::Timestamp(TimestampMicrosecondBuilder::new().with_timezone_opt(zone.clone()))
            }
            DataType::Decimal128(p, s) => Self::Decimal(
                Decimal128Builder::new()
                    .with_precision_and_scale(*p, *s)
                    .expect("parse_type checked the precision"),
            ),
            _ => Self::Utf8(StringBuilder::new()),
        }
    }

    fn append(&mut self, value: Value<'_>) {
        match (self, value) {
            (Self::Int32(b), Value::Int32(v)) => b.append_value(v),
            (Self::Int64(b), Value::Int64(v)) => b.append_value(v),
            (Self::Float32(b), Value::Float32(v)) => b.append_value(v),
            (Self::Float64(b), Value::Float64(v)) => b.append_value(v),
            (Self::Boolean(b), Value::Boolean(v)) => b.append_value(v),
            (Self::Utf8(b), Value::Utf8(v)) => b.append_value(v),
            (Self::Date(b), Value::Date(v)) => b.append_value(v),
            (Self::Timestamp(b), Value::Timestamp(v)) => b.append_value(v),
            (Self::Decimal(b), Value::Decimal(v)) => b.append_value(v),
            (builder, _) => builder.append_null(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Boolean(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Decimal(b) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Decimal(b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orders() -> Dataset {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orders.yaml");
        std::fs::write(
            &path,
            "dataset: orders\nformats: [csv]\ncolumns:\n  - { name: id, type: int64, required: true }\n  - { name: status, type: string, pattern: \"^[FOP]$\" }\n  - { name: price, type: \"decimal(15,2)\", min: 0 }\n  - { name: day, type: date }\nfeeds: j.raw\n",
        )
        .unwrap();
        Dataset::load(&path).unwrap()
    }

    fn row<'a>(values: &[Option<&'a str>]) -> Vec<Option<Cow<'a, str>>> {
        values.iter().map(|v| v.map(Cow::Borrowed)).collect()
    }

    #[test]
    fn a_good_row_lands_in_the_declared_types() {
        let mut rows = RowBuilder::new(&orders());
        rows.push(&row(&[
            Some(" 7"),
            Some("F"),
            Some("12.50"),
            Some("1996-01-02"),
        ]))
        .unwrap();
        rows.push(&row(&[Some("8"), None, Some(""), None])).unwrap();
        let batch = rows.finish();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(batch.schema(), orders().schema());
        assert!(batch.column(2).is_null(1), "an empty decimal is null");
        assert_eq!(rows.len(), 0, "finishing starts a new batch");
    }

    #[test]
    fn each_broken_check_says_which_column_and_why() {
        let mut rows = RowBuilder::new(&orders());
        let reason =
            |values: &[Option<&str>], rows: &mut RowBuilder| rows.push(&row(values)).unwrap_err();
        assert_eq!(
            reason(&[None, None, None, None], &mut rows),
            "column `id`: is required but empty"
        );
        assert_eq!(
            reason(&[Some("1.5"), None, None, None], &mut rows),
            "column `id`: `1.5` is not a valid int64"
        );
        assert!(
            reason(&[Some("1"), Some("X"), None, None], &mut rows)
                .contains("does not match the pattern `^[FOP]$`")
        );
        assert_eq!(
            reason(&[Some("1"), None, Some("-0.01"), None], &mut rows),
            "column `price`: `-0.01` is below the minimum 0"
        );
        assert!(
            reason(&[Some("1"), None, Some("1.234"), None], &mut rows)
                .contains("is not a valid decimal(15,2)")
        );
        assert!(
            reason(&[Some("1"), None, None, Some("1996-13-40")], &mut rows)
                .contains("is not a valid date")
        );
        assert_eq!(rows.finish().num_rows(), 0, "a bad row appends nothing");
    }
}
