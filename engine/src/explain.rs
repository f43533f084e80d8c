//! `medallion explain`: the physical plan a job would run now, against the
//! tables as they are, without running it. Distributed, the plan is cut
//! into stages: each with its tasks (one per worker it would occupy) and
//! their partitions, and the shuffle or broadcast between stages, and where
//! the job's data files are written. The workers are named, and contacted
//! only by a dedup step, which looks up repeated keys as it is planned.

use anyhow::Result;
use datafusion::physical_plan::displayable;
use datafusion_distributed::{DistributedExec, display_plan_ascii};
use medallion_catalog::table_ident;
use medallion_jobs::{JobSpec, RunParameters};

use crate::engine::Engine;
use crate::execute::physical_plan;

impl Engine {
    /// The plan of one run of `job`, as text.
    pub async fn explain_job(&self, job: &JobSpec, run: &RunParameters) -> Result<String> {
        let ctx = self.session_for(job, run)?;
        let shard = job.shard(run)?;
        let target = self
            .lakehouse
            .try_load_table(&table_ident(&job.target.table)?)
            .await?;
        let inputs = self
            .register_inputs(&ctx, job, run, shard, target.as_ref())
            .await?;
        let plan = physical_plan(&ctx, job, &inputs.raw_files, run).await?;
        if !job.runs_distributed(run) {
            return Ok(displayable(plan.as_ref()).indent(true).to_string());
        }
        let table = &job.target.table;
        let writes = if !plan.as_any().is::<DistributedExec>() {
            format!(
                "Too small to split among the workers (one task per stage): this process runs \
                 it, writes {table} and commits."
            )
        } else if self.writes_on_workers(job, run, shard) {
            format!(
                "The last stage's tasks also write the data files of {table} (a \
                 DataFileWriteExec on top of the stage); this process commits them."
            )
        } else {
            format!(
                "The last stage's rows come back to this process, which writes {table} \
                 (replace_where and a merge's delete_when need the rows here) and commits."
            )
        };
        Ok(format!(
            "{}{writes}\n",
            display_plan_ascii(plan.as_ref(), false)
        ))
    }
}
