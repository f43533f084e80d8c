//! A distributed job that appends or overwrites has its workers write the
//! data files: its plan gains a writer on top before it is cut into stages,
//! so the last stage's tasks encode the rows where they are computed and
//! only the files' descriptions come back. This process commits them in
//! one snapshot through the same commit protocol as every write (a re-plan
//! on a newer head, the job id that makes a re-run a no-op). Merges and
//! `replace_where` read the table's own rows here, so they write here.

use std::time::Instant;

use anyhow::{Context, Result};
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionContext;
use medallion_catalog::{Shard, table_ident};
use medallion_jobs::{JobSpec, RunParameters, plan_job};

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
        job.runs_distributed(run)
            && !self.config.workers.is_empty()
            && job.target.mode.write_mode().is_some()
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
        let mode = job.target.mode.write_mode().expect("a job writing rows");
        let options = write_options(job, run, None, &inputs.read);
        let writers = self.config.target_partitions;
        let mut executed = None;
        let outcome = self
            .lakehouse
            .write(table_ident(&job.target.table)?, mode)
            .with_options(options)
            .execute_elsewhere(plan.schema(), |target, file_io| {
                let cut = distribute(writing(plan.clone(), target, file_io, writers)?, ctx)?;
                log_if_whole(&job.name, &cut);
                executed = Some(cut.clone());
                execute_stream(cut, ctx.task_ctx())
            })
            .await?;
        Ok(Wrote {
            written: Written::Committed(outcome),
            plan: executed.unwrap_or(plan),
            planned,
        })
    }
}
