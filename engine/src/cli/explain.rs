//! `explain`: the plans of a pipeline's jobs, without running them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use medallion_jobs::{ExecutionMode, Pipeline, RunParameters};
use serde::Serialize;

use super::output::{Report, pretty};
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Pipeline folder or job spec file.
    pub pipeline: PathBuf,
    /// Explain only these jobs (by name).
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    /// Plan the jobs that read only tables as `run --execution distributed`
    /// would: their stages, each stage's tasks and partitions, and the
    /// shuffles between them, and where the data files are written, for
    /// the workers of --workers (name as many as you mean to run). They
    /// are not contacted, except by a dedup step with rows to read: it
    /// looks up repeated keys while it is planned.
    #[arg(long)]
    pub distributed: bool,
}

/// Each job's plan.
#[derive(Debug, Serialize)]
pub struct Explained {
    jobs: Vec<JobPlan>,
}

#[derive(Debug, Serialize)]
struct JobPlan {
    job: String,
    table: String,
    distributed: bool,
    plan: String,
}

impl Report for Explained {
    fn text(&self) -> String {
        let mut text = String::new();
        for job in &self.jobs {
            let place = if job.distributed {
                "on the workers"
            } else {
                "in this process"
            };
            text.push_str(&format!(
                "job `{}` -> {}, {place}:\n{}\n",
                job.job, job.table, job.plan
            ));
        }
        text
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

pub async fn explain(engine: &Engine, pipeline: &Pipeline, args: ExplainArgs) -> Result<Explained> {
    let run = RunParameters {
        job_id: "explain".into(),
        execution: args.distributed.then_some(ExecutionMode::Distributed),
        ..RunParameters::default()
    };
    let mut jobs = Vec::new();
    for job in pipeline.select(&args.jobs)? {
        jobs.push(JobPlan {
            job: job.name.clone(),
            table: job.target.table.clone(),
            distributed: job.runs_distributed(&run),
            plan: engine.explain_job(job, &run).await?,
        });
    }
    Ok(Explained { jobs })
}
