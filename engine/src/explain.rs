//! `medallion explain`: the physical plan a job would run now, against the
//! tables as they are, without running it. Distributed, the plan is cut
//! into stages: each with its tasks (one per worker it would occupy) and
//! their partitions, and the shuffle or broadcast between stages. The
//! workers are named, never contacted.

use anyhow::Result;
use datafusion::physical_plan::displayable;
use datafusion_distributed::display_plan_ascii;
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
        Ok(if job.runs_distributed(run) {
            display_plan_ascii(plan.as_ref(), false)
        } else {
            displayable(plan.as_ref()).indent(true).to_string()
        })
    }
}
