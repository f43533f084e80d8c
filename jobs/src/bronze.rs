use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::datasource::empty::EmptyTable;
use datafusion::functions::string::expr_fn::btrim;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, Expr, JsonReadOptions, ParquetReadOptions, SessionContext, ident,
    lit,
};

use medallion_catalog::normalize_arrow_schema;

use crate::error::{JobError, Result};
use crate::exact_cast::ColumnCast;
use crate::plan::RunParameters;
use crate::spec::{BronzeStep, CastMode, JobSpec, RawFormat, UnlistedColumns};

/// One raw object, by its full URI (`s3://raw/...`, `file:///...`).
#[derive(Debug, Clone)]
pub struct RawFile {
    pub uri: String,
    pub format: RawFormat,
}

/// The bronze columns the run stamps on every row.
pub const LOADED_AT: &str = "loaded_at";
pub const SOURCE_FILE: &str = "source_file";
pub const JOB_ID: &str = "job_id";

/// Reads every raw file and standardises it: the spec's columns renamed and
/// cast (strings trimmed, a value the type cannot hold exactly refused),
/// the file's other columns in snake_case (unless
/// the step drops them), plus `loaded_at`, `source_file` and `job_id`.
/// Files are read one by one so each row knows the file it came from, and
/// combined by column name: a column some files lack is null in their rows.
/// With no files (validation), the frame is empty with the declared columns.
pub async fn bronze_frame(
    ctx: &SessionContext,
    job: &JobSpec,
    step: &BronzeStep,
    files: &[RawFile],
    run: &RunParameters,
) -> Result<DataFrame> {
    let spec_error = |message: String| JobError::Spec {
        path: job.path.clone(),
        message: format!("job `{}`: {message}", job.name),
    };
    let mut columns = Vec::with_capacity(step.columns.len());
    for column in &step.columns {
        let data_type = column
            .arrow_type()
            .map_err(|e| spec_error(format!("column `{}`: {e}", column.name)))?;
        columns.push((column, data_type));
    }
    if files.is_empty() {
        // Validation without the raw files: the declared columns stand in.
        let mut fields: Vec<Field> = columns
            .iter()
            .map(|(column, data_type)| Field::new(&column.name, data_type.clone(), true))
            .collect();
        fields.push(Field::new(LOADED_AT, loaded_at_type(), true));
        fields.push(Field::new(SOURCE_FILE, DataType::Utf8, true));
        fields.push(Field::new(JOB_ID, DataType::Utf8, true));
        let empty = EmptyTable::new(Arc::new(Schema::new(fields)));
        return ctx
            .read_table(Arc::new(empty))
            .map_err(|source| JobError::Plan {
                path: job.path.clone(),
                context: format!("job `{}`: cannot plan the bronze step", job.name),
                source,
            });
    }
    let mut union: Option<DataFrame> = None;
    for file in files {
        let read_error = |source| JobError::Plan {
            path: job.path.clone(),
            context: format!("cannot read raw file {}", file.uri),
            source,
        };
        let raw = match file.format {
            RawFormat::Parquet => {
                ctx.read_parquet(file.uri.as_str(), ParquetReadOptions::default())
                    .await
            }
            RawFormat::Csv => {
                ctx.read_csv(file.uri.as_str(), CsvReadOptions::new().has_header(true))
                    .await
            }
            RawFormat::Json => {
                ctx.read_json(file.uri.as_str(), JsonReadOptions::default())
                    .await
            }
        }
        .map_err(read_error)?;
        let available = raw.schema().clone();
        let mut exprs: Vec<Expr> = Vec::with_capacity(available.fields().len() + 3);
        for (column, data_type) in &columns {
            let Some(index) = available.index_of_column_by_name(None, &column.from) else {
                let names: Vec<&str> = available
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                return Err(spec_error(format!(
                    "raw column `{}` (for `{}`) is not in {}; its columns are: {}",
                    column.from,
                    column.name,
                    file.uri,
                    names.join(", ")
                )));
            };
            let cast = ColumnCast {
                raw_name: &column.from,
                type_name: &column.data_type,
                lossy: column.cast == CastMode::Lossy,
            };
            let value = cast.expr(
                ident(&column.from),
                available.field(index).data_type(),
                data_type,
                lit(file.uri.as_str()),
            );
            let value = if *data_type == DataType::Utf8 {
                btrim(vec![value])
            } else {
                value
            };
            exprs.push(value.alias(&column.name));
        }
        if step.unlisted_columns == UnlistedColumns::Keep {
            exprs.extend(
                unlisted_columns(step, available.as_arrow(), &file.uri).map_err(spec_error)?,
            );
        }
        exprs.push(
            lit(ScalarValue::TimestampMicrosecond(
                Some(run.loaded_at_micros),
                None,
            ))
            .alias(LOADED_AT),
        );
        exprs.push(lit(file.uri.as_str()).alias(SOURCE_FILE));
        exprs.push(lit(run.job_id.as_str()).alias(JOB_ID));
        let frame = raw.select(exprs).map_err(|source| JobError::Plan {
            path: job.path.clone(),
            context: format!("cannot standardise raw file {}", file.uri),
            source,
        })?;
        union = Some(match union {
            None => frame,
            Some(previous) => previous
                .union_by_name(frame)
                .map_err(|source| JobError::Plan {
                    path: job.path.clone(),
                    context: format!(
                        "the columns of raw file {} do not combine with those of the files before it",
                        file.uri
                    ),
                    source,
                })?,
        });
    }
    union.ok_or_else(|| spec_error(format!("raw input `{}` has no files", step.from)))
}

