//! The two ways `listen` runs the pipeline for a batch: in this process,
//! as `medallion run` does, or as `medallion deploy submit` does, through
//! the GitOps repository.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use async_trait::async_trait;
use medallion_deploy::cli::{RenderArgs, RepoArgs};
use medallion_deploy::submit::submit;
use medallion_deploy::update::Landed;
use medallion_jobs::Pipeline;

use super::deploy::deploy_pipeline;
use super::output::Report;
use super::run::{InputOverride, RunArgs, run};
use crate::engine::Engine;
use crate::events::RawDataReady;
use crate::events::listen::BatchRunner;
use crate::progress::Progress;

/// Runs the batch here, on the listener's engine.
pub struct InProcess {
    pub engine: Engine,
    pub pipeline: PathBuf,
}

#[async_trait(?Send)]
impl BatchRunner for InProcess {
    async fn run(&self, job_id: &str, events: &[RawDataReady]) -> Result<()> {
        // Loaded for every run, so a pipeline fixed after a failed run is
        // what the retry runs.
        let pipeline = Pipeline::load(&self.pipeline)?;
        let args = batch_run_args(&pipeline, job_id, events)?;
        let trace_id = crate::logging::new_trace_id();
        let report = run(
            &self.engine,
            pipeline,
            args,
            &Progress::new(false),
            &trace_id,
        )
        .await?;
        tracing::info!("run {job_id}:\n{}", report.text());
        report.outcome()
    }
}

/// The `medallion run` of one batch: each dataset's objects feed the raw
/// input its spec names (`feeds`), so bronze loads exactly these files and
/// the raw jobs of datasets nothing arrived for are skipped. A pipeline
/// that declares no datasets runs whole, its raw inputs reading their
/// folders.
fn batch_run_args(pipeline: &Pipeline, job_id: &str, events: &[RawDataReady]) -> Result<RunArgs> {
    let mut fed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let declared = !pipeline.datasets.is_empty();
    for event in events.iter().filter(|_| declared) {
        let dataset = pipeline.dataset(&event.dataset)?;
        let (_, input) = dataset.feeds().map_err(anyhow::Error::msg)?;
        fed.entry(input.to_string())
            .or_default()
            .extend(event.object_keys.iter().cloned());
    }
    Ok(RunArgs {
        pipeline: pipeline.dir.clone(),
        job_id: Some(job_id.to_string()),
        jobs: Vec::new(),
        inputs: fed
            .into_iter()
            .map(|(name, uris)| InputOverride { name, uris })
            .collect(),
    })
}

/// Commits the batch's Job manifests to the GitOps repository, as
/// `medallion deploy submit` does; ArgoCD runs them. Submitting a job id
/// again with the same manifests is a no-op, so a redelivered batch is too.
/// What it did goes to the log: stdout holds the listen report alone.
pub struct GitOps {
    pub pipeline: PathBuf,
    pub repo: RepoArgs,
    pub image: Option<String>,
}

#[async_trait(?Send)]
impl BatchRunner for GitOps {
    async fn run(&self, job_id: &str, _events: &[RawDataReady]) -> Result<()> {
        let render = RenderArgs {
            pipeline: self.pipeline.clone(),
            job_id: job_id.to_string(),
            jobs: Vec::new(),
            input: None,
            image: self.image.clone(),
            image_path: None,
        };
        let run = render.run_request(&deploy_pipeline(&self.pipeline, &[])?)?;
        let target = self.repo.target()?;
        let submitted = tokio::task::spawn_blocking(move || submit(&run, &target))
            .await
            .context("the submit task panicked")??;
        match submitted.landed {
            Landed::Committed { commit, .. } => {
                tracing::info!("run {job_id} submitted to {}: {commit}", self.repo.repo)
            }
            Landed::Unchanged => {
                tracing::info!("run {job_id} was already submitted to {}", self.repo.repo)
            }
        }
        Ok(())
    }
}
