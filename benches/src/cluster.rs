//! `--workers 2,4`: what a cluster costs medallion's silver and gold. On a
//! fresh lakehouse bronze is loaded in one process (not measured); then
//! silver and gold run once in that process alone and once on it plus N
//! `medallion worker` processes (`--execution distributed`), for each N,
//! alternating, every process under the same `--memory-limit`. Measured:
//! the job's process as every run is measured, each worker's peak resident
//! memory (VmHWM) and the bytes the jobs sent over the network (the run
//! report's `bytes_shuffled`). Every configuration's gold tables and
//! dq_report must hash the same as one process's, or the harness fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engines::Setup;
use crate::measure::{Usage, run_measured};
use crate::second_load::size;

/// The tables whose contents every configuration must agree on.
const COMPARED: [&str; 3] = [
    "gold.customer_metrics",
    "gold.sales_dashboard",
    "silver.dq_report",
];

/// One configuration's runs: 0 workers is the job's process alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterRuns {
    pub workers: usize,
    /// Silver and gold: the job's process, median run.
    pub wall_seconds: f64,
    pub coordinator_peak_bytes: u64,
    /// Each worker's peak of the median run.
    pub worker_peak_bytes: Vec<u64>,
    pub bytes_shuffled: u64,
    pub runs: usize,
}

/// Every configuration, runs alternating between them.
pub fn measure(
    setup: &Setup,
    counts: &[usize],
    runs: usize,
    work_dir: &Path,
) -> Result<Vec<ClusterRuns>> {
    let configs: Vec<usize> = std::iter::once(0).chain(counts.iter().copied()).collect();
    let mut measured: Vec<Vec<Measured>> = vec![Vec::new(); configs.len()];
    let mut answer: Option<String> = None;
    for run in 0..runs {
        for (i, &workers) in configs.iter().enumerate() {
            let dir = work_dir.join("cluster").join(format!("w{workers}"));
            let one = measure_once(setup, workers, &dir)
                .with_context(|| format!("cluster run {} with {workers} workers", run + 1))?;
            eprintln!(
                "cluster: {workers} workers, run {}: {:.2} s, {} shuffled",
                run + 1,
                one.usage.wall_seconds,
                size(one.bytes_shuffled)
            );
            match &answer {
                None => answer = Some(one.answer.clone()),
                Some(expected) => ensure!(
                    *expected == one.answer,
                    "silver and gold on {workers} workers computed other tables than on one process \
                     (see {})",
                    dir.display()
                ),
            }
            measured[i].push(one);
        }
    }
    Ok(configs
        .iter()
        .zip(measured)
        .map(|(&workers, runs)| ClusterRuns::of(workers, runs))
        .collect())
}

/// One run of one configuration.
#[derive(Debug, Clone)]
struct Measured {
    usage: Usage,
    worker_peaks: Vec<u64>,
    bytes_shuffled: u64,
    /// The compared tables' contents.
    answer: String,
}

impl ClusterRuns {
    fn of(workers: usize, mut runs: Vec<Measured>) -> Self {
        runs.sort_by(|a, b| a.usage.wall_seconds.total_cmp(&b.usage.wall_seconds));
        let count = runs.len();
        let median = runs.swap_remove(count / 2);
        Self {
            workers,
            wall_seconds: median.usage.wall_seconds,
            coordinator_peak_bytes: median.usage.peak_rss_bytes,
            worker_peak_bytes: median.worker_peaks,
            bytes_shuffled: median.bytes_shuffled,
            runs: count,
        }
    }
}

fn measure_once(setup: &Setup, workers: usize, dir: &Path) -> Result<Measured> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let bronze = setup.pipeline_dir.join("bronze");
    let mut load = setup.medallion(dir);
    load.arg("run").arg(&bronze).args(["--job-id", "bench"]);
    run_measured(&mut load, &logs.join("bronze"))?;

    let cluster = Cluster::start(setup, dir, workers)?;
    let mut run = setup.medallion(dir);
    run.arg("--json")
        .arg("run")
        .arg(&setup.pipeline_dir)
        .args(["--job-id", "bench"]);
    if workers > 0 {
        run.args(["--execution", "distributed", "--workers", &cluster.urls()]);
    }
    let usage = run_measured(&mut run, &logs.join("silver-gold"));
    let worker_peaks = cluster.stop();
    let usage = usage?;
    let report: Value = serde_json::from_slice(&std::fs::read(logs.join("silver-gold.out"))?)
        .context("the run report is not JSON")?;
    Ok(Measured {
        usage,
        worker_peaks,
        bytes_shuffled: bytes_shuffled(&report),
        answer: compared_tables(setup, dir)?,
    })
}

