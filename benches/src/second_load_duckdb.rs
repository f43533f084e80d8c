//! `--loads 2` for DuckDB: the same second load as medallion's, as a
//! MERGE INTO on an Iceberg table. DuckDB writes Iceberg only through a REST
//! catalog, so the harness starts SeaweedFS (S3 + Iceberg REST, loopback
//! only, `.ci/seaweedfs.sh`) for it, on ports of its own so a running test
//! suite's server is left alone. The peer (`duckdb_pipeline.py second-load`)
//! puts DuckDB's first-load silver.orders into the catalog, merges the
//! changes in, and reads READ_SQL; its answer must be medallion's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::checks::{Kind, normalized_rows};
use crate::engines::{Engine, Setup};
use crate::measure::{Usage, run_measured};
use crate::second_load::{CHANGES_FILE, READ_SQL, READS, SecondLoad, size};

/// SeaweedFS's S3 port (it also takes the next 8, and admin gRPC at +10008)
/// and its Iceberg REST port: clear of the test suite's 18333-18341, 18181
/// and its admin gRPC at 28341, so both can run at once.
const S3_PORT: u16 = 19333;
const ICEBERG_PORT: u16 = 19181;
/// READ_SQL's columns, to compare DuckDB's answer with medallion's.
const READ_COLUMNS: &[(&str, Kind)] = &[
    ("order_status", Kind::Text),
    ("orders", Kind::Integer),
    ("total", Kind::Decimal(2)),
];

/// DuckDB's second load, as the peer timed it from inside, and its process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DuckdbSecondLoad {
    /// How it merged: `MERGE INTO`.
    pub statement: String,
    /// The first load's silver.orders inserted into the catalog's table,
    /// and the same rows written to a local Parquet file instead: what
    /// S3 + REST on loopback cost DuckDB's writes.
    pub create_seconds: f64,
    pub create_bytes: u64,
    pub local_copy_seconds: f64,
    /// The merge: dedup and join of the changes, and MERGE INTO.
    pub merge_seconds: f64,
    /// Data and delete files the merge added.
    pub merge_bytes: u64,
    pub merge_files: u64,
    /// Rows MERGE INTO reported as updated or inserted.
    pub merge_rows: u64,
    pub merge_rows_deleted: u64,
    /// Median of the reads, in the peer's process after the merge.
    pub read_seconds: f64,
    /// The whole peer process (Python start-up, SeaweedFS not included).
    pub process: Usage,
}

/// What the peer prints.
#[derive(Deserialize)]
struct PeerOutput {
    statement: String,
    create_seconds: f64,
    create_bytes: u64,
    local_copy_seconds: f64,
    merge_seconds: f64,
    merge_bytes: u64,
    merge_files: u64,
    merge_rows: u64,
    merge_rows_deleted: u64,
    read_seconds: Vec<f64>,
}

/// DuckDB's second load over its first load's tables in `work_dir`; fails
/// when its answer to READ_SQL is not `medallion_answer`.
pub fn measure(
    setup: &Setup,
    seaweedfs_script: &Path,
    work_dir: &Path,
    medallion_answer: &str,
) -> Result<DuckdbSecondLoad> {
    let tables = work_dir
        .join("runs")
        .join(Engine::Duckdb.name())
        .join("tables");
    ensure!(
        tables.join("silver/orders.parquet").is_file(),
        "DuckDB's first load left no silver/orders.parquet in {}; run the benchmark with duckdb first",
        tables.display()
    );
    let dir = work_dir.join("second-load").join(Engine::Duckdb.name());
    let server_dir = dir.join("seaweedfs");
    // A server a killed harness left behind would hold the ports.
    Seaweedfs::command(seaweedfs_script, &server_dir, "stop").output()?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    eprintln!("second load: duckdb (SeaweedFS on 127.0.0.1:{S3_PORT} and :{ICEBERG_PORT})");
    let server = Seaweedfs::start(seaweedfs_script, &server_dir)?;
    let answer_path = dir.join("answer.csv");
    let mut peer = setup.peer(Engine::Duckdb, &dir);
    peer.arg("second-load")
        .arg("--out")
        .arg(&tables)
        .arg("--changes")
        .arg(setup.raw_dir.join(CHANGES_FILE))
        .args(["--job-id", "load-2", "--read-sql", READ_SQL])
        .args(["--reads", &READS.to_string()])
        .arg("--pipeline")
        .arg(&setup.pipeline_dir)
        .args(["--catalog", &server.get("MEDALLION_TEST_ICEBERG_URI")?])
        .args(["--s3-endpoint", &format!("127.0.0.1:{S3_PORT}")])
        .args([
            "--warehouse",
            &server.get("MEDALLION_TEST_ICEBERG_WAREHOUSE")?,
        ])
        .arg("--work")
        .arg(&dir)
        .arg("--answer")
        .arg(&answer_path)
        // In the environment, not the arguments, so no process list shows them.
        .env(
            "BENCH_S3_ACCESS_KEY",
            server.get("MEDALLION_TEST_S3_ACCESS_KEY")?,
        )
        .env(
            "BENCH_S3_SECRET_KEY",
            server.get("MEDALLION_TEST_S3_SECRET_KEY")?,
        );
    let prefix = logs.join("second-load");
    let process = run_measured(&mut peer, &prefix).context("DuckDB's second load failed")?;
    drop(server);
    let out = std::fs::read_to_string(prefix.with_extension("out"))?;
    let peer: PeerOutput = serde_json::from_str(out.trim())
        .with_context(|| format!("DuckDB's second load printed no JSON: {}", out.trim()))?;
    let answer = std::fs::read_to_string(&answer_path)?;
    compare_answers(medallion_answer, &answer)?;
    Ok(DuckdbSecondLoad {
        statement: peer.statement,
        create_seconds: peer.create_seconds,
        create_bytes: peer.create_bytes,
        local_copy_seconds: peer.local_copy_seconds,
        merge_seconds: peer.merge_seconds,
        merge_bytes: peer.merge_bytes,
        merge_files: peer.merge_files,
        merge_rows: peer.merge_rows,
        merge_rows_deleted: peer.merge_rows_deleted,
        read_seconds: median(peer.read_seconds)?,
        process,
    })
}

