//! The `medallion` command line.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow::util::pretty::pretty_format_batches;
use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::StreamExt;
use medallion_catalog::{Secret, snapshot_infos, table_ident};
use medallion_jobs::{
    Effect, NotAQuery, Pipeline, QueryError, RunParameters, plan_query, reference_pipeline_dir,
};

use crate::config::{Config, Overrides};
use crate::engine::{AsOf, Engine};
use crate::progress::Progress;
use crate::report::{RunReport, human_bytes, render_table};
use crate::validate::validate_pipeline;

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
    /// Config file (YAML); default: ./medallion.yaml when present.
    #[arg(long, global = true, env = "MEDALLION_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Folder of the embedded lakehouse (raw files, tables, catalog).
    #[arg(long, global = true, env = "MEDALLION_LAKEHOUSE", value_name = "DIR")]
    pub lakehouse: Option<PathBuf>,
    /// Root that relative raw paths of job specs resolve against (a folder or URI).
    #[arg(long, global = true, env = "MEDALLION_RAW", value_name = "URI")]
    pub raw: Option<String>,
    /// Iceberg REST catalog URI (Lakekeeper: http://host:8181/catalog); selects the REST catalog.
    #[arg(long, global = true, env = "MEDALLION_CATALOG_URI", value_name = "URI")]
    pub catalog_uri: Option<String>,
    /// Warehouse of the REST catalog (Lakekeeper: the warehouse name).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_CATALOG_WAREHOUSE",
        value_name = "NAME"
    )]
    pub catalog_warehouse: Option<String>,
    /// OAuth2 client credentials for the catalog, `client_id:client_secret`.
    /// Prefer the environment variable or a config file over the flag.
    #[arg(long, global = true, env = "MEDALLION_CATALOG_CREDENTIAL", hide_env_values = true, value_name = "ID:SECRET", value_parser = parse_secret)]
    pub catalog_credential: Option<Secret>,
    /// OAuth2 token endpoint (Keycloak: https://host/realms/REALM/protocol/openid-connect/token).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_CATALOG_OAUTH2_SERVER_URI",
        value_name = "URI"
    )]
    pub catalog_oauth2_server_uri: Option<String>,
    /// OAuth2 scope to ask for (Lakekeeper with Keycloak: lakekeeper).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_CATALOG_SCOPE",
        value_name = "SCOPE"
    )]
    pub catalog_scope: Option<String>,
    /// File with a bearer token for the catalog, re-read when it changes
    /// (e.g. a projected Kubernetes service-account token).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_CATALOG_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub catalog_token_file: Option<PathBuf>,
    /// S3 endpoint for MinIO and other S3 servers (default: AWS_ENDPOINT_URL).
    /// Keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the config file.
    #[arg(long, global = true, env = "MEDALLION_S3_ENDPOINT", value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Memory pool for query execution, e.g. 1GiB; operators spill to disk beyond it.
    /// Default: in a container, its memory limit minus headroom (25%, at least 256 MiB);
    /// elsewhere half of the machine's available memory.
    #[arg(
        long,
        global = true,
        env = "MEDALLION_MEMORY_LIMIT",
        value_name = "SIZE"
    )]
    pub memory_limit: Option<String>,
    /// Folder for spill files (default: the system temp folder).
    #[arg(long, global = true, env = "MEDALLION_SPILL_DIR", value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
    /// Parallelism of query execution (default: number of cores).
    #[arg(
        long,
        global = true,
        env = "MEDALLION_TARGET_PARTITIONS",
        value_name = "N"
    )]
    pub target_partitions: Option<usize>,
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
    Demo {
        /// TPC-H scale factor: 1 means 1,500,000 orders and 150,000 customers.
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
        /// Job id of the run (default: demo-sf<scale>, so re-running is a no-op).
        #[arg(long, value_parser = medallion_jobs::parse_job_id)]
        job_id: Option<String>,
    },
    /// Generate TPC-H orders and customers as raw Parquet under the raw root
    /// (tpch/orders/, tpch/customer/) without running anything; a scale already
    /// generated there is kept. The benchmark harness feeds every engine from it.
    #[command(
        after_help = "Examples:\n  medallion generate --scale 1\n  medallion --raw /data/raw generate --scale 10"
    )]
    Generate {
        /// TPC-H scale factor: 1 means 1,500,000 orders and 150,000 customers.
        #[arg(long, default_value_t = 1.0)]
        scale: f64,
    },
    /// Run a pipeline folder, or a single job spec, against the configured storage and catalog.
    #[command(
        after_help = "Examples:\n  medallion run jobs/reference --job-id 2026-11-29\n  medallion run jobs/reference --job silver_orders --job-id 2026-11-29\n  medallion run jobs/reference/gold/sales_dashboard.yaml"
    )]
    Run {
        /// Pipeline folder or job spec file.
        pipeline: PathBuf,
        /// Job id of the run; re-running the same id never duplicates data.
        /// Default: a new id, printed with the summary.
        #[arg(long, value_parser = medallion_jobs::parse_job_id)]
        job_id: Option<String>,
        /// Run only these jobs (by name), in pipeline order.
        #[arg(long = "job", value_name = "NAME")]
        jobs: Vec<String>,
    },
    /// Check job specs and SQL without running them: references, types, and
    /// that every query plans against the tables it reads.
    Validate {
        /// Pipeline folder or job spec file.
        pipeline: PathBuf,
    },
    /// Query committed tables with SQL (DataFusion dialect).
    #[command(
        after_help = "Examples:\n  medallion sql \"SELECT market_segment, SUM(revenue) FROM gold.sales_dashboard GROUP BY 1\"\n  medallion sql --format csv \"SELECT * FROM silver.dq_report\""
    )]
    Sql {
        query: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        /// Read a table at a snapshot (time travel), e.g.
        /// --snapshot bronze.orders=4680882902660432718; repeatable.
        #[arg(long = "snapshot", value_name = "TABLE=SNAPSHOT_ID", value_parser = parse_table_snapshot)]
        snapshots: Vec<(String, i64)>,
        /// Read every table as it was at this moment (RFC 3339, e.g.
        /// 2026-11-29T12:00:00Z), unless --snapshot names it.
        #[arg(long, value_name = "TIMESTAMP")]
        as_of: Option<chrono::DateTime<chrono::FixedOffset>>,
    },
    /// List tables with their current snapshot, rows, files and size.
    Tables,
    /// Delete the rows a SQL predicate matches. Only data files holding such
    /// rows are rewritten; the change is one snapshot (undo with rollback).
    #[command(
        after_help = "Example:\n  medallion delete bronze.orders --where \"order_date < DATE '1993-01-01'\""
    )]
    Delete {
        table: String,
        /// SQL predicate over the table's columns; rows where it is true go.
        #[arg(long = "where", value_name = "PREDICATE")]
        predicate: String,
        /// Job id recorded with the snapshot (default: a new one).
        #[arg(long, value_parser = medallion_jobs::parse_job_id)]
        job_id: Option<String>,
    },
    /// Make an earlier snapshot of a table current again (undo a bad load).
    /// The data files stay; readers see the table as it was.
    #[command(
        after_help = "Example:\n  medallion history gold.sales_dashboard\n  medallion rollback gold.sales_dashboard --to 3188727205462243394"
    )]
    Rollback {
        table: String,
        /// Snapshot id from `medallion history`; must be an ancestor of the current one.
        #[arg(long = "to", value_name = "SNAPSHOT_ID")]
        snapshot_id: i64,
    },
    /// Rewrite a table's small data files into target-sized ones
    /// (`write.target-file-size-bytes`, default 512 MiB). Committed as a
    /// `replace`: concurrent appends still land; readers see the same rows.
    #[command(after_help = "Example:\n  medallion compact bronze.orders")]
    Compact {
        table: String,
        /// Job id recorded with the snapshot (default: a new one).
        #[arg(long, value_parser = medallion_jobs::parse_job_id)]
        job_id: Option<String>,
    },
    /// List a table's live data files in one manifest instead of one or
    /// more per commit: scan planning reads one file. Data is unchanged.
    #[command(after_help = "Example:\n  medallion rewrite-manifests bronze.orders")]
    RewriteManifests {
        table: String,
        /// Job id recorded with the snapshot (default: a new one).
        #[arg(long, value_parser = medallion_jobs::parse_job_id)]
        job_id: Option<String>,
    },
    /// Forget old snapshots and delete the files only they needed. The
    /// newest --retain-last ancestors of the current snapshot always stay.
    /// Time travel to an expired snapshot is no longer possible.
    #[command(
        after_help = "Examples:\n  medallion expire-snapshots bronze.orders                 # older than 5 days, keep the last one\n  medallion expire-snapshots bronze.orders --older-than 0s --retain-last 10"
    )]
    ExpireSnapshots {
        table: String,
        /// Expire only snapshots older than this (e.g. 5d, 12h, 30m, 0s).
        #[arg(long, value_name = "AGE", default_value = "5d", value_parser = medallion_jobs::parse_age)]
        older_than: std::time::Duration,
        #[arg(long, default_value_t = 1)]
        retain_last: usize,
    },
    /// Delete files under a table's location that no snapshot references
    /// (left by failed or killed writes). Files younger than --older-than
    /// are never touched, so writes in progress are safe; an age under a
    /// day is refused unless --force-unsafe-age.
    #[command(
        after_help = "Examples:\n  medallion remove-orphan-files bronze.orders --dry-run\n  medallion remove-orphan-files bronze.orders --older-than 1d\n  medallion remove-orphan-files bronze.orders --older-than 10m --force-unsafe-age   # no job writes it now"
    )]
    RemoveOrphanFiles {
        table: String,
        /// Safety age (e.g. 3d, 36h); younger files stay. At least 1d.
        #[arg(long, value_name = "AGE", default_value = "3d", value_parser = medallion_jobs::parse_age)]
        older_than: std::time::Duration,
        /// List the orphans without deleting them.
        #[arg(long)]
        dry_run: bool,
        /// Allow --older-than under a day. A write in progress streams
        /// files it has not committed yet; a sweep this young can take
        /// them and make that write fail (never a committed table).
        #[arg(long)]
        force_unsafe_age: bool,
    },
    /// Try the configuration: catalog reachable, credentials accepted,
    /// raw storage readable and writable. Says which step fails and why.
    Check,
    /// List the snapshots of a table: id, time, operation, job id, rows.
    History {
        /// Table name, e.g. bronze.orders.
        table: String,
    },
    /// Run pipelines as Kubernetes Jobs through a GitOps repository: render
    /// the Job manifests, submit them, watch a run, prune old ones.
    #[command(subcommand)]
    Deploy(medallion_deploy::DeployCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

impl GlobalArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            lakehouse: self.lakehouse.clone(),
            raw: self.raw.clone(),
            catalog_uri: self.catalog_uri.clone(),
            catalog_warehouse: self.catalog_warehouse.clone(),
            catalog_credential: self.catalog_credential.clone(),
            catalog_token_file: self.catalog_token_file.clone(),
            catalog_oauth2_server_uri: self.catalog_oauth2_server_uri.clone(),
            catalog_scope: self.catalog_scope.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            memory_limit: self.memory_limit.clone(),
            spill_dir: self.spill_dir.clone(),
            target_partitions: self.target_partitions,
        }
    }
}

