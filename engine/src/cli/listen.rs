//! `listen`: runs the pipeline for the `raw-data-ready` events of a
//! consumer group, in this process or through GitOps (`--mode gitops`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use medallion_deploy::cli::RepoArgs;
use medallion_jobs::reference_pipeline_dir;

use super::batch_runners::{GitOps, InProcess};
use super::output::{Report, pretty};
use crate::config::Config;
use crate::engine::Engine;
use crate::events::listen::{BatchRunner, ListenOptions, ListenSummary, listen as consume};
use crate::metrics::{Registry, serve_metrics};

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Consumer group; listeners in one group share the events.
    #[arg(long, default_value = "medallion")]
    group: String,
    /// How long a batch gathers events after its first one, e.g. 10s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    batch_window: Duration,
    /// At most this many events per batch (one run).
    #[arg(long, default_value_t = 500)]
    max_batch: usize,
    /// Pipeline folder to run (default: the reference pipeline).
    #[arg(long, value_name = "DIR")]
    pipeline: Option<PathBuf>,
    /// Run each batch here (inprocess) or commit it to the GitOps repository (gitops).
    #[arg(long, value_enum, default_value_t = Mode::Inprocess)]
    mode: Mode,
    /// gitops: the repository, as for `deploy submit --repo`.
    #[arg(long, env = "MEDALLION_GITOPS_REPO")]
    repo: Option<String>,
    /// gitops: the branch.
    #[arg(long, default_value = "main")]
    branch: String,
    /// gitops: file holding a token for an HTTPS repository.
    #[arg(long, value_name = "FILE")]
    git_token_file: Option<PathBuf>,
    /// gitops: container image to run instead of the template's.
    #[arg(long)]
    image: Option<String>,
    /// Serve Prometheus metrics on this address at /metrics (batches,
    /// events, consumer lag), e.g. 0.0.0.0:9464 in a pod.
    #[arg(long, env = "MEDALLION_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<std::net::SocketAddr>,
    /// Kafka consumer session timeout; a listener silent this long leaves the group.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    session_timeout: Duration,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Inprocess,
    Gitops,
}

impl Report for ListenSummary {
    fn text(&self) -> String {
        format!(
            "listen: {} runs of {} events, {} refused, {} failed attempts\n",
            self.runs, self.events, self.refused, self.failed_runs
        )
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

pub async fn listen(config: Config, args: ListenArgs) -> Result<ListenSummary> {
    let Some(brokers) = config.events.brokers.clone() else {
        bail!(
            "listen needs Kafka: set events.brokers in medallion.yaml, MEDALLION_KAFKA_BROKERS or --kafka-brokers"
        );
    };
    let pipeline = match &args.pipeline {
        Some(dir) => dir.clone(),
        None => reference_pipeline_dir(&config.lakehouse.join("pipelines").join("reference"))?,
    };
    // A pipeline that does not load fails now, not at the first event.
    medallion_jobs::Pipeline::load(&pipeline)?;
    let metrics = Arc::new(Registry::default());
    let mut registries = vec![metrics.clone()];
    let runner: Box<dyn BatchRunner> = match args.mode {
        Mode::Inprocess => {
            let engine = Engine::open(config).await?;
            // Its S3 requests are served beside the listener's own series.
            registries.push(engine.storage_metrics.clone());
            Box::new(InProcess { engine, pipeline })
        }
        Mode::Gitops => Box::new(GitOps {
            pipeline,
            repo: RepoArgs {
                repo: args
                    .repo
                    .clone()
                    .context("--mode gitops needs --repo (or MEDALLION_GITOPS_REPO)")?,
                branch: args.branch.clone(),
                git_token_file: args.git_token_file.clone(),
            },
            image: args.image.clone(),
        }),
    };
    let options = ListenOptions {
        brokers,
        group: args.group,
        batch_window: args.batch_window,
        max_batch: args.max_batch,
        session_timeout: args.session_timeout,
    };
    if let Some(address) = args.metrics_listen {
        let bound = serve_metrics(address, registries).await?;
        // Scripts and tests wait for this line; with port 0 it says which.
        eprintln!("metrics on http://{bound}/metrics");
    }
    consume(&options, runner.as_ref(), &metrics).await
}