/// DuckDB's merge beside medallion's write modes, and what makes them unlike.
pub fn render(duckdb: &DuckdbSecondLoad, medallion: &[SecondLoad], md: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        md,
        "### Against DuckDB ({statement} on Iceberg)\n\n\
         DuckDB put its first load's silver.orders into an Iceberg table (zstd, as medallion's), then \
         merged the same second load in one `{statement}`: the changes deduplicated on order_key \
         (latest loaded_at, then source_file) and joined to silver.customers as silver orders does, \
         bronze outside the timing as in medallion's silver_orders job. DuckDB wrote position \
         deletes (merge-on-read). Its answer to the read is medallion's (checked).\n\n\
         Not like for like: DuckDB writes Iceberg only through a REST catalog, so it wrote through \
         SeaweedFS's S3 and Iceberg REST on loopback, while medallion writes local files with its \
         SQLite catalog. What that costs DuckDB: writing the first load's silver.orders took it \
         {create:.2} s through the catalog ({create_bytes}) and {local:.2} s to a local Parquet file. \
         DuckDB's {READS} reads run in its process after the merge; medallion's each start a process. \
         DuckDB's whole second-load process (Python, extensions, catalog, first load's table, bronze, \
         merge, reads): {wall:.2} s, peak {peak}.\n\n\
         | second load | silver merge | written | rows deleted by position | read after merge |\n\
         |---|---|---|---|---|",
        statement = duckdb.statement,
        create = duckdb.create_seconds,
        create_bytes = size(duckdb.create_bytes),
        local = duckdb.local_copy_seconds,
        wall = duckdb.process.wall_seconds,
        peak = size(duckdb.process.peak_rss_bytes),
    );
    for l in medallion {
        let _ = writeln!(
            md,
            "| medallion {} | {:.2} s | {} | {} | {:.2} s |",
            l.write_mode,
            l.merge_seconds,
            size(l.merge_bytes),
            l.merge_rows_deleted,
            l.read_seconds
        );
    }
    let _ = writeln!(
        md,
        "| DuckDB {} | {:.2} s | {} in {} files | {} | {:.2} s |\n",
        duckdb.statement,
        duckdb.merge_seconds,
        size(duckdb.merge_bytes),
        duckdb.merge_files,
        duckdb.merge_rows_deleted,
        duckdb.read_seconds
    );
}

/// Fails unless both READ_SQL answers hold the same rows, value by value.
fn compare_answers(medallion: &str, duckdb: &str) -> Result<()> {
    let ours = normalized_rows(medallion, READ_COLUMNS).context("medallion's READ_SQL answer")?;
    let theirs = normalized_rows(duckdb, READ_COLUMNS).context("DuckDB's READ_SQL answer")?;
    if ours != theirs {
        bail!(
            "silver.orders differs between medallion and DuckDB after the second load:\n\
             medallion:\n{}\nduckdb:\n{}",
            medallion.trim(),
            duckdb.trim()
        );
    }
    Ok(())
}

fn median(mut seconds: Vec<f64>) -> Result<f64> {
    ensure!(!seconds.is_empty(), "DuckDB's second load timed no read");
    seconds.sort_by(f64::total_cmp);
    Ok(seconds[seconds.len() / 2])
}

