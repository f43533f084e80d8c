//! `demo`, `generate`, `run` and `validate`: pipelines and the raw data
//! they read.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use medallion_catalog::Shard;
use medallion_jobs::{
    ExecutionMode, InputSpec, JobSpec, Pipeline, RunParameters, reference_pipeline_dir,
};
use serde::Serialize;

use super::job_id::new_job_id;
use super::output::{Output, Report, pretty};
use crate::config::Config;
use crate::engine::Engine;
use crate::progress::Progress;
use crate::report::RunReport;
use crate::validate::validate_pipeline;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// TPC-H scale factor: 1 means 1,500,000 orders and 150,000 customers.
    #[arg(long, default_value_t = 0.1)]
    scale: f64,
    /// Job id of the run (default: demo-sf<scale>, so re-running is a no-op).
    #[arg(long, value_parser = medallion_jobs::parse_job_id)]
    job_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// TPC-H scale factor: 1 means 1,500,000 orders and 150,000 customers.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Also write a second load into tpch/orders_changes/: this share of the
    /// orders changed (every Nth, so every file of the first load holds
    /// some) plus as many new orders, e.g. 0.01. Load it with
    /// `--input raw_orders=tpch/orders_changes/part-1.parquet`.
    #[arg(long, value_name = "SHARE")]
    changes: Option<f64>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Pipeline folder or job spec file.
    pub pipeline: PathBuf,
    /// Job id of the run; re-running the same id never duplicates data.
    /// Default: a new id, printed with the summary.
    #[arg(long, value_parser = medallion_jobs::parse_job_id)]
    pub job_id: Option<String>,
    /// Run only these jobs (by name), in pipeline order.
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    /// Read raw input NAME from exactly these files (relative to the raw
    /// root, or full URIs) instead of its path. With any --input, jobs
    /// whose raw inputs get none are skipped: a run fed by uploads loads
    /// only what was uploaded.
    #[arg(long = "input", value_name = "NAME=URI[,URI...]")]
    pub inputs: Vec<InputOverride>,
    /// Load only shard INDEX of COUNT of the raw files (each file's shard
    /// follows from its location alone), e.g. --shard 0/4 in the first of
    /// four processes running the same job id. Only appends of raw files
    /// (bronze) split. With `execution.commit: single` (the default) the
    /// last shard to finish commits every shard's files in one snapshot;
    /// with `per-shard` each commits its own. In a Kubernetes Indexed Job
    /// the pod's JOB_COMPLETION_INDEX picks the shard of a job whose spec
    /// declares `execution.shards`.
    #[arg(long, value_name = "INDEX/COUNT", value_parser = Shard::parse)]
    pub shard: Option<Shard>,
    /// Where the jobs that read only tables (silver, gold) run, whatever
    /// their spec's `execution.mode` says: `distributed` runs their
    /// queries on the workers of --workers, this process writing and
    /// committing; jobs that read raw files stay local.
    #[arg(long, value_enum, value_name = "MODE")]
    pub execution: Option<ExecutionMode>,
}

/// `--input NAME=URI,URI`: the files that replace a raw input's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputOverride {
    pub name: String,
    pub uris: Vec<String>,
}

impl std::str::FromStr for InputOverride {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (name, uris) = text.split_once('=').ok_or_else(|| {
            format!(
                "`{text}` is not NAME=URI[,URI...], e.g. raw_orders=orders/2026/12/01/u-1.parquet"
            )
        })?;
        let uris: Vec<String> = uris
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(String::from)
            .collect();
        if name.trim().is_empty() || uris.is_empty() {
            return Err(format!(
                "`{text}` needs a raw input name and at least one file: NAME=URI[,URI...]"
            ));
        }
        Ok(Self {
            name: name.trim().to_string(),
            uris,
        })
    }
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Pipeline folder or job spec file.
    pub pipeline: PathBuf,
}

/// Raw TPC-H data ready under the raw root. The fields are in the order
/// `generate --json` has always printed them.
#[derive(Debug, Serialize)]
pub struct RawReport {
    customer_rows: u64,
    orders_rows: u64,
    raw: String,
    scale: f64,
    seconds: f64,
    /// `--changes`: the rows of the second load.
    #[serde(skip_serializing_if = "Option::is_none")]
    changed_orders_rows: Option<u64>,
}

