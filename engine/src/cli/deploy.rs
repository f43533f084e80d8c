//! `deploy`: pipelines as Kubernetes Jobs through GitOps. It needs no
//! lakehouse, only the pipeline, which it learns through the callback here.

use anyhow::Result;
use medallion_deploy::{DeployCommand, JobSource, PipelineSource};
use medallion_jobs::Pipeline;

pub async fn deploy(command: DeployCommand) -> Result<()> {
    medallion_deploy::cli::run(command, deploy_pipeline).await
}

/// A pipeline as `medallion deploy` needs it: each job's name, target
/// table, input tables and spec file, in pipeline order. `listen --mode
/// gitops` submits through it too.
pub(super) fn deploy_pipeline(path: &std::path::Path, only: &[String]) -> Result<PipelineSource> {
    let pipeline = Pipeline::load(path)?;
    let jobs = pipeline
        .select(only)?
        .into_iter()
        .map(|job| JobSource {
            name: job.name.clone(),
            target_table: job.target.table.clone(),
            reads: job.input_tables().map(str::to_string).collect(),
            spec_path: job.path.clone(),
            shards: job.execution.shards,
        })
        .collect();
    Ok(PipelineSource {
        dir: pipeline.dir.clone(),
        jobs,
    })
}
