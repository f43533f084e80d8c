//! The `medallion` command line: the commands and their flags, declared
//! once, and the dispatch of each command to its handler. A handler returns
//! a report; `output.rs` prints it as text or, with `--json`, as JSON.
//!
//! Handlers are grouped by what they act on: `run.rs` (pipelines and raw
//! data), `sql.rs`, `tables.rs` (listing, history, deleting rows,
//! rollback), `maintain.rs` (one maintenance task now), `check.rs`,
//! `deploy.rs`, `listen.rs` (with its runners in `batch_runners.rs`),
//! `serve.rs` and `worker.rs`.

mod batch_runners;
mod check;
mod deploy;
mod explain;
mod ingest;
mod job_id;
mod listen;
mod maintain;
mod output;
mod run;
mod serve;
mod sql;
mod tables;
mod watch;
mod worker;

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use medallion_deploy::layout::LAYERS;
use medallion_jobs::Pipeline;

use self::output::Output;
use self::watch::Watch;
use crate::config::{Config, Overrides};
use crate::engine::Engine;
use crate::progress::Progress;

const ABOUT: &str =
    "medallion: bronze, silver and gold Iceberg tables from raw files, in one binary.";

const LONG_ABOUT: &str = "\
medallion: bronze, silver and gold Iceberg tables from raw files, in one binary.

A pipeline is a folder of job specs (YAML) and SQL files. Each job reads raw
files (Parquet, CSV, JSON) or committed tables, transforms them with DataFusion
and commits one Iceberg snapshot to its target table. Re-running a job id never
duplicates data: a job id commits to a table at most once.

Start here:
  medallion demo                      generate TPC-H data, run the reference pipeline
  medallion tables                    what the lakehouse holds
  medallion sql \"SELECT * FROM gold.sales_dashboard LIMIT 5\"
  medallion history bronze.orders     snapshots, with the job ids that made them

With no configuration everything lives in ./lakehouse: raw files in raw/, tables
in warehouse/, the Iceberg SQL catalog in catalog.db (PyIceberg's SqlCatalog
opens it). Settings come from medallion.yaml, then MEDALLION_* variables, then
flags; flags win.";