/// The raw columns no entry of `columns` reads, under their snake_case
/// names, in the types a table stores (strings trimmed).
fn unlisted_columns(
    step: &BronzeStep,
    raw: &Schema,
    uri: &str,
) -> std::result::Result<Vec<Expr>, String> {
    let mut names: HashMap<String, String> = step
        .columns
        .iter()
        .map(|c| (c.name.clone(), format!("column `{}` of the step", c.name)))
        .chain(
            [LOADED_AT, SOURCE_FILE, JOB_ID].map(|n| (n.to_string(), format!("the `{n}` stamp"))),
        )
        .collect();
    let stored = normalize_arrow_schema(raw);
    let mut exprs = Vec::new();
    for (field, stored) in raw.fields().iter().zip(stored.fields()) {
        let raw_name = field.name();
        if step.columns.iter().any(|c| &c.from == raw_name) {
            continue;
        }
        let name = snake_case(raw_name);
        let fix = "declare it in the step's `columns`, or set `unlisted_columns: drop`";
        if name.is_empty() {
            return Err(format!(
                "raw column `{raw_name}` of {uri} has no letter or digit to name a column by; {fix}"
            ));
        }
        if let Some(other) = names.insert(name.clone(), format!("raw column `{raw_name}`")) {
            return Err(format!(
                "raw column `{raw_name}` of {uri} would be stored as `{name}`, the name of {other}; {fix}"
            ));
        }
        let type_name = stored.data_type().to_string();
        let cast = ColumnCast {
            raw_name,
            type_name: &type_name,
            lossy: false,
        };
        let value = cast.expr(
            ident(raw_name),
            field.data_type(),
            stored.data_type(),
            lit(uri),
        );
        let value = if *stored.data_type() == DataType::Utf8 {
            btrim(vec![value])
        } else {
            value
        };
        exprs.push(value.alias(name));
    }
    Ok(exprs)
}

/// `OrderDate`, `order date` and `orderDate` all become `order_date`; an
/// abbreviation stays one word (`HTTPStatus` is `http_status`).
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_uppercase() && i > 0 && !out.ends_with('_') {
            let previous = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if previous.is_lowercase()
                || previous.is_ascii_digit()
                || (previous.is_uppercase() && next_is_lower)
            {
                out.push('_');
            }
        }
        out.extend(c.to_lowercase());
    }
    out.trim_end_matches('_').to_string()
}

/// The Arrow type of the `loaded_at` column.
pub fn loaded_at_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_names_become_snake_case() {
        for (raw, stored) in [
            ("o_orderkey", "o_orderkey"),
            ("OrderDate", "order_date"),
            ("orderDate", "order_date"),
            (" Unit Price ", "unit_price"),
            ("HTTPStatus", "http_status"),
            ("Address2Line", "address2_line"),
            ("coupon-code", "coupon_code"),
            ("???", ""),
        ] {
            assert_eq!(snake_case(raw), stored, "{raw}");
        }
    }
}
