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
use medallion_jobs::{InputSpec, Pipeline};

use super::deploy::deploy_pipeline;
use super::output::Report;
use super::run::{InputOverride, RunArgs, run};
use crate::engine::Engine;
use crate::events::RawDataReady;
use crate::events::listen::BatchRunner;
use crate::ingest::RawRoot;
use crate::loaded_sources::already_loaded;
use crate::progress::Progress;
use crate::report::{JobReport, RunReport};
use crate::upload_status::{self, Loaded};

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
        let args = batch_run_args(&self.engine, &pipeline, job_id, events).await?;
        let feeding = feeding_jobs(&pipeline);
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
        let committed = report.report().clone();
        report.outcome()?;
        // The upload API's status says which bronze snapshot holds each
        // upload; a failure to note it never fails the committed run.
        if let Err(e) = note_loaded(&self.engine, job_id, events, &feeding, &committed).await {
            tracing::warn!(
                "run {job_id} committed, but its uploads' status was not updated: {}",
                crate::errors::one_line(&e)
            );
        }
        Ok(())
    }
}

/// The job each dataset feeds, by dataset name.
fn feeding_jobs(pipeline: &Pipeline) -> BTreeMap<String, String> {
    pipeline
        .datasets
        .iter()
        .filter_map(|d| Some((d.dataset.clone(), d.feeds().ok()?.0.to_string())))
        .collect()
}

/// Notes in each upload's status the snapshot of the bronze job its
/// dataset feeds.
async fn note_loaded(
    engine: &Engine,
    job_id: &str,
    events: &[RawDataReady],
    feeding: &BTreeMap<String, String>,
    report: &RunReport,
) -> Result<()> {
    let root = RawRoot::open(&engine.session(), &engine.config.raw_root)?;
    for event in events {
        let Some(job) = feeding.get(&event.dataset) else {
            continue;
        };
        let loaded = report.jobs.iter().find(|j| &j.job == job);
        if let Some(JobReport {
            table,
            snapshot_id: Some(snapshot_id),
            ..
        }) = loaded
        {
            let loaded = Loaded {
                table: table.clone(),
                snapshot_id: *snapshot_id,
                job_id: job_id.to_string(),
            };
            upload_status::record_loaded(&root, event, loaded).await?;
        }
    }
    Ok(())
}

/// The `medallion run` of one batch: each dataset's objects feed the raw
/// input its spec names (`feeds`), so bronze loads exactly these files and
/// the raw jobs of datasets nothing arrived for are skipped. Objects the
/// bronze table already holds are left out: an upload delivered again in
/// another batch (another job id) is not loaded twice. A pipeline that
/// declares no datasets runs whole, its raw inputs reading their folders.
async fn batch_run_args(
    engine: &Engine,
    pipeline: &Pipeline,
    job_id: &str,
    events: &[RawDataReady],
) -> Result<RunArgs> {
    let mut fed: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let declared = !pipeline.datasets.is_empty();
    for event in events.iter().filter(|_| declared) {
        let dataset = pipeline.dataset(&event.dataset)?;
        let (job, input) = dataset.feeds().map_err(anyhow::Error::msg)?;
        fed.entry((job.to_string(), input.to_string()))
            .or_default()
            .extend(event.object_keys.iter().cloned());
    }
    let mut inputs = Vec::new();
    for ((job, name), mut uris) in fed {
        let spec = pipeline.jobs.iter().find(|spec| spec.name == job);
        let table = &spec
            .with_context(|| format!("no job {job} feeds take"))?
            .target
            .table;
        let loaded = already_loaded(engine, table, &uris).await?;
        if !loaded.is_empty() {
            tracing::info!(
                "run {job_id}: {table} holds {} of its objects already; they are not loaded again",
                loaded.len()
            );
        }
        uris.retain(|uri| !loaded.contains(uri));
        if !uris.is_empty() {
            inputs.push(InputOverride { name, uris });
        }
    }
    // Everything was loaded before: the layers after bronze still run
    // (a batch that stopped after bronze left them to this run).
    let jobs = if declared && inputs.is_empty() {
        pipeline
            .jobs
            .iter()
            .filter(|job| {
                !job.inputs
                    .iter()
                    .any(|i| matches!(i, InputSpec::Raw { .. }))
            })
            .map(|job| job.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    Ok(RunArgs {
        pipeline: pipeline.dir.clone(),
        job_id: Some(job_id.to_string()),
        jobs,
        inputs,
        shard: None,
        execution: None,
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
