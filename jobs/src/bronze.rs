//! The bronze step: raw files read, renamed, cast and trimmed, and stamped
//! with `loaded_at`, `source_file` and `job_id`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::datasource::empty::EmptyTable;
use datafusion::functions::string::expr_fn::btrim;
use datafusion::logical_expr::{LogicalPlan, Union};
use datafusion::prelude::{DataFrame, Expr, SessionContext, ident, lit};

use medallion_catalog::normalize_arrow_schema;

use crate::error::{JobError, Result};
use crate::exact_cast::ColumnCast;
use crate::raw::RawFile;
use crate::raw_scan::{FILE_COLUMN, Problem, RawGroup, RawScan, group_by_columns};
use crate::run::RunParameters;
use crate::spec::{BronzeStep, CastMode, ColumnSpec, JobSpec, UnlistedColumns};

/// The bronze columns the run stamps on every row.
pub const LOADED_AT: &str = "loaded_at";
pub const SOURCE_FILE: &str = "source_file";
pub const JOB_ID: &str = "job_id";

/// Reads every raw file and standardises it: the spec's columns renamed and
/// cast (strings trimmed, a value the type cannot hold exactly refused),
/// the file's other columns in snake_case (unless the step drops them),
/// plus `loaded_at`, `source_file` and `job_id`. Files with the same
/// columns are read as one scan, and the scans combined by column name: a
/// column some files lack is null in their rows. With no files
/// (validation), the frame is empty with the declared columns.
pub async fn bronze_frame(
    ctx: &SessionContext,
    job: &JobSpec,
    step: &BronzeStep,
    files: &[RawFile],
    run: &RunParameters,
) -> Result<DataFrame> {
    let plan_error = |context: String| {
        let path = job.path.clone();
        move |source| JobError::Plan {
            path,
            context: format!("job `{}`: {context}", job.name),
            source,
        }
    };
    let mut columns = Vec::with_capacity(step.columns.len());
    for column in &step.columns {
        let data_type = column
            .arrow_type()
            .map_err(|e| spec_error(job, format!("column `{}`: {e}", column.name)))?;
        columns.push((column, data_type));
    }
    if files.is_empty() {
        return declared_frame(ctx, &columns)
            .map_err(plan_error("cannot plan the bronze step".into()));
    }
    let state = ctx.state();
    let groups = group_by_columns(&state, files).await.map_err(|bad| match bad.problem {
        Problem::Unreadable(source) => plan_error(format!("cannot read raw file {}", bad.uri))(source),
        Problem::RepeatedColumn(column) => spec_error(
            job,
            format!(
                "raw file {} has two columns named `{column}`, and only one of them would be loaded; fix the file so that every column has its own name",
                bad.uri
            ),
        ),
    })?;
    let declared: HashMap<String, String> = step
        .columns
        .iter()
        .map(|c| (c.from.clone(), c.data_type.clone()))
        .collect();
    let declared = Arc::new(declared);
    let mut plans = Vec::with_capacity(groups.len());
    for group in &groups {
        let scan = RawScan::new(&state, group, declared.clone());
        let frame = standardised(ctx, job, step, &columns, group, scan, run)?;
        plans.push(Arc::new(frame.into_unoptimized_plan()));
    }
    if plans.len() == 1 {
        return Ok(DataFrame::new(state, Arc::unwrap_or_clone(plans.remove(0))));
    }
    // One union of all groups at once: a chain of two-way unions re-derives
    // its schema at every level.
    let union = Union::try_new_by_name(plans).map_err(plan_error(format!(
        "the columns of the raw files of `{}` do not combine by name",
        step.from
    )))?;
    Ok(DataFrame::new(state, LogicalPlan::Union(union)))
}

/// Validation without the raw files: the declared columns stand in.
fn declared_frame(
    ctx: &SessionContext,
    columns: &[(&ColumnSpec, DataType)],
) -> datafusion::error::Result<DataFrame> {
    let mut fields: Vec<Field> = columns
        .iter()
        .map(|(column, data_type)| Field::new(&column.name, data_type.clone(), true))
        .collect();
    fields.push(Field::new(LOADED_AT, loaded_at_type(), true));
    fields.push(Field::new(SOURCE_FILE, DataType::Utf8, true));
    fields.push(Field::new(JOB_ID, DataType::Utf8, true));
    ctx.read_table(Arc::new(EmptyTable::new(Arc::new(Schema::new(fields)))))
}