impl Report for RawReport {
    fn text(&self) -> String {
        let mut text = format!(
            "raw TPC-H data at scale {}: {} orders, {} customers in {} ({:.2}s)\n",
            self.scale, self.orders_rows, self.customer_rows, self.raw, self.seconds
        );
        if let Some(rows) = self.changed_orders_rows {
            text.push_str(&format!(
                "second load: {rows} orders (changed and new) in {}/orders_changes; load it with \
                 --input raw_orders=tpch/orders_changes/part-1.parquet\n",
                self.raw
            ));
        }
        text
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

/// A pipeline run: what each job did, and the error that stopped it.
pub struct PipelineRun {
    report: RunReport,
    error: Option<anyhow::Error>,
}

impl PipelineRun {
    pub fn report(&self) -> &RunReport {
        &self.report
    }
}

impl Report for PipelineRun {
    fn text(&self) -> String {
        self.report.render()
    }

    fn json(&self) -> Result<String> {
        pretty(&self.report)
    }

    fn outcome(self) -> Result<()> {
        self.error.map_or(Ok(()), Err)
    }
}

/// One line per job that plans, then how many did.
pub struct Validated {
    lines: Vec<String>,
    jobs: usize,
}

impl Report for Validated {
    fn text(&self) -> String {
        let mut text: String = self.lines.iter().map(|line| format!("{line}\n")).collect();
        text.push_str(&format!("{} jobs valid\n", self.jobs));
        text
    }
}

pub async fn demo(
    engine: &Engine,
    args: DemoArgs,
    progress: &Progress,
    out: &Output,
    trace_id: &str,
) -> Result<PipelineRun> {
    out.note(&generate_raw(&engine.config, args.scale).await?);
    let dir = reference_pipeline_dir(&engine.config.lakehouse.join("pipelines").join("reference"))?;
    let job_id = args
        .job_id
        .unwrap_or_else(|| format!("demo-sf{}", args.scale));
    let pipeline = Pipeline::load(&dir)?;
    let run = RunParameters {
        job_id,
        ..RunParameters::default()
    };
    run_pipeline(engine, &pipeline, &[], &[], run, progress, trace_id).await
}

pub async fn generate(config: &Config, args: GenerateArgs) -> Result<RawReport> {
    let mut report = generate_raw(config, args.scale).await?;
    if let Some(share) = args.changes {
        let Some(raw_dir) = config.local_raw_root() else {
            bail!(
                "--changes writes to a local raw root; the raw root is {}",
                config.raw_root
            );
        };
        let rows = crate::tpch_changes::generate_changes(&raw_dir, args.scale, share).await?;
        report.changed_orders_rows = Some(rows);
    }
    Ok(report)
}

pub async fn run(
    engine: &Engine,
    pipeline: Pipeline,
    args: RunArgs,
    progress: &Progress,
    trace_id: &str,
) -> Result<PipelineRun> {
    let run = RunParameters {
        job_id: args.job_id.unwrap_or_else(new_job_id),
        shard: args.shard,
        completion_index: completion_index()?,
        execution: args.execution,
        ..RunParameters::default()
    };
    run_pipeline(
        engine,
        &pipeline,
        &args.jobs,
        &args.inputs,
        run,
        progress,
        trace_id,
    )
    .await
}

pub async fn validate(engine: &Engine, pipeline: &Pipeline) -> Result<Validated> {
    let lines = validate_pipeline(engine, pipeline).await?;
    Ok(Validated {
        lines,
        jobs: pipeline.jobs.len(),
    })
}

/// Generates raw TPC-H data locally and, when the raw root is remote
/// (`s3://raw`), publishes it there. Shared by `demo` and `generate`.
async fn generate_raw(config: &Config, scale: f64) -> Result<RawReport> {
    if scale.is_nan() || scale <= 0.0 {
        bail!("--scale must be above 0, e.g. 0.1 or 1");
    }
    let started = Instant::now();
    let raw_dir = config
        .local_raw_root()
        .unwrap_or_else(|| config.lakehouse.join("raw"));
    let raw = crate::tpch::generate(&raw_dir, scale).await?;
    if config.local_raw_root().is_none() {
        let stores = medallion_catalog::ObjectStores::new(config.s3.clone());
        crate::tpch::publish(&raw_dir, &config.raw_root, &stores).await?;
    }
    Ok(RawReport {
        customer_rows: raw.customer_rows,
        orders_rows: raw.orders_rows,
        changed_orders_rows: None,
        raw: format!("{}/tpch", config.raw_root),
        scale,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn run_pipeline(
    engine: &Engine,
    pipeline: &Pipeline,
    only: &[String],
    inputs: &[InputOverride],
    run: RunParameters,
    progress: &Progress,
    trace_id: &str,
) -> Result<PipelineRun> {
    let jobs = fed_jobs(pipeline.select(only)?, inputs)?;
    if run.shard.is_some() {
        // Refused before any job runs, not after the bronze jobs committed.
        for job in &jobs {
            job.shard(&run)?;
        }
    }
    let started = Instant::now();
    let run = RunParameters {
        loaded_at_micros: chrono::Utc::now().timestamp_micros(),
        raw_inputs: inputs
            .iter()
            .map(|i| (i.name.clone(), i.uris.clone()))
            .collect(),
        ..run
    };
    let (jobs, error) = engine.run_jobs(&jobs, &run, progress).await;
    let report = RunReport {
        job_id: run.job_id,
        trace_id: trace_id.to_string(),
        jobs,
        seconds: started.elapsed().as_secs_f64(),
        error: error.as_ref().map(crate::errors::one_line),
    };
    Ok(PipelineRun { report, error })
}

/// The pod's index in a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`):
/// it picks the shard of a job whose spec declares `execution.shards`, so
/// the rendered Job needs no argument per pod.
fn completion_index() -> Result<Option<u32>> {
    match std::env::var("JOB_COMPLETION_INDEX") {
        Ok(text) => match text.trim().parse() {
            Ok(index) => Ok(Some(index)),
            Err(_) => bail!("JOB_COMPLETION_INDEX is `{text}`, not a shard index (0, 1, ...)"),
        },
        Err(_) => Ok(None),
    }
}

/// The jobs a run with `--input` runs: those with no raw inputs, and those
/// with at least one raw input given files; the others would load their
/// whole path again. Every `--input` must name a raw input of a job here.
fn fed_jobs<'a>(jobs: Vec<&'a JobSpec>, inputs: &[InputOverride]) -> Result<Vec<&'a JobSpec>> {
    if inputs.is_empty() {
        return Ok(jobs);
    }
    let raw_of = |job: &'a JobSpec| {
        job.inputs.iter().filter_map(|i| match i {
            InputSpec::Raw { name, .. } => Some(name.as_str()),
            InputSpec::Table { .. } => None,
        })
    };
    for input in inputs {
        if !jobs.iter().any(|j| raw_of(j).any(|n| n == input.name)) {
            let known: Vec<&str> = jobs.iter().flat_map(|j| raw_of(j)).collect();
            bail!(
                "--input {}: no job of this run has a raw input of that name; raw inputs: {}",
                input.name,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            );
        }
    }
    Ok(jobs
        .into_iter()
        .filter(|job| {
            let mut raw = raw_of(job).peekable();
            let runs = raw.peek().is_none() || raw.any(|n| inputs.iter().any(|i| i.name == n));
            if !runs {
                tracing::info!(job = %job.name, "skipped: none of its raw inputs is given by --input");
            }
            runs
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_override_is_a_name_and_its_files() {
        let parsed: InputOverride = "raw_orders=a.parquet, s3://raw/b.parquet".parse().unwrap();
        assert_eq!(parsed.name, "raw_orders");
        assert_eq!(parsed.uris, ["a.parquet", "s3://raw/b.parquet"]);
        assert!(
            "raw_orders"
                .parse::<InputOverride>()
                .unwrap_err()
                .contains("NAME=URI")
        );
        assert!("raw_orders=".parse::<InputOverride>().is_err());
    }
}
