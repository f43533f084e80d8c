//! `--loads 2`: what a daily incremental load costs medallion. After the
//! first load of the pipeline, a second load brings 1% of the orders
//! changed (every 100th, so every data file of silver.orders holds some)
//! plus 1% new orders (`medallion generate --changes 0.01`). It runs once
//! with silver's merge copy-on-write, once merge-on-read (v2 position
//! deletes) and once merge-on-read on a v3 table (deletion vectors), each on a
//! fresh lakehouse; then the same aggregate is read from silver.orders
//! three times, `compact` folds the deletes in, and it is read three times
//! again. Every mode and both reads must agree, or the harness fails.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engines::Setup;
use crate::measure::run_measured;

/// The share of the orders the second load changes (and adds).
const CHANGES: &str = "0.01";
pub const CHANGES_FILE: &str = "tpch/orders_changes/part-1.parquet";
pub const READS: usize = 3;
/// What is read of the merged table: every row of silver.orders, grouped.
pub const READ_SQL: &str = "SELECT order_status, COUNT(*) AS orders, SUM(total_price) AS total \
    FROM silver.orders GROUP BY order_status ORDER BY order_status";

/// One write mode's two loads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecondLoad {
    pub write_mode: String,
    /// The silver_orders job of the first load (an insert into an empty table).
    pub first_seconds: f64,
    pub first_bytes: u64,
    /// The silver_orders job of the second load: the merge.
    pub merge_seconds: f64,
    pub merge_bytes: u64,
    pub merge_rows_written: u64,
    pub merge_rows_deleted: u64,
    /// The whole second load (every job), wall time.
    pub load_seconds: f64,
    /// Median of the reads of silver.orders after the merge, and after `compact`.
    pub read_seconds: f64,
    pub read_seconds_compacted: f64,
    pub compact_seconds: f64,
}

/// How silver.orders takes the second load: its merge's write mode, on a
/// table of which Iceberg format version (v3: deletion vectors).
struct Mode {
    label: &'static str,
    write_mode: &'static str,
    format_version: u8,
    /// The lakehouse folder under `second-load/`.
    dir: &'static str,
}

const MODES: [Mode; 3] = [
    Mode {
        label: "copy-on-write",
        write_mode: "copy-on-write",
        format_version: 2,
        dir: "copy-on-write",
    },
    Mode {
        label: "merge-on-read",
        write_mode: "merge-on-read",
        format_version: 2,
        dir: "merge-on-read",
    },
    Mode {
        label: "merge-on-read, v3 deletion vectors",
        write_mode: "merge-on-read",
        format_version: 3,
        dir: "merge-on-read-v3",
    },
];

/// Every mode, copy-on-write first, and what READ_SQL answered.
pub fn measure(setup: &Setup, scale: f64, work_dir: &Path) -> Result<(Vec<SecondLoad>, String)> {
    let root = work_dir.join("second-load");
    let mut generate = setup.medallion(work_dir);
    generate.args([
        "generate",
        "--scale",
        &scale.to_string(),
        "--changes",
        CHANGES,
    ]);
    quietly(&mut generate).context("cannot generate the second load")?;
    let mut loads = Vec::new();
    let mut answers = Vec::new();
    for mode in &MODES {
        eprintln!("second load: {}", mode.label);
        let (load, answer) = measure_mode(setup, mode, &root.join(mode.dir))?;
        loads.push(load);
        answers.push(answer);
    }
    if let Some(other) = (1..answers.len()).find(|&i| answers[i] != answers[0]) {
        bail!(
            "silver.orders differs between {} and {} after the second load:\n{}\n{}",
            MODES[0].label,
            MODES[other].label,
            answers[0],
            answers[other]
        );
    }
    let answer = answers.swap_remove(0);
    Ok((loads, answer))
}

/// Two loads into a fresh lakehouse with silver's merge in `mode`; the
/// numbers, and what the reads answered.
fn measure_mode(setup: &Setup, mode: &Mode, dir: &Path) -> Result<(SecondLoad, String)> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let pipeline = dir.join("pipeline");
    copy_pipeline(&setup.pipeline_dir, &pipeline, mode)?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)?;
    let first = silver_orders(&run_load(setup, dir, &pipeline, "load-1", None)?)?;
    let started = std::time::Instant::now();
    let second = run_load(setup, dir, &pipeline, "load-2", Some(CHANGES_FILE))?;
    let load_seconds = started.elapsed().as_secs_f64();
    let merge = silver_orders(&second)?;
    let deleted = merge["rows_deleted"].as_u64().unwrap_or(0);
    ensure!(
        (mode.write_mode == "merge-on-read") == (deleted > 0),
        "silver_orders in {} deleted {deleted} rows by position; did {} take write_mode?",
        mode.label,
        pipeline.join("silver/orders.yaml").display()
    );
    let (read_seconds, answer) = read_silver(setup, dir, &logs, "read")?;
    let mut compact = setup.medallion(dir);
    compact.args(["compact", "silver.orders"]);
    let compact_seconds = run_measured(&mut compact, &logs.join("compact"))?.wall_seconds;
    let (read_seconds_compacted, compacted) = read_silver(setup, dir, &logs, "read-compacted")?;
    ensure!(
        answer == compacted,
        "silver.orders reads differently after compact ({}):\n{answer}\n{compacted}",
        mode.label
    );
    let number = |job: &Value, key: &str| job[key].as_u64().unwrap_or(0);
    let load = SecondLoad {
        write_mode: mode.label.into(),
        first_seconds: first["seconds"].as_f64().unwrap_or(0.0),
        first_bytes: number(&first, "bytes"),
        merge_seconds: merge["seconds"].as_f64().unwrap_or(0.0),
        merge_bytes: number(&merge, "bytes"),
        merge_rows_written: number(&merge, "rows_written"),
        merge_rows_deleted: deleted,
        load_seconds,
        read_seconds,
        read_seconds_compacted,
        compact_seconds,
    };
    Ok((load, answer))
}