/// Generates raw TPC-H data locally and, when the raw root is remote
/// (`s3://raw`), publishes it there. Shared by `demo` and `generate`.
async fn generate_raw(config: &Config, scale: f64) -> Result<crate::tpch::RawData> {
    if scale.is_nan() || scale <= 0.0 {
        bail!("--scale must be above 0, e.g. 0.1 or 1");
    }
    let raw_dir = config
        .local_raw_root()
        .unwrap_or_else(|| config.lakehouse.join("raw"));
    let raw = crate::tpch::generate(&raw_dir, scale).await?;
    if config.local_raw_root().is_none() {
        let stores = medallion_catalog::ObjectStores::new(config.s3.clone());
        crate::tpch::publish(&raw_dir, &config.raw_root, &stores).await?;
    }
    Ok(raw)
}

/// Runs one command; the error, if any, is for `main` to print on one line.
pub async fn run(cli: Cli) -> Result<()> {
    // Deploying needs no lakehouse configuration, only the pipeline.
    let command = match cli.command {
        Command::Deploy(command) => {
            return medallion_deploy::cli::run(command, deploy_pipeline).await;
        }
        command => command,
    };
    let config = Config::resolve(&cli.global.overrides())?;
    let progress = Progress::new(!cli.global.quiet && !cli.global.json);
    match command {
        Command::Deploy(_) => unreachable!("deploy returned before the configuration was read"),
        Command::Demo { scale, job_id } => {
            let started = Instant::now();
            let raw = generate_raw(&config, scale).await?;
            let engine = Engine::open(config).await?;
            if !cli.global.json {
                println!(
                    "raw TPC-H data at scale {scale}: {} orders, {} customers in {}/tpch ({:.2}s)",
                    raw.orders_rows,
                    raw.customer_rows,
                    engine.config.raw_root,
                    started.elapsed().as_secs_f64()
                );
            }
            let dir = reference_pipeline_dir(
                &engine.config.lakehouse.join("pipelines").join("reference"),
            )?;
            let job_id = job_id.unwrap_or_else(|| format!("demo-sf{scale}"));
            let pipeline = Pipeline::load(&dir)?;
            run_pipeline(&engine, &pipeline, &[], job_id, &progress, cli.global.json).await
        }
        Command::Generate { scale } => {
            let started = Instant::now();
            let raw = generate_raw(&config, scale).await?;
            let seconds = started.elapsed().as_secs_f64();
            if cli.global.json {
                let json = serde_json::json!({
                    "scale": scale,
                    "raw": format!("{}/tpch", config.raw_root),
                    "orders_rows": raw.orders_rows,
                    "customer_rows": raw.customer_rows,
                    "seconds": seconds,
                });
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                println!(
                    "raw TPC-H data at scale {scale}: {} orders, {} customers in {}/tpch ({seconds:.2}s)",
                    raw.orders_rows, raw.customer_rows, config.raw_root
                );
            }
            Ok(())
        }
        Command::Run {
            pipeline,
            job_id,
            jobs,
        } => {
            let pipeline = Pipeline::load(&pipeline)?;
            let job_id = job_id.unwrap_or_else(new_job_id);
            let engine = Engine::open(config).await?;
            run_pipeline(
                &engine,
                &pipeline,
                &jobs,
                job_id,
                &progress,
                cli.global.json,
            )
            .await
        }
        Command::Validate { pipeline } => {
            let pipeline = Pipeline::load(&pipeline)?;
            let engine = Engine::open(config).await?;
            let checked = validate_pipeline(&engine, &pipeline).await?;
            for line in &checked {
                println!("{line}");
            }
            println!("{} jobs valid", pipeline.jobs.len());
            Ok(())
        }
        Command::Sql {
            query,
            format,
            snapshots,
            as_of,
        } => {
            let engine = Engine::open(config).await?;
            let as_of = AsOf {
                snapshots: snapshots.into_iter().collect(),
                timestamp_ms: as_of.map(|t| t.timestamp_millis()),
            };
            let ctx = engine.session_for_query(&query, &as_of).await?;
            let frame = plan_query(&ctx, &query).await.map_err(|e| match e {
                QueryError::NotAQuery(refused) => anyhow::anyhow!(refused_statement(refused)),
                QueryError::Plan(e) => anyhow::Error::new(e).context("the query does not plan"),
            })?;
            print_frame(frame, format).await
        }
        Command::Delete {
            table,
            predicate,
            job_id,
        } => {
            let engine = Engine::open(config).await?;
            let ident = table_ident(&table)?;
            let job_id = job_id.unwrap_or_else(new_job_id);
            let report = crate::delete::delete_where(&engine, &ident, &predicate, &job_id).await?;
            if cli.global.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if let Some(snapshot_id) = report.snapshot_id {
                println!(
                    "deleted {} rows from {table} ({} files rewritten) in snapshot {snapshot_id} ({:.2}s)",
                    report.rows_deleted, report.files_rewritten, report.seconds
                );
            } else {
                println!("no rows of {table} match; nothing changed");
            }
            Ok(())
        }
        Command::Compact { table, job_id } => {
            let engine = Engine::open(config).await?;
            let ident = table_ident(&table)?;
            let job_id = job_id.unwrap_or_else(new_job_id);
            let report = engine.lakehouse.compact(&ident, &job_id).await?;
            if cli.global.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if let Some(snapshot_id) = report.snapshot_id {
                println!(
                    "compacted {table}: {} small files rewritten into {} ({} rows) in snapshot {snapshot_id}",
                    report.files_rewritten, report.files_written, report.rows
                );
            } else {
                println!("{table} has fewer than two small files; nothing to compact");
            }
            Ok(())
        }
        Command::RewriteManifests { table, job_id } => {
            let engine = Engine::open(config).await?;
            let ident = table_ident(&table)?;
            let job_id = job_id.unwrap_or_else(new_job_id);
            let report = engine.lakehouse.rewrite_manifests(&ident, &job_id).await?;
            if cli.global.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else if let Some(snapshot_id) = report.snapshot_id {
                println!(
                    "rewrote the {} manifests of {table} into {} in snapshot {snapshot_id}",
                    report.manifests_before, report.manifests_after
                );
            } else {
                println!(
                    "{table} has {} manifest(s); nothing to rewrite",
                    report.manifests_before
                );
            }
            Ok(())
        }
        Command::ExpireSnapshots {
            table,
            older_than,
            retain_last,
        } => {
            let engine = Engine::open(config).await?;
            let ident = table_ident(&table)?;
            let options = medallion_catalog::ExpireOptions {
                retain_last,
                older_than,
            };
            let report = engine.lakehouse.expire_snapshots(&ident, &options).await?;
            if cli.global.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{table}: expired {} snapshots, kept {}, deleted {} files",
                    report.snapshots_expired, report.snapshots_kept, report.files_deleted
                );
            }
            Ok(())
        }
        Command::RemoveOrphanFiles {
            table,
            older_than,
            dry_run,
            force_unsafe_age,
        } => {
            let engine = Engine::open(config).await?;
            let ident = table_ident(&table)?;
            let options = medallion_catalog::OrphanOptions {
                older_than,
                dry_run,
                force_unsafe_age,
            };
            let report = engine
                .lakehouse
                .remove_orphan_files(&ident, &options)
                .await?;
            if cli.global.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for path in &report.orphans {
                    println!("{path}");
                }
                let verb = if dry_run { "would delete" } else { "deleted" };
                println!(
                    "{table}: {verb} {} orphan files ({} bytes)",
                    report.orphans.len(),
                    report.bytes
                );
            }
            Ok(())
        }
        Command::Rollback { table, snapshot_id } => {
            let engine = Engine::open(config).await?;
            let ident = table_ident(&table)?;
            engine.lakehouse.rollback(&ident, snapshot_id).await?;
            println!("{table} is at snapshot {snapshot_id}");
            Ok(())
        }
        Command::Check => {
            let steps = crate::check::check(&config).await;
            let mut failed = 0;
            for step in &steps {
                match &step.outcome {
                    Ok(message) => {
                        println!("ok    {:<12} {message} ({} ms)", step.name, step.millis)
                    }
                    Err(e) => {
                        failed += 1;
                        println!(
                            "FAIL  {:<12} {} ({} ms)",
                            step.name,
                            crate::errors::one_line(e),
                            step.millis
                        );
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} of {} checks failed", steps.len());
            }
            Ok(())
        }
        Command::Tables => {
            let engine = Engine::open(config).await?;
            let mut rows = Vec::new();
            for ident in engine.lakehouse.list_tables().await? {
                let table = engine.lakehouse.load_table(&ident).await?;
                let current = table.metadata().current_snapshot();
                let prop = |key: &str| {
                    current
                        .and_then(|s| s.summary().additional_properties.get(key))
                        .cloned()
                        .unwrap_or_else(|| "0".into())
                };
                rows.push([
                    ident.to_string(),
                    current
                        .map(|s| s.snapshot_id().to_string())
                        .unwrap_or_else(|| "-".into()),
                    prop("total-records"),
                    prop("total-data-files"),
                    human_bytes(prop("total-files-size").parse().unwrap_or(0)),
                    current
                        .map(|s| format_ms(s.timestamp_ms()))
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            if cli.global.json {
                let json: Vec<_> = rows
                    .iter()
                    .map(|r| serde_json::json!({"table": r[0], "snapshot_id": r[1], "rows": r[2], "files": r[3], "size": r[4], "updated": r[5]}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else if rows.is_empty() {
                println!("no tables yet; `medallion demo` creates the reference tables");
            } else {
                print!(
                    "{}",
                    render_table(
                        &[
                            "table",
                            "snapshot id",
                            "rows",
                            "files",
                            "size",
                            "updated (UTC)"
                        ],
                        &rows
                    )
                );
            }
            Ok(())
        }
        Command::History { table } => {
            let engine = Engine::open(config).await?;
            let table = engine.lakehouse.load_table(&table_ident(&table)?).await?;
            let infos = snapshot_infos(&table);
            if cli.global.json {
                println!("{}", serde_json::to_string_pretty(&infos)?);
                return Ok(());
            }
            let rows: Vec<[String; 6]> = infos
                .iter()
                .map(|s| {
                    [
                        format!("{}{}", s.snapshot_id, if s.is_current { " *" } else { "" }),
                        format_ms(s.timestamp_ms),
                        s.operation.clone(),
                        s.job_id.clone().unwrap_or_else(|| "-".into()),
                        s.added_records
                            .map(|r| r.to_string())
                            .unwrap_or_else(|| "-".into()),
                        s.total_records
                            .map(|r| r.to_string())
                            .unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print!(
                "{}",
                render_table(
                    &[
                        "snapshot id",
                        "committed (UTC)",
                        "operation",
                        "job id",
                        "rows added",
                        "rows total"
                    ],
                    &rows
                )
            );
            Ok(())
        }
    }
}

async fn run_pipeline(
    engine: &Engine,
    pipeline: &Pipeline,
    only: &[String],
    job_id: String,
    progress: &Progress,
    json: bool,
) -> Result<()> {
    let jobs = pipeline.select(only)?;
    let started = Instant::now();
    let run = RunParameters {
        job_id: job_id.clone(),
        loaded_at_micros: chrono::Utc::now().timestamp_micros(),
    };
    let (jobs, error) = engine.run_jobs(&jobs, &run, progress).await;
    let report = RunReport {
        job_id,
        jobs,
        seconds: started.elapsed().as_secs_f64(),
        error: error.as_ref().map(crate::errors::one_line),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A pipeline as `medallion deploy` needs it: each job's name, target
/// table, input tables and spec file, in pipeline order.
fn deploy_pipeline(
    path: &std::path::Path,
    only: &[String],
) -> Result<medallion_deploy::PipelineSource> {
    let pipeline = Pipeline::load(path)?;
    let jobs = pipeline
        .select(only)?
        .into_iter()
        .map(|job| medallion_deploy::JobSource {
            name: job.name.clone(),
            target_table: job.target.table.clone(),
            reads: job.input_tables().map(str::to_string).collect(),
            spec_path: job.path.clone(),
        })
        .collect();
    Ok(medallion_deploy::PipelineSource {
        dir: pipeline.dir.clone(),
        jobs,
    })
}

/// `medallion sql` only reads; the error names what does the rest.
fn refused_statement(refused: NotAQuery) -> String {
    let instead = match refused.effect {
        Effect::Drop => "there is no drop command yet",
        Effect::Delete => "to delete rows, use `medallion delete <table> --where <predicate>`",
        Effect::Update => {
            "to change rows, write a job spec with `mode: merge` and run it with `medallion run`"
        }
        Effect::Write => "to write a table, write a job spec and run it with `medallion run`",
        Effect::Session => "settings come from medallion.yaml, MEDALLION_* variables and flags",
    };
    format!(
        "`medallion sql` runs queries only (SELECT, WITH, VALUES, EXPLAIN, SHOW, DESCRIBE) and \
         {} is not one; {instead}",
        refused.statement
    )
}

fn parse_table_snapshot(value: &str) -> Result<(String, i64), String> {
    let (table, id) = value
        .split_once('=')
        .ok_or_else(|| format!("`{value}` is not TABLE=SNAPSHOT_ID"))?;
    let id = id
        .parse()
        .map_err(|_| format!("`{id}` is not a snapshot id"))?;
    Ok((table.to_string(), id))
}

fn parse_secret(value: &str) -> Result<Secret, String> {
    Ok(Secret::new(value))
}

fn new_job_id() -> String {
    format!("run-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}

async fn print_frame(frame: datafusion::prelude::DataFrame, format: OutputFormat) -> Result<()> {
    match format {
        OutputFormat::Table => {
            let batches = frame.collect().await.context("the query failed")?;
            println!("{}", pretty_format_batches(&batches)?);
        }
        OutputFormat::Csv | OutputFormat::Json => {
            let mut stream = frame.execute_stream().await.context("the query failed")?;
            let stdout = std::io::stdout().lock();
            let mut csv = matches!(format, OutputFormat::Csv)
                .then(|| arrow::csv::Writer::new(std::io::BufWriter::new(std::io::stdout())));
            let mut json = matches!(format, OutputFormat::Json).then(|| {
                arrow::json::LineDelimitedWriter::new(std::io::BufWriter::new(std::io::stdout()))
            });
            drop(stdout);
            while let Some(batch) = stream.next().await {
                let batch = batch.context("the query failed")?;
                if let Some(w) = csv.as_mut() {
                    w.write(&batch)?;
                }
                if let Some(w) = json.as_mut() {
                    w.write(&batch)?;
                }
            }
            if let Some(mut w) = json {
                w.finish()?;
            }
        }
    }
    Ok(())
}
