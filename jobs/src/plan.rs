//! `plan_job`: one job's steps turned into a DataFusion plan of its output.

use std::collections::HashMap;
use std::path::Path;

use datafusion::prelude::{DataFrame, SessionContext};

use crate::bronze::bronze_frame;
use crate::dedup::keep_latest;
use crate::error::{JobError, Result};
use crate::query::{QueryError, plan_query};
use crate::raw::RawFile;
use crate::run::RunParameters;
use crate::spec::{JobSpec, StepKind};

/// Builds the plan of one job. The job's input tables must already be
/// registered in `ctx` under their names; raw inputs come resolved to files.
/// Named steps become views that later steps can query.
pub async fn plan_job(
    ctx: &SessionContext,
    job: &JobSpec,
    raw_files: &HashMap<String, Vec<RawFile>>,
    run: &RunParameters,
) -> Result<DataFrame> {
    let mut last = None;
    for (index, step) in job.steps.iter().enumerate() {
        let step_no = index + 1;
        let frame = match &step.kind {
            StepKind::Bronze(bronze) => {
                let files = raw_files
                    .get(&bronze.from)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                bronze_frame(ctx, job, bronze, files, run).await?
            }
            StepKind::Sql(sql) => sql_step(ctx, job, step_no, &job.path, sql).await?,
            StepKind::SqlFile(file) => {
                let path = job.sql_path(file);
                let sql = std::fs::read_to_string(&path).map_err(|source| JobError::Io {
                    path: path.clone(),
                    context: "cannot read the SQL file".into(),
                    source,
                })?;
                sql_step(ctx, job, step_no, &path, &sql).await?
            }
            StepKind::Dedup(dedup) => {
                keep_latest(ctx, dedup)
                    .await
                    .map_err(|source| JobError::Plan {
                        path: job.path.clone(),
                        context: format!(
                            "job `{}` step {step_no}: dedup on {}",
                            job.name,
                            dedup.keys.join(", ")
                        ),
                        source,
                    })?
            }
        };
        if let Some(name) = &step.name {
            ctx.register_table(name.as_str(), frame.clone().into_view())
                .map_err(|source| JobError::Plan {
                    path: job.path.clone(),
                    context: format!(
                        "job `{}` step {step_no}: cannot name the step `{name}`",
                        job.name
                    ),
                    source,
                })?;
        }
        last = Some(frame);
    }
    let output = last.ok_or_else(|| JobError::Spec {
        path: job.path.clone(),
        message: format!("job `{}` has no steps", job.name),
    })?;
    // Here rather than when the table is created, so `validate` and `run`
    // say the same, and say it before anything runs.
    job.check_partitioning(output.schema().as_arrow())?;
    Ok(output)
}

/// A SQL step, read from `path`: a query, whose rows the job writes to its
/// target; a step never changes a table or writes a file itself.
async fn sql_step(
    ctx: &SessionContext,
    job: &JobSpec,
    step_no: usize,
    path: &Path,
    sql: &str,
) -> Result<DataFrame> {
    plan_query(ctx, sql).await.map_err(|e| match e {
        QueryError::NotAQuery(refused) => JobError::Spec {
            path: path.to_path_buf(),
            message: format!(
                "job `{}` step {step_no}: {} is not a query; a SQL step is a SELECT (or WITH, \
                 VALUES) and the job writes its rows to `target.table`",
                job.name, refused.statement
            ),
        },
        QueryError::Plan(source) => JobError::Plan {
            path: path.to_path_buf(),
            context: format!("job `{}` step {step_no}: the SQL does not plan", job.name),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sql_step_that_is_not_a_query_is_refused_before_it_runs() {
        let dir = tempfile::tempdir().unwrap();
        let copied = dir.path().join("copied.csv");
        let run = RunParameters {
            job_id: "t".into(),
            loaded_at_micros: 0,
            raw_inputs: Default::default(),
            ..Default::default()
        };
        for (statement, says) in [
            (
                format!("COPY (SELECT 1 AS x) TO '{}'", copied.display()),
                "COPY",
            ),
            ("CREATE VIEW v AS SELECT 1 AS x".into(), "CREATE VIEW"),
            ("DROP TABLE t".into(), "DROP TABLE"),
            ("SET datafusion.execution.batch_size = 1".into(), "SET"),
        ] {
            let path = dir.path().join("job.yaml");
            std::fs::write(
                &path,
                format!("name: j\nsteps:\n  - sql: \"{statement}\"\ntarget: {{ table: gold.x, mode: overwrite }}\n"),
            )
            .unwrap();
            let job = JobSpec::load(&path).unwrap();
            let ctx = SessionContext::new();
            let err = plan_job(&ctx, &job, &HashMap::new(), &run)
                .await
                .map(|_| ())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(says) && err.contains("not a query"),
                "{statement}: {err}"
            );
            assert!(
                ctx.table_exist("v").is_ok_and(|exists| !exists),
                "{statement} ran"
            );
        }
        assert!(!copied.exists());
    }
}
