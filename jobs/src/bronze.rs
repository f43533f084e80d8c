use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::datasource::empty::EmptyTable;
use datafusion::functions::string::expr_fn::btrim;
use datafusion::prelude::{
    CsvReadOptions, DataFrame, Expr, JsonReadOptions, ParquetReadOptions, SessionContext, cast,
    ident, lit,
};

use crate::error::{JobError, Result};
use crate::plan::RunParameters;
use crate::spec::{BronzeStep, JobSpec, RawFormat};

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
/// cast (strings trimmed), plus `loaded_at`, `source_file` and `job_id`.
/// Files are read one by one so each row knows the file it came from.
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
        let mut exprs: Vec<Expr> = Vec::with_capacity(columns.len() + 3);
        for (column, data_type) in &columns {
            if available
                .index_of_column_by_name(None, &column.from)
                .is_none()
            {
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
            }
            let value = cast(ident(&column.from), data_type.clone());
            let value = if *data_type == DataType::Utf8 {
                btrim(vec![value])
            } else {
                value
            };
            exprs.push(value.alias(&column.name));
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
            Some(previous) => previous.union(frame).map_err(|source| JobError::Plan {
                path: job.path.clone(),
                context: format!(
                    "raw file {} does not line up with the files before it",
                    file.uri
                ),
                source,
            })?,
        });
    }
    union.ok_or_else(|| spec_error(format!("raw input `{}` has no files", step.from)))
}

/// The Arrow type of the `loaded_at` column.
pub fn loaded_at_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}