#[derive(Debug, Parser)]
#[command(name = "medallion", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    // Where the lakehouse is and what the engine may use.
    #[command(flatten)]
    pub settings: Overrides,
    /// Print a machine-readable JSON report on stdout instead of the summary table.
    #[arg(long, global = true)]
    pub json: bool,
    /// No live progress; logs only.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// More logs (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate TPC-H orders and customers as raw Parquet, then run the reference
    /// pipeline (bronze, silver incl. dq_report, gold) and print what was committed.
    #[command(
        after_help = "Examples:\n  medallion demo\n  medallion demo --scale 1\n  medallion demo --job-id load-2  # a second load appends to bronze"
    )]
    Demo(run::DemoArgs),
    /// Generate TPC-H orders and customers as raw Parquet under the raw root
    /// (tpch/orders/, tpch/customer/) without running anything; a scale already
    /// generated there is kept. The benchmark harness feeds every engine from it.
    #[command(
        after_help = "Examples:\n  medallion generate --scale 1\n  medallion --raw /data/raw generate --scale 10"
    )]
    Generate(run::GenerateArgs),
    /// Run a pipeline folder, or a single job spec, against the configured storage and catalog.
    #[command(
        after_help = "Examples:\n  medallion run jobs/reference --job-id 2026-11-29\n  medallion run jobs/reference --job silver_orders --job-id 2026-11-29\n  medallion run jobs/reference/gold/sales_dashboard.yaml"
    )]
    Run(run::RunArgs),
    /// Ingest an upload of a dataset: read the sources (files, folders,
    /// http(s) URLs, s3:// prefixes; CSV, JSON, NDJSON, Parquet, optionally
    /// .gz or .zst), check every row against the dataset's columns, land
    /// one Parquet object under the raw root, quarantine the bad rows, and
    /// record the upload (the same bytes twice are ingested once).
    #[command(
        after_help = "Examples:\n  medallion ingest orders orders.csv\n  medallion ingest orders exports/ --pipeline jobs/reference\n  medallion ingest customer https://example.com/customer.ndjson.gz\n  medallion ingest orders s3://incoming/orders/ --format csv --csv-delimiter ';'\n\nThen load it: medallion run jobs/reference --input raw_orders=<landed key>"
    )]
    Ingest(ingest::IngestArgs),
    /// Check job specs and SQL without running them: references, types, and
    /// that every query plans against the tables it reads.
    Validate(run::ValidateArgs),
    /// Show the physical plan each job would run now, against the tables
    /// as they are, without running it; with --distributed, the stages the
    /// workers would run, their tasks and partitions, and the shuffles
    /// between them.
    #[command(
        after_help = "Examples:\n  medallion explain jobs/reference --job gold_sales_dashboard\n  medallion explain jobs/reference/gold --distributed --workers http://w0:50051,http://w1:50051"
    )]
    Explain(explain::ExplainArgs),
    /// Query committed tables with SQL (DataFusion dialect).
    #[command(
        after_help = "Examples:\n  medallion sql \"SELECT market_segment, SUM(revenue) FROM gold.sales_dashboard GROUP BY 1\"\n  medallion sql --format csv \"SELECT * FROM silver.dq_report\""
    )]
    Sql(sql::SqlArgs),
    /// List tables with their current snapshot, rows, files and size.
    Tables,
    /// Delete the rows a SQL predicate matches. Only data files holding such
    /// rows are rewritten, or none with --write-mode merge-on-read (position
    /// deletes); the change is one snapshot (undo with rollback).
    #[command(
        after_help = "Examples:\n  medallion delete bronze.orders --where \"order_date < DATE '1993-01-01'\"\n  medallion delete silver.orders --where \"order_status = 'X'\" --write-mode merge-on-read"
    )]
    Delete(tables::DeleteArgs),
    /// Make an earlier snapshot of a table current again (undo a bad load).
    /// The data files stay; readers see the table as it was.
    #[command(
        after_help = "It first lists the later snapshots it takes out of the history (job ids, rows added); on a terminal it refuses without --yes when rows would disappear. Scripts pass --expect-head with the current snapshot they saw.\n\nExample:\n  medallion history gold.sales_dashboard\n  medallion rollback gold.sales_dashboard --to 3188727205462243394 --expect-head 4601913264711185122"
    )]
    Rollback(tables::RollbackArgs),
    /// Rewrite a table's small data files into target-sized ones
    /// (`write.target-file-size-bytes`, default 512 MiB). Committed as a
    /// `replace`: concurrent appends still land; readers see the same rows.
    #[command(after_help = "Example:\n  medallion compact bronze.orders")]
    Compact(maintain::CompactArgs),
    /// List a table's live data files in one manifest instead of one or
    /// more per commit: scan planning reads one file. Data is unchanged.
    #[command(after_help = "Example:\n  medallion rewrite-manifests bronze.orders")]
    RewriteManifests(maintain::RewriteManifestsArgs),
    /// Forget old snapshots and delete the files only they needed. The
    /// newest --retain-last ancestors of the current snapshot always stay.
    /// Time travel to an expired snapshot is no longer possible.
    #[command(
        after_help = "Examples:\n  medallion expire-snapshots bronze.orders                 # older than 5 days, keep the last one\n  medallion expire-snapshots bronze.orders --older-than 0s --retain-last 10"
    )]
    ExpireSnapshots(maintain::ExpireSnapshotsArgs),
    /// Delete files under a table's location that no snapshot references
    /// (left by failed or killed writes). Files younger than --older-than
    /// are never touched, so writes in progress are safe; an age under a
    /// day is refused unless --force-unsafe-age.
    #[command(
        after_help = "Examples:\n  medallion remove-orphan-files bronze.orders --dry-run\n  medallion remove-orphan-files bronze.orders --older-than 1d\n  medallion remove-orphan-files bronze.orders --older-than 10m --force-unsafe-age   # no job writes it now"
    )]
    RemoveOrphanFiles(maintain::RemoveOrphanFilesArgs),
    /// Try the configuration: catalog reachable, credentials accepted,
    /// raw storage readable and writable. Says which step fails and why.
    Check,
    /// List the snapshots of a table: id, time, operation, job id, rows.
    History(tables::HistoryArgs),
    /// Run pipelines as Kubernetes Jobs through a GitOps repository: render
    /// the Job manifests, submit them, watch a run, prune old ones.
    #[command(subcommand)]
    Deploy(medallion_deploy::DeployCommand),
    /// Run the pipeline for `raw-data-ready` events from Kafka: batches of
    /// events, one run each under a job id derived from their upload ids;
    /// offsets committed only after the run succeeded. Stops cleanly on SIGTERM.
    #[command(
        after_help = "Examples:\n  medallion --kafka-brokers 127.0.0.1:9092 listen\n  medallion listen --batch-window 30s --max-batch 200 --pipeline jobs/reference\n  medallion listen --mode gitops --repo https://git.example.com/data-platform/gitops.git"
    )]
    Listen(listen::ListenArgs),
    /// The upload API: `POST /api/v1/upload?dataset=orders` streams a file
    /// into the raw bucket, ingests it as `medallion ingest` does and
    /// answers with its upload id, objects and row counts; `GET
    /// /api/v1/uploads/{id}` says where it is. Bearer JWTs of the OpenID
    /// Connect provider; `/metrics` for Prometheus. Stops cleanly on SIGTERM.
    #[command(
        after_help = "Examples:\n  medallion serve --oidc-issuer https://keycloak.example.com/realms/data --oidc-audience medallion-upload\n  medallion serve --no-auth --listen 127.0.0.1:8080   # a laptop only\n  curl -H \"Authorization: Bearer $TOKEN\" -F file=@orders.csv 'http://127.0.0.1:8080/api/v1/upload?dataset=orders'\n\nA token needs the scope (or Keycloak role) upload:<dataset>."
    )]
    Serve(serve::ServeArgs),
    /// A worker of a distributed cluster: runs the stages of the queries of
    /// jobs with `execution.mode: distributed` (or `run --execution
    /// distributed`) that coordinators send it, reading data files straight
    /// from storage with its own credentials, within its own memory pool
    /// (--memory-limit, spilling to --spill-dir). Stops cleanly on SIGTERM.
    #[command(
        after_help = "Examples:\n  medallion worker --listen 0.0.0.0:50051 --memory-limit 8GiB\n  medallion worker --listen 127.0.0.1:0   # any free port, printed at start\n\nThen: medallion run jobs/reference --execution distributed --workers http://10.0.0.5:50051,http://10.0.0.6:50051"
    )]
    Worker(worker::WorkerArgs),
}

