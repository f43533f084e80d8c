use std::collections::HashMap;

use datafusion::prelude::{DataFrame, SessionContext};

use crate::bronze::bronze_frame;
use crate::dedup::keep_latest;
use crate::error::{JobError, Result};
use crate::raw::RawFile;
use crate::spec::{JobSpec, StepKind};

/// What every job of one run shares.
#[derive(Debug, Clone)]
pub struct RunParameters {
    pub job_id: String,
    /// Taken once when the run starts (UTC, microseconds since the epoch).
    pub loaded_at_micros: i64,
}

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
            StepKind::Sql(sql) => ctx.sql(sql).await.map_err(|source| JobError::Plan {
                path: job.path.clone(),
                context: format!("job `{}` step {step_no}: the SQL does not plan", job.name),
                source,
            })?,
            StepKind::SqlFile(file) => {
                let path = job.sql_path(file);
                let sql = std::fs::read_to_string(&path).map_err(|source| JobError::Io {
                    path: path.clone(),
                    context: "cannot read the SQL file".into(),
                    source,
                })?;
                ctx.sql(&sql).await.map_err(|source| JobError::Plan {
                    path: path.clone(),
                    context: format!("job `{}` step {step_no}: the SQL does not plan", job.name),
                    source,
                })?
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
    last.ok_or_else(|| JobError::Spec {
        path: job.path.clone(),
        message: format!("job `{}` has no steps", job.name),
    })
}
