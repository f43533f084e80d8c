//! A distributed job has its workers write the data files: its plan gains
//! a writer on top before it is cut into stages, so the last stage's tasks
//! encode the rows where they are computed and only the files'
//! descriptions come back. This process commits them in one snapshot
//! through the same commit protocol as every write (a re-plan on a newer
//! head, the job id that makes a re-run a no-op); a merge reads the new
//! files' keys back first. `replace_where` and a merge's `delete_when`
//! need the rows themselves here, so they write here.

use std::time::Instant;

use anyhow::{Context, Result};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use medallion_catalog::{Shard, table_ident};
use medallion_jobs::{JobSpec, RunParameters, TargetMode, plan_job};

use crate::distributed::{distribute, log_if_whole, plan_uncut, writing};
use crate::engine::Engine;
use crate::execute::{Inputs, Wrote, write_options};
use crate::sharded::Written;

impl Engine {
    /// Whether this run of `job` writes its data files on the workers.
    pub(crate) fn writes_on_workers(
        &self,
        job: &JobSpec,
        run: &RunParameters,
        shard: Option<Shard>,
    ) -> bool {
        let writes_rows = match job.target.mode {
            TargetMode::Merge => job.target.delete_when.is_none(),
            mode => mode.write_mode().is_some(),
        };
        job.runs_distributed(run)
            && !self.config.workers.is_empty()
            && writes_rows
            && job.target.replace_where.is_none()
            && shard.is_none()
    }

    /// Plans the job with its writers on top, runs it on the workers and
    /// commits the files they wrote.
    pub(crate) async fn write_on_workers(
        &self,
        ctx: &SessionContext,
        job: &JobSpec,
        run: &RunParameters,
        inputs: &Inputs,
    ) -> Result<Wrote> {
        let query = plan_job(ctx, job, &inputs.raw_files, run).await?;
        let plan = plan_uncut(ctx, query.logical_plan())
            .await
            .with_context(|| format!("job `{}`: cannot plan the query", job.name))?;
        let planned = Instant::now();
        let options = write_options(job, run, None, &inputs.read);
        let (schema, writers) = (plan.schema(), self.config.target_partitions);
        let target = table_ident(&job.target.table)?;
        let mut executed = None;
        let start = |files, file_io| {
            let cut = distribute(writing(plan.clone(), files, file_io, writers)?, ctx)?;
            log_if_whole(&job.name, &cut);
            executed = Some(cut.clone());
            execute_stream(cut, ctx.task_ctx())
        };
        let outcome = match job.target.mode.write_mode() {
            Some(mode) => {
                let write = self.lakehouse.write(target, mode).with_options(options);
                write.execute_elsewhere(schema, start).await?
            }
            None => {
                let merge = self.lakehouse.merge(target, job.target.keys.clone());
                merge
                    .with_options(options)
                    .execute_elsewhere(schema, start)
                    .await?
            }
        };
        Ok(Wrote {
            written: Written::Committed(outcome),
            plan: executed.unwrap_or(plan),
            planned,
        })
    }
}
