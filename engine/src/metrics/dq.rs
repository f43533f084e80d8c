//! Data quality as metrics: the rows each check rejected, read back from
//! the dq_report table a run wrote (`table_name`, `check_name`,
//! `rejected_rows`, as the reference pipeline's `silver.dq_report`).

use anyhow::Result;
use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};

use super::names::DQ_REJECTED;
use super::registry::Registry;
use crate::engine::{AsOf, Engine};
use crate::report::{JobStatus, RunReport};

/// Records the checks of every `*.dq_report` table the run committed. A
/// report that cannot be read is a warning: the run's data is committed.
pub async fn record_dq(registry: &Registry, engine: &Engine, report: &RunReport) {
    let reports = report
        .jobs
        .iter()
        .filter(|j| j.status != JobStatus::Failed && j.table.ends_with(".dq_report"));
    for job in reports {
        match rejections(engine, &job.table).await {
            Ok(rows) => {
                for (table, check, rejected) in rows {
                    let labels = [
                        ("job", job.job.as_str()),
                        ("table", &table),
                        ("check", &check),
                    ];
                    registry.set(&DQ_REJECTED, &labels, rejected);
                }
            }
            Err(e) => tracing::warn!(
                table = %job.table,
                "no dq metrics: cannot read {}: {}",
                job.table,
                crate::errors::one_line(&e)
            ),
        }
    }
}

/// `(table_name, check_name, rejected_rows)` of each row of `table`.
async fn rejections(engine: &Engine, table: &str) -> Result<Vec<(String, String, f64)>> {
    let sql = format!("SELECT table_name, check_name, rejected_rows FROM {table}");
    let ctx = engine.session_for_query(&sql, &AsOf::default()).await?;
    let mut rows = Vec::new();
    for batch in ctx.sql(&sql).await?.collect().await? {
        let text = |i: usize| cast(batch.column(i), &DataType::Utf8);
        let (tables, checks) = (text(0)?, text(1)?);
        let rejected = cast(batch.column(2), &DataType::Float64)?;
        let (tables, checks) = (tables.as_string::<i32>(), checks.as_string::<i32>());
        let rejected = rejected.as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            if tables.is_valid(i) && checks.is_valid(i) && rejected.is_valid(i) {
                rows.push((
                    tables.value(i).to_string(),
                    checks.value(i).to_string(),
                    rejected.value(i),
                ));
            }
        }
    }
    Ok(rows)
}