/// What the run's jobs sent over the network, summed.
fn bytes_shuffled(report: &Value) -> u64 {
    report["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|job| job["bytes_shuffled"].as_u64())
        .sum()
}

/// The compared tables as CSV, each in a fixed order.
fn compared_tables(setup: &Setup, dir: &Path) -> Result<String> {
    let mut answer = String::new();
    for table in COMPARED {
        let out = setup
            .medallion(dir)
            .args([
                "sql",
                "--format",
                "csv",
                &format!("SELECT * FROM {table} ORDER BY 1, 2, 3"),
            ])
            .output()
            .context("cannot start medallion")?;
        if !out.status.success() {
            bail!(
                "reading {table}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        answer.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    Ok(answer)
}

/// Worker processes on 127.0.0.1, each on a port it picked.
struct Cluster {
    workers: Vec<(Child, String)>,
}

impl Cluster {
    fn start(setup: &Setup, dir: &Path, count: usize) -> Result<Self> {
        let mut cluster = Cluster {
            workers: Vec::new(),
        };
        for _ in 0..count {
            let mut child = setup
                .medallion(dir)
                .args(["worker", "--listen", "127.0.0.1:0"])
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("cannot start a medallion worker")?;
            let url = listening_on(&mut child);
            match url {
                Ok(url) => cluster.workers.push((child, url)),
                Err(e) => {
                    let _ = child.kill();
                    cluster.stop();
                    return Err(e);
                }
            }
        }
        Ok(cluster)
    }

    fn urls(&self) -> String {
        let urls: Vec<&str> = self.workers.iter().map(|(_, url)| url.as_str()).collect();
        urls.join(",")
    }

    /// Stops every worker by its id; each one's peak resident memory.
    fn stop(self) -> Vec<u64> {
        self.workers
            .into_iter()
            .map(|(mut child, _)| {
                let peak = peak_rss(child.id()).unwrap_or(0);
                let _ = child.kill();
                let _ = child.wait();
                peak
            })
            .collect()
    }
}

/// The address a starting worker announces on stderr; the rest of its
/// stderr is drained so it never blocks on a full pipe.
fn listening_on(child: &mut Child) -> Result<String> {
    let stderr = child.stderr.take().context("the worker has no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(rest) = line.split("worker listening on ").nth(1) {
            let url = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(url);
        }
    }
    bail!("a medallion worker exited before it listened")
}

/// A live process's peak resident memory (`VmHWM`), in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The report's section: each configuration beside one process.
pub fn render(runs: &[ClusterRuns], md: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(
        md,
        "## Silver and gold on a cluster (`--workers`)\n\n\
         Bronze loaded first in one process; then silver and gold in one process, and on it plus N \
         `medallion worker` processes on this machine (`--execution distributed`), every process \
         under the same memory pool. Median of the runs; the tables hash the same in every \
         configuration.\n\n\
         | processes | silver+gold wall | vs one process | job's process peak | worker peaks | over the network |\n\
         |---|---|---|---|---|---|"
    );
    let alone = runs.first().map_or(0.0, |r| r.wall_seconds);
    for run in runs {
        let processes = match run.workers {
            0 => "one process".to_string(),
            n => format!("job's process + {n} workers"),
        };
        let peaks: Vec<String> = run.worker_peak_bytes.iter().map(|b| size(*b)).collect();
        let _ = writeln!(
            md,
            "| {processes} | {:.2} s ({} run{}) | {:.2}x | {} | {} | {} |",
            run.wall_seconds,
            run.runs,
            if run.runs == 1 { "" } else { "s" },
            run.wall_seconds / alone,
            size(run.coordinator_peak_bytes),
            if peaks.is_empty() {
                "–".into()
            } else {
                peaks.join(", ")
            },
            size(run.bytes_shuffled),
        );
    }
    md.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(wall_seconds: f64, bytes_shuffled: u64) -> Measured {
        Measured {
            usage: Usage {
                wall_seconds,
                peak_rss_bytes: 900 << 20,
                ..Usage::default()
            },
            worker_peaks: vec![wall_seconds as u64 * 1024],
            bytes_shuffled,
            answer: String::new(),
        }
    }

    #[test]
    fn a_configuration_reports_its_median_run_and_its_cost_against_one_process() {
        let alone = ClusterRuns::of(0, vec![run(18.0, 0), run(17.0, 0), run(30.0, 0)]);
        assert_eq!(alone.wall_seconds, 18.0);
        let cluster = ClusterRuns::of(2, vec![run(25.0, 3 << 30), run(23.4, 2 << 30), run(9.0, 1)]);
        assert_eq!(
            (cluster.wall_seconds, cluster.bytes_shuffled),
            (23.4, 2 << 30)
        );
        assert_eq!(cluster.worker_peak_bytes, vec![23 * 1024]);
        let mut md = String::new();
        render(&[alone, cluster], &mut md);
        assert!(
            md.contains("| one process | 18.00 s (3 runs) | 1.00x |"),
            "{md}"
        );
        assert!(md.contains("| job's process + 2 workers | 23.40 s (3 runs) | 1.30x | 900.0 MiB | 23 KiB | 2048.0 MiB |"), "{md}");
    }

    #[test]
    fn only_distributed_jobs_count_towards_the_bytes_shuffled() {
        let report = serde_json::json!({"jobs": [
            {"job": "bronze_orders"},
            {"job": "silver_orders", "bytes_shuffled": 100},
            {"job": "gold_sales_dashboard", "bytes_shuffled": 23},
        ]});
        assert_eq!(bytes_shuffled(&report), 123);
    }
}
