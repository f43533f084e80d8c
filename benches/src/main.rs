//! `medallion-bench`: runs the reference pipeline with medallion and its
//! peers (DuckDB, Spark) on the same TPC-H data, checks that they computed
//! the same tables, and writes report.md, report.json and chart.png.

mod chart;
mod checks;
mod cluster;
mod engines;
mod machine;
mod measure;
mod report;
mod runner;
mod second_load;
mod second_load_duckdb;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::engines::{Engine, Mode, Setup};

#[derive(Debug, Parser)]
#[command(
    name = "medallion-bench",
    about = "Benchmark the reference pipeline: medallion against DuckDB and Spark.",
    after_help = "Examples:\n  \
        cargo build --release -p medallion-engine -p medallion-bench\n  \
        target/release/medallion-bench --scale 1 --engines medallion,duckdb --runs 3\n  \
        target/release/medallion-bench --scale 10 --memory-limit 1GiB --engines medallion\n  \
        target/release/medallion-bench --scale 1 --mode one-process\n  \
        target/release/medallion-bench --scale 1 --engines medallion,duckdb --loads 2\n  \
        target/release/medallion-bench --scale 10 --engines medallion --memory-limit 1GiB --workers 2,4\n\n\
        Peers: pip install -r benches/requirements.txt (DuckDB); \
        pip install -r benches/requirements-spark.txt (Spark, needs Java 17).\n\
        Exits with 1 when an engine's results differ or an engine fails."
)]
struct Args {
    /// TPC-H scale factor: 1 means 1,500,000 orders and 150,000 customers.
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Engines to run, comma-separated: medallion, duckdb, spark.
    #[arg(long, default_value = "medallion,duckdb")]
    engines: String,
    /// How each engine's pipeline is started: one-process (the whole
    /// pipeline in one process, as users run it: the headline), per-layer
    /// (one process per layer, to see each layer's cost) or both.
    #[arg(long, default_value = "both", value_name = "MODE")]
    mode: String,
    /// Measured runs per engine and mode; the report gives the median and the range.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Folder for report.md, report.json and chart.png (default: bench-results/sf<scale>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Folder for raw data (kept between runs, per scale) and engine outputs
    /// (replaced each run). Default: medallion-bench in the temp folder.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// The medallion binary (default: the one next to this executable).
    #[arg(long, value_name = "FILE")]
    medallion_bin: Option<PathBuf>,
    /// Python that has the peers' packages (duckdb, pyspark).
    #[arg(long, default_value = "python3", value_name = "FILE")]
    python: PathBuf,
    /// medallion's memory pool, e.g. 1GiB: operators spill to disk beyond it.
    #[arg(long, value_name = "SIZE")]
    memory_limit: Option<String>,
    /// The reference pipeline folder (relative paths: from the current folder,
    /// so run the harness from the repository root).
    #[arg(long, value_name = "DIR", default_value = "jobs/reference")]
    pipeline: PathBuf,
    /// Folder of the peer scripts.
    #[arg(long, value_name = "DIR", default_value = "benches/peers")]
    peers: PathBuf,
    /// 2: after the benchmark, a second load into medallion's tables (1% of
    /// the orders changed, as many new), with silver's merge copy-on-write
    /// and merge-on-read, and reads of the merged table before and after
    /// `compact`. With duckdb among the engines, DuckDB does the same second
    /// load as a MERGE INTO on an Iceberg table of a local SeaweedFS
    /// (127.0.0.1:19333 and :19181), and must read the same answer.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    loads: u8,
    /// Worker counts, e.g. 2,4: after the benchmark, medallion's silver and
    /// gold again, in one process and on it plus N `medallion worker`
    /// processes on this machine (each under --memory-limit), --runs times
    /// each: wall time, every process's peak memory, bytes over the network.
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    workers: Vec<usize>,
    /// The script that starts SeaweedFS (S3 + Iceberg REST) for DuckDB's second load.
    #[arg(long, value_name = "FILE", default_value = ".ci/seaweedfs.sh")]
    seaweedfs: PathBuf,
    /// Skip chart.png (e.g. where no TrueType font is installed).
    #[arg(long)]
    no_chart: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Ok(false) when an engine failed or its results differ.
fn run(args: Args) -> Result<bool> {
    if args.scale.is_nan() || args.scale <= 0.0 {
        anyhow::bail!("--scale must be above 0, e.g. 0.01 or 1");
    }
    if args.runs == 0 {
        anyhow::bail!("--runs must be at least 1");
    }
    let engines = Engine::parse_list(&args.engines)?;
    let modes = Mode::parse_list(&args.mode)?;
    let work_dir = args
        .work_dir
        .unwrap_or_else(|| std::env::temp_dir().join("medallion-bench"));
    let work_dir = std::path::absolute(&work_dir)?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(format!("bench-results/sf{}", args.scale)));
    let medallion_bin = match args.medallion_bin {
        Some(bin) => bin,
        None => std::env::current_exe()
            .context("cannot locate this executable")?
            .with_file_name("medallion"),
    };
    for (dir, flag) in [(&args.pipeline, "--pipeline"), (&args.peers, "--peers")] {
        if !dir.is_dir() {
            anyhow::bail!(
                "{} is not a folder here; run the harness from the repository root or pass {flag}",
                dir.display()
            );
        }
    }
    let setup = Setup {
        medallion_bin: std::path::absolute(medallion_bin)?,
        python: args.python,
        peers_dir: std::path::absolute(&args.peers)?,
        pipeline_dir: std::path::absolute(&args.pipeline)?,
        raw_dir: work_dir.join("raw").join(format!("sf{}", args.scale)),
        memory_limit: args.memory_limit,
    };
    let mut report = runner::benchmark(&setup, &engines, &modes, args.scale, args.runs, &work_dir)?;
    if args.loads == 2 {
        let (loads, answer) = second_load::measure(&setup, args.scale, &work_dir)?;
        report.second_load = Some(loads);
        let duckdb = report
            .engines
            .iter()
            .find(|e| e.engine == Engine::Duckdb.name());
        match duckdb {
            Some(e) if e.verdict.reportable() => {
                report.second_load_duckdb = Some(second_load_duckdb::measure(
                    &setup,
                    &std::path::absolute(&args.seaweedfs)?,
                    &work_dir,
                    &answer,
                )?);
            }
            Some(_) => eprintln!("second load: duckdb skipped, its first load failed or differs"),
            None => {}
        }
    }

    if !args.workers.is_empty() {
        if args.workers.contains(&0) {
            anyhow::bail!(
                "--workers counts workers of a cluster: give 1 or more, e.g. --workers 2,4"
            );
        }
        report.cluster = Some(cluster::measure(
            &setup,
            &args.workers,
            args.runs,
            &work_dir,
        )?);
    }

    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let json_path = out.join("report.json");
    std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", json_path.display()))?;
    let md_path = out.join("report.md");
    std::fs::write(&md_path, report.render_markdown())
        .with_context(|| format!("cannot write {}", md_path.display()))?;
    if !args.no_chart {
        let chart_path = out.join("chart.png");
        match chart::draw(&report, &chart_path) {
            Ok(()) => eprintln!("chart: {}", chart_path.display()),
            Err(e) => eprintln!("warning: no chart: {e:#}"),
        }
    }
    eprintln!("report: {} and {}", md_path.display(), json_path.display());
    print!("{}", report.render_markdown());
    Ok(report.engines.iter().all(|e| e.verdict.reportable()))
}
