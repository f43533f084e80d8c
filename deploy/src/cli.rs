//! The `medallion deploy` subcommands. The engine parses them as part of its
//! command line, loads the pipeline (it owns the job-spec format) and hands
//! over a [`PipelineSource`].

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::credentials::{GitCredentials, TOKEN_FILE_ENV};
use crate::job::{PipelineSource, RunRequest};
use crate::render::{render, to_multi_document_yaml};
use crate::template::Templates;
use crate::update::{Landed, RepoTarget};
use crate::watch::{WatchOptions, watch};

#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Print the Kubernetes Job manifests of a run (one per job of the pipeline).
    #[command(
        after_help = "Example:\n  medallion deploy render jobs/reference --job-id 2026-11-29 --input s3://raw/2026-11-29"
    )]
    Render(RenderArgs),
    /// Render the run and commit it to the GitOps repository, where ArgoCD applies it.
    #[command(
        after_help = "Examples:\n  medallion deploy submit jobs/reference --job-id 2026-11-29 --repo https://git.example.com/data-platform/gitops.git\n  MEDALLION_GIT_TOKEN_FILE=/var/run/secrets/git/token medallion deploy submit jobs/reference --job-id 2026-11-29 --repo https://...\n  git init --bare /tmp/gitops.git && medallion deploy submit jobs/reference --job-id try-1 --repo /tmp/gitops.git"
    )]
    Submit(SubmitArgs),
    /// Follow a run's Jobs and pods until they succeed (exit 0) or fail (exit 1, with the cause).
    #[command(
        after_help = "Example:\n  medallion deploy watch 2026-11-29 --namespace medallion-jobs"
    )]
    Watch(WatchArgs),
    /// Remove finished Jobs' manifests from the GitOps repository in one commit.
    #[command(
        after_help = "Example:\n  medallion deploy prune --older-than 7d --repo https://git.example.com/data-platform/gitops.git"
    )]
    Prune(PruneArgs),
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Pipeline folder or job spec file (as for `medallion run`).
    pub pipeline: PathBuf,
    /// Job id of the run; each job of the run commits at most once under it.
    #[arg(long)]
    pub job_id: String,
    /// Only these jobs (by name); default: all.
    #[arg(long = "job", value_name = "NAME")]
    pub jobs: Vec<String>,
    /// Raw-input root for this run, e.g. s3://raw/2026-11-29 (MEDALLION_RAW in the pod).
    #[arg(long, value_name = "URI")]
    pub input: Option<String>,
    /// Container image to run instead of the template's.
    #[arg(long)]
    pub image: Option<String>,
    /// Where the pipeline folder is in the image (default: /pipelines/<folder name>).
    #[arg(long, value_name = "DIR")]
    pub image_path: Option<String>,
}

#[derive(Debug, Args)]
pub struct RepoArgs {
    /// GitOps repository: a URL or a local path.
    #[arg(long, env = "MEDALLION_GITOPS_REPO")]
    pub repo: String,
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// File holding a token for an HTTPS repository (a mounted Secret).
    /// Or set MEDALLION_GIT_TOKEN_FILE or MEDALLION_GIT_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub git_token_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub render: RenderArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub job_id: String,
    #[arg(long, env = "MEDALLION_NAMESPACE", default_value = "medallion-jobs")]
    pub namespace: String,
    /// Give up (exit 1) after this long, e.g. 6h.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Fail when a pod cannot be scheduled for this long.
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub unschedulable_timeout: Duration,
    /// Do not stream the pods' logs.
    #[arg(long)]
    pub no_logs: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove manifests committed longer ago than this, e.g. 7d. Keep it
    /// below the template's ttlSecondsAfterFinished (8 days).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub older_than: Duration,
    #[command(flatten)]
    pub repo: RepoArgs,
}

impl RenderArgs {
    /// The run, from the pipeline the engine loaded.
    pub fn run_request(&self, pipeline: &PipelineSource) -> Result<RunRequest> {
        Ok(RunRequest {
            job_id: self.job_id.clone(),
            jobs: pipeline.describe(self.image_path.as_deref())?,
            input: self.input.clone(),
            image: self.image.clone(),
        })
    }
}

impl RepoArgs {
    pub fn target(&self) -> Result<RepoTarget> {
        let mut target = RepoTarget::new(&self.repo, &self.branch);
        target.credentials = GitCredentials::from_environment(self.git_token_file.as_deref())
            .with_context(|| {
                format!("cannot read the git credentials (--git-token-file, {TOKEN_FILE_ENV})")
            })?;
        Ok(target)
    }
}

/// Runs a deploy command; `load` turns a pipeline path and job names into
/// the pipeline's jobs (the engine's loader).
pub async fn run(
    command: DeployCommand,
    load: impl Fn(&std::path::Path, &[String]) -> Result<PipelineSource>,
) -> Result<()> {
    match command {
        DeployCommand::Render(args) => {
            let run = args.run_request(&load(&args.pipeline, &args.jobs)?)?;
            print!(
                "{}",
                to_multi_document_yaml(&render(&run, &Templates::embedded())?)?
            );
            Ok(())
        }
        DeployCommand::Submit(args) => {
            let run = args
                .render
                .run_request(&load(&args.render.pipeline, &args.render.jobs)?)?;
            let target = args.repo.target()?;
            let submitted =
                tokio::task::spawn_blocking(move || crate::submit::submit(&run, &target))
                    .await
                    .context("the submit task panicked")??;
            for path in &submitted.already_submitted {
                println!("already submitted: {path}");
            }
            match &submitted.landed {
                Landed::Committed { commit, .. } => {
                    for path in &submitted.added {
                        println!("submitted: {path}");
                    }
                    println!(
                        "committed {commit} to {} on {}",
                        args.repo.repo, args.repo.branch
                    );
                }
                Landed::Unchanged => println!(
                    "nothing to submit: job id {} is already in {}",
                    args.render.job_id, args.repo.repo
                ),
            }
            Ok(())
        }
        DeployCommand::Watch(args) => {
            let client = kube::Client::try_default().await.context(
                "cannot reach the Kubernetes API: set KUBECONFIG or run inside the cluster",
            )?;
            let options = WatchOptions {
                namespace: args.namespace,
                job_id: args.job_id,
                timeout: args.timeout,
                unschedulable_grace: args.unschedulable_timeout,
                follow_logs: !args.no_logs,
            };
            let out: crate::watch::Output = Arc::new(Mutex::new(std::io::stdout()));
            let result = watch(client, &options, out).await;
            std::io::stdout().flush().ok();
            result.map(|_| ())
        }
        DeployCommand::Prune(args) => {
            let target = args.repo.target()?;
            let older_than = args.older_than;
            let pruned = tokio::task::spawn_blocking(move || {
                crate::prune::prune(&target, older_than, SystemTime::now())
            })
            .await
            .context("the prune task panicked")??;
            for path in &pruned.kept_running {
                println!("kept (its run may still be going): {path}");
            }
            for path in &pruned.removed {
                println!("removed: {path}");
            }
            match pruned.landed {
                Landed::Committed { commit, .. } => println!(
                    "committed {commit}: {} manifests removed",
                    pruned.removed.len()
                ),
                Landed::Unchanged => println!(
                    "nothing to prune: no manifest is older than {}",
                    humantime::format_duration(older_than)
                ),
            }
            Ok(())
        }
    }
}