/// The reference pipeline, with silver.orders merging in `mode`.
fn copy_pipeline(from: &Path, to: &Path, mode: &Mode) -> Result<()> {
    let status = Command::new("cp").arg("-r").arg(from).arg(to).status()?;
    ensure!(
        status.success(),
        "cannot copy {} to {}",
        from.display(),
        to.display()
    );
    let spec = to.join("silver/orders.yaml");
    let text = std::fs::read_to_string(&spec)?;
    ensure!(
        text.trim_end().ends_with("keys: [order_key]"),
        "{} no longer ends with its target's keys: say where write_mode goes",
        spec.display()
    );
    let target = format!(
        "\n  write_mode: {}\n  format_version: {}\n",
        mode.write_mode, mode.format_version
    );
    std::fs::write(&spec, format!("{}{target}", text.trim_end()))?;
    Ok(())
}

/// One load of the pipeline (the second reads only the changes); its run report.
fn run_load(
    setup: &Setup,
    dir: &Path,
    pipeline: &Path,
    job_id: &str,
    orders: Option<&str>,
) -> Result<Value> {
    let mut run = setup.medallion(dir);
    run.arg("--json")
        .arg("run")
        .arg(pipeline)
        .args(["--job-id", job_id]);
    if let Some(file) = orders {
        run.args(["--input", &format!("raw_orders={file}")]);
    }
    let out = quietly(&mut run).with_context(|| format!("{job_id} failed"))?;
    serde_json::from_slice(&out).context("the run report is not JSON")
}

/// The silver_orders job of a run report.
fn silver_orders(report: &Value) -> Result<Value> {
    report["jobs"]
        .as_array()
        .and_then(|jobs| jobs.iter().find(|j| j["job"] == "silver_orders"))
        .cloned()
        .context("the run report has no silver_orders job")
}

/// The median wall time of [`READS`] reads of silver.orders, and their answer.
/// Logs go to `<logs>/<name>-<n>.out`.
fn read_silver(setup: &Setup, dir: &Path, logs: &Path, name: &str) -> Result<(f64, String)> {
    let mut seconds = Vec::new();
    for read in 0..READS {
        let mut sql = setup.medallion(dir);
        sql.args(["sql", "--format", "csv", READ_SQL]);
        let prefix = logs.join(format!("{name}-{read}"));
        seconds.push(run_measured(&mut sql, &prefix)?.wall_seconds);
    }
    seconds.sort_by(f64::total_cmp);
    let answer = std::fs::read_to_string(logs.join(format!("{name}-0.out")))?;
    Ok((seconds[READS / 2], answer))
}

/// Runs a command to its end; its standard output, or its error output as the error.
fn quietly(command: &mut Command) -> Result<Vec<u8>> {
    let out = command.output().context("cannot start medallion")?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(out.stdout)
}

/// Bytes as KiB below a MiB, else MiB.
pub fn size(bytes: u64) -> String {
    match bytes as f64 / 1024.0 {
        kib if kib < 1024.0 => format!("{kib:.0} KiB"),
        kib => format!("{:.1} MiB", kib / 1024.0),
    }
}

/// The report's section: each mode's merge against its first load, and
/// reads; then DuckDB's merge beside them, when it ran.
pub fn render(loads: &[SecondLoad], md: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        md,
        "## Second load (`--loads 2`): {}% of the orders changed, as many new\n\n\
         The silver_orders job of each load, the whole second load, and the median of {READS} reads \
         of silver.orders after the merge and after `compact`; DuckDB's merge of the same load follows, when it ran.\n\n\
         | silver merge | first load | second load (merge) | share of first load's time | written | share of first load's bytes | rows deleted by position | whole second load | read after merge | read after compact | compact |\n\
         |---|---|---|---|---|---|---|---|---|---|---|",
        CHANGES.parse::<f64>().unwrap_or(0.0) * 100.0
    );
    for l in loads {
        let _ = writeln!(
            md,
            "| {} | {:.2} s, {} | {:.2} s | {:.0}% | {} | {:.1}% | {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s |",
            l.write_mode,
            l.first_seconds,
            size(l.first_bytes),
            l.merge_seconds,
            100.0 * l.merge_seconds / l.first_seconds.max(1e-9),
            size(l.merge_bytes),
            100.0 * l.merge_bytes as f64 / (l.first_bytes.max(1) as f64),
            l.merge_rows_deleted,
            l.load_seconds,
            l.read_seconds,
            l.read_seconds_compacted,
            l.compact_seconds,
        );
    }
    md.push('\n');
}