/// A running SeaweedFS, stopped (by its PID file) when dropped.
struct Seaweedfs {
    script: PathBuf,
    dir: PathBuf,
    /// What `start` exported: endpoints, warehouse, keys. Never logged.
    exports: HashMap<String, String>,
}

impl Seaweedfs {
    fn start(script: &Path, dir: &Path) -> Result<Self> {
        ensure!(
            script.is_file(),
            "{} is not here; run the harness from the repository root or pass --seaweedfs",
            script.display()
        );
        std::fs::create_dir_all(dir)?;
        let out = Self::command(script, dir, "start")
            .output()
            .with_context(|| format!("cannot run {}", script.display()))?;
        if !out.status.success() {
            bail!(
                "cannot start SeaweedFS for DuckDB's second load (is 127.0.0.1:{S3_PORT} or :{ICEBERG_PORT} taken?):\n{}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let exports = parse_exports(&String::from_utf8_lossy(&out.stdout));
        Ok(Self {
            script: script.into(),
            dir: dir.into(),
            exports,
        })
    }

    fn get(&self, key: &str) -> Result<String> {
        self.exports
            .get(key)
            .cloned()
            .with_context(|| format!("{} exported no {key}", self.script.display()))
    }

    /// The script with this server's ports, folder and PID file, whatever
    /// the caller's environment says (a test suite's server has its own).
    fn command(script: &Path, dir: &Path, action: &str) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(script)
            .arg(action)
            .env("MEDALLION_TEST_S3_PORT", S3_PORT.to_string())
            .env("MEDALLION_TEST_ICEBERG_PORT", ICEBERG_PORT.to_string())
            .env("SEAWEEDFS_DIR", dir)
            .env("SEAWEEDFS_PID_FILE", dir.join("weed.pid"));
        command
    }
}

impl Drop for Seaweedfs {
    fn drop(&mut self) {
        let stopped = Self::command(&self.script, &self.dir, "stop").output();
        if !stopped.is_ok_and(|out| out.status.success()) {
            eprintln!(
                "warning: SeaweedFS may still run; stop it with SEAWEEDFS_PID_FILE={} bash {} stop",
                self.dir.join("weed.pid").display(),
                self.script.display()
            );
        }
    }
}

/// `export KEY='value'` lines, as `.ci/seaweedfs.sh start` prints them.
fn parse_exports(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("export "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_string(), value.trim_matches('\'').to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_are_parsed_with_or_without_quotes() {
        let exports = parse_exports("export A='x y'\nexport B=http://h:1\nnoise\n");
        assert_eq!(exports["A"], "x y");
        assert_eq!(exports["B"], "http://h:1");
        assert_eq!(exports.len(), 2);
    }

    #[test]
    fn duckdb_is_rendered_beside_both_write_modes() {
        let medallion = ["copy-on-write", "merge-on-read"].map(|mode| SecondLoad {
            write_mode: mode.into(),
            first_seconds: 1.0,
            first_bytes: 40 << 20,
            merge_seconds: 0.5,
            merge_bytes: 1 << 20,
            merge_rows_written: 30_000,
            merge_rows_deleted: 15_000,
            load_seconds: 1.0,
            read_seconds: 0.1,
            read_seconds_compacted: 0.1,
            compact_seconds: 1.0,
        });
        let duckdb = DuckdbSecondLoad {
            statement: "MERGE INTO".into(),
            create_seconds: 2.0,
            create_bytes: 40 << 20,
            local_copy_seconds: 1.0,
            merge_seconds: 0.75,
            merge_bytes: 2 << 20,
            merge_files: 3,
            merge_rows: 30_000,
            merge_rows_deleted: 15_000,
            read_seconds: 0.2,
            process: Usage::default(),
        };
        let mut md = String::new();
        render(&duckdb, &medallion, &mut md);
        assert!(
            md.contains("| medallion merge-on-read | 0.50 s | 1.0 MiB | 15000 | 0.10 s |"),
            "{md}"
        );
        assert!(
            md.contains("| DuckDB MERGE INTO | 0.75 s | 2.0 MiB in 3 files | 15000 | 0.20 s |"),
            "{md}"
        );
        assert!(
            md.contains("SeaweedFS's S3 and Iceberg REST on loopback"),
            "{md}"
        );
    }

    #[test]
    fn answers_compare_by_value() {
        let medallion = "order_status,orders,total\nF,2,10.50\nO,1,3.00\n";
        let duckdb = "order_status,orders,total\nF,2,10.5\nO,1,3\n";
        compare_answers(medallion, duckdb).unwrap();
        let error = compare_answers(medallion, "order_status,orders,total\nF,3,10.5\nO,1,3\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("differs between medallion and DuckDB"),
            "{error}"
        );
    }
}