/// Runs one command; the error, if any, is for `main` to print on one line.
/// `trace_id` is the command's, in its logs and its run report.
pub async fn run(cli: Cli, trace_id: String) -> Result<()> {
    let Cli { global, command } = cli;
    // Deploying needs no lakehouse configuration, only the pipeline.
    if let Command::Deploy(command) = command {
        return deploy::deploy(command).await;
    }
    let config = Config::resolve(&global.settings)?;
    let out = Output::new(global.json);
    match command {
        // Neither connects to the catalog: `generate` feeds other engines
        // too, and `check` connects step by step to say which step fails.
        Command::Generate(args) => out.print(run::generate(&config, args).await?),
        Command::Check => out.print(check::check(&config).await),
        // It opens the engine only to run batches in this process.
        Command::Listen(args) => out.print(listen::listen(config, args).await?),
        // It holds its engine for as long as it serves.
        Command::Serve(args) => out.print(serve::serve(config, args).await?),
        // It needs no catalog: coordinators plan, workers read files.
        Command::Worker(args) => out.print(worker::worker(config, args).await?),
        command => {
            // A pipeline that does not load fails before the catalog is
            // reached, or created in a fresh folder.
            let pipeline = command.pipeline_dir().map(Pipeline::load).transpose()?;
            let instance = command.metrics_instance(pipeline.as_ref());
            let settings = config.metrics.clone();
            let watch = Watch::new(trace_id);
            let result = match Engine::open(config).await {
                Ok(engine) => {
                    let progress = Progress::new(!global.quiet && !global.json);
                    on_engine(command, pipeline, &engine, &progress, &out, &watch).await
                }
                Err(e) => {
                    if let Some(pipeline) = &pipeline {
                        watch.none_ran(pipeline);
                    }
                    Err(e)
                }
            };
            // At the end, on failure too: a failed run is what alerts fire on.
            crate::metrics::publish(&watch.registry, &settings, &instance).await;
            result
        }
    }
}