fn spec_error(job: &JobSpec, message: String) -> JobError {
    JobError::Spec {
        path: job.path.clone(),
        message: format!("job `{}`: {message}", job.name),
    }
}

/// One group of raw files, standardised: see [`bronze_frame`].
fn standardised(
    ctx: &SessionContext,
    job: &JobSpec,
    step: &BronzeStep,
    columns: &[(&ColumnSpec, DataType)],
    group: &RawGroup,
    scan: datafusion::error::Result<RawScan>,
    run: &RunParameters,
) -> Result<DataFrame> {
    let files = match group.files.len() {
        1 => group.files[0].uri.clone(),
        n => format!(
            "{} (and {} more files with its columns)",
            group.files[0].uri,
            n - 1
        ),
    };
    let plan_error = |source| JobError::Plan {
        path: job.path.clone(),
        context: format!("job `{}`: cannot read raw file {files}", job.name),
        source,
    };
    let scan = scan.map_err(plan_error)?;
    let raw = ctx.read_table(Arc::new(scan)).map_err(plan_error)?;
    let available = &group.columns;
    let mut exprs: Vec<Expr> = Vec::with_capacity(available.fields().len() + 3);
    for (column, data_type) in columns {
        exprs.push(declared_column(job, column, data_type, available, &files)?);
    }
    if step.unlisted_columns == UnlistedColumns::Keep {
        exprs.extend(unlisted_columns(step, available, &files).map_err(|e| spec_error(job, e))?);
    }
    exprs.push(
        lit(ScalarValue::TimestampMicrosecond(
            Some(run.loaded_at_micros),
            None,
        ))
        .alias(LOADED_AT),
    );
    exprs.push(ident(FILE_COLUMN).alias(SOURCE_FILE));
    exprs.push(lit(run.job_id.as_str()).alias(JOB_ID));
    raw.select(exprs).map_err(|source| JobError::Plan {
        path: job.path.clone(),
        context: format!("job `{}`: cannot standardise raw file {files}", job.name),
        source,
    })
}

/// A column of the step's `columns`, read from `raw` (of `files`).
fn declared_column(
    job: &JobSpec,
    column: &ColumnSpec,
    data_type: &DataType,
    raw: &Schema,
    files: &str,
) -> Result<Expr> {
    let Ok(field) = raw.field_with_name(&column.from) else {
        let names: Vec<&str> = raw.fields().iter().map(|f| f.name().as_str()).collect();
        let message = format!(
            "raw column `{}` (for `{}`) is not in {files}; its columns are: {}",
            column.from,
            column.name,
            names.join(", ")
        );
        return Err(spec_error(job, message));
    };
    let cast = ColumnCast {
        raw_name: &column.from,
        type_name: &column.data_type,
        lossy: column.cast == CastMode::Lossy,
    };
    let value = cast.expr(
        ident(&column.from),
        field.data_type(),
        data_type,
        ident(FILE_COLUMN),
    );
    Ok(trimmed(value, data_type).alias(&column.name))
}

/// Strings are stored without surrounding blanks.
fn trimmed(value: Expr, data_type: &DataType) -> Expr {
    if *data_type == DataType::Utf8 {
        btrim(vec![value])
    } else {
        value
    }
}

/// The raw columns no entry of `columns` reads, under their snake_case
/// names, in the types a table stores (strings trimmed).
fn unlisted_columns(
    step: &BronzeStep,
    raw: &Schema,
    files: &str,
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
                "raw column `{raw_name}` of {files} has no letter or digit to name a column by; {fix}"
            ));
        }
        if let Some(other) = names.insert(name.clone(), format!("raw column `{raw_name}`")) {
            return Err(format!(
                "raw column `{raw_name}` of {files} would be stored as `{name}`, the name of {other}; {fix}"
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
            ident(FILE_COLUMN),
        );
        exprs.push(trimmed(value, stored.data_type()).alias(name));
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