impl Command {
    /// The Pushgateway `instance` of the command's metrics: the pipeline's
    /// name (its folder's; a job spec's folder named for a layer stands
    /// for the folder above it), or the table a command works on.
    fn metrics_instance(&self, pipeline: Option<&Pipeline>) -> String {
        let name = |dir: &Path| {
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "medallion".into())
        };
        match (self, pipeline) {
            (Command::Demo(_), _) => "reference".into(),
            (_, Some(pipeline)) if LAYERS.contains(&name(&pipeline.dir).as_str()) => pipeline
                .dir
                .parent()
                .map_or_else(|| "medallion".into(), name),
            (_, Some(pipeline)) => name(&pipeline.dir),
            (Command::Compact(args), _) => args.table.clone(),
            (Command::RewriteManifests(args), _) => args.table.clone(),
            (Command::ExpireSnapshots(args), _) => args.table.clone(),
            (Command::RemoveOrphanFiles(args), _) => args.table.clone(),
            _ => "medallion".into(),
        }
    }

    /// The pipeline folder or job spec the command runs or checks.
    fn pipeline_dir(&self) -> Option<&Path> {
        match self {
            Command::Run(args) => Some(&args.pipeline),
            Command::Validate(args) => Some(&args.pipeline),
            Command::Explain(args) => Some(&args.pipeline),
            _ => None,
        }
    }
}

/// The commands that read or write tables, each on the one open engine.
async fn on_engine(
    command: Command,
    pipeline: Option<Pipeline>,
    engine: &Engine,
    progress: &Progress,
    out: &Output,
    watch: &Watch,
) -> Result<()> {
    let loaded = || pipeline.expect("run and validate load their pipeline before the engine opens");
    let trace_id = &watch.trace_id;
    match command {
        Command::Demo(args) => {
            let run = run::demo(engine, args, progress, out, trace_id).await?;
            watch.run(engine, run.report()).await;
            out.print(run)
        }
        Command::Run(args) => {
            let run = run::run(engine, loaded(), args, progress, trace_id).await?;
            watch.run(engine, run.report()).await;
            out.print(run)
        }
        Command::Ingest(args) => out.print(ingest::ingest(engine, args, progress).await?),
        Command::Validate(_) => out.print(run::validate(engine, &loaded()).await?),
        Command::Explain(args) => out.print(explain::explain(engine, &loaded(), args).await?),
        Command::Sql(args) => sql::query(engine, args).await,
        Command::Tables => out.print(tables::list(engine).await?),
        Command::History(args) => out.print(tables::history(engine, args).await?),
        Command::Delete(args) => out.print(tables::delete(engine, args).await?),
        Command::Rollback(args) => out.print(tables::rollback(engine, args, out).await?),
        command => maintenance(command, engine, out, watch).await,
    }
}

/// The maintenance commands, each recorded under its name.
async fn maintenance(command: Command, engine: &Engine, out: &Output, watch: &Watch) -> Result<()> {
    let started = Instant::now();
    match command {
        Command::Compact(args) => {
            let table = args.table.clone();
            let result = maintain::compact(engine, args).await;
            watch.task(engine, "compact", &table, started, &result, |r| {
                r.snapshot_id.map(|_| (r.rows, r.files_written))
            });
            out.print(result?)
        }
        Command::RewriteManifests(args) => {
            let table = args.table.clone();
            let result = maintain::rewrite_manifests(engine, args).await;
            watch.task(
                engine,
                "rewrite_manifests",
                &table,
                started,
                &result,
                |_| None,
            );
            out.print(result?)
        }
        Command::ExpireSnapshots(args) => {
            let table = args.table.clone();
            let result = maintain::expire_snapshots(engine, args).await;
            watch.task(engine, "expire_snapshots", &table, started, &result, |_| {
                None
            });
            out.print(result?)
        }
        Command::RemoveOrphanFiles(args) => {
            let table = args.table.clone();
            let result = maintain::remove_orphan_files(engine, args).await;
            watch.task(
                engine,
                "remove_orphan_files",
                &table,
                started,
                &result,
                |_| None,
            );
            out.print(result?)
        }
        _ => unreachable!("commands without an engine return before it opens"),
    }
}
