//! What a benchmark found: the data kept in `report.json`, and `report.md`,
//! the tables people read (the headline ratio, medians with their spread in
//! both modes, ratios against medallion, the results check and the issue's
//! targets).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::checks::Results;
use crate::cluster::ClusterRuns;
use crate::engines::Mode;
use crate::machine::Machine;
use crate::measure::Usage;
use crate::second_load::SecondLoad;
use crate::second_load_duckdb::DuckdbSecondLoad;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub scale: f64,
    pub runs: usize,
    pub started_at: String,
    pub machine: Machine,
    /// How the harness ran and measured, in words.
    pub method: String,
    pub orders_rows: u64,
    pub customer_rows: u64,
    pub raw_bytes: u64,
    /// medallion's memory pool, when set.
    pub memory_limit: Option<String>,
    /// The engine the others' results are compared with.
    pub reference: String,
    pub engines: Vec<EngineReport>,
    /// medallion against DuckDB in the headline mode; None without both.
    /// Derived from `engines`, kept for readers of report.json.
    #[serde(default)]
    pub headline: Option<Headline>,
    /// `--loads 2`: medallion's second load in each write mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_load: Option<Vec<SecondLoad>>,
    /// `--loads 2` with duckdb: its second load, a MERGE INTO on Iceberg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_load_duckdb: Option<DuckdbSecondLoad>,
    /// `--workers`: silver and gold on one process and on clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<Vec<ClusterRuns>>,
}

/// medallion's medians divided by DuckDB's: below 1, medallion is faster
/// or smaller.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub mode: Mode,
    pub wall: f64,
    pub cpu: f64,
    pub peak_memory: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EngineReport {
    pub engine: String,
    pub output: String,
    pub version: String,
    pub verdict: Verdict,
    /// Per-layer runs. The name predates the modes; report.json keeps it.
    pub runs: Vec<RunRecord>,
    /// One-process runs: the whole pipeline in one process.
    #[serde(default)]
    pub one_process_runs: Vec<PipelineRun>,
    pub results: Option<Results>,
}

/// Whether the engine's numbers may be reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Verdict {
    /// The results the others are compared with (checked against the
    /// pipeline's invariant).
    Reference,
    Same,
    Differs {
        differences: Vec<String>,
    },
    Failed {
        error: String,
    },
}

impl Verdict {
    pub fn reportable(&self) -> bool {
        matches!(self, Verdict::Reference | Verdict::Same)
    }

    fn describe(&self) -> String {
        match self {
            Verdict::Reference => "reference".into(),
            Verdict::Same => "same".into(),
            Verdict::Differs { differences } => {
                format!("DIFFER ({} differences)", differences.len())
            }
            Verdict::Failed { .. } => "FAILED".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub layers: Vec<LayerUsage>,
    /// Seconds per job as medallion reported them (`--json`), if medallion.
    pub job_seconds: Vec<(String, f64)>,
}

impl RunRecord {
    pub fn total(&self) -> Usage {
        Usage::sequence(&self.layers.iter().map(|l| l.usage).collect::<Vec<_>>())
    }
}

/// One run of the whole pipeline in one process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PipelineRun {
    pub usage: Usage,
    /// Seconds per job as medallion reported them (`--json`), if medallion.
    pub job_seconds: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerUsage {
    pub layer: String,
    pub usage: Usage,
}

/// Median and range of one measure over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Medians and ranges of every measure, over the runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub wall_seconds: Spread,
    pub cpu_seconds: Spread,
    pub peak_rss_bytes: Spread,
    pub read_bytes: Spread,
    pub written_bytes: Spread,
}

impl Summary {
    pub fn of(usages: &[Usage]) -> Option<Summary> {
        let spread = |f: fn(&Usage) -> f64| Spread::of(&usages.iter().map(f).collect::<Vec<_>>());
        Some(Summary {
            wall_seconds: spread(|u| u.wall_seconds)?,
            cpu_seconds: spread(|u| u.cpu_seconds)?,
            peak_rss_bytes: spread(|u| u.peak_rss_bytes as f64)?,
            read_bytes: spread(|u| u.read_bytes as f64)?,
            written_bytes: spread(|u| u.written_bytes as f64)?,
        })
    }
}

impl EngineReport {
    /// End to end over the runs of `mode`; None when the engine's numbers
    /// are not reported or it has no such runs.
    pub fn total(&self, mode: Mode) -> Option<Summary> {
        if !self.verdict.reportable() {
            return None;
        }
        let usages: Vec<Usage> = match mode {
            Mode::OneProcess => self.one_process_runs.iter().map(|r| r.usage).collect(),
            Mode::PerLayer => self.runs.iter().map(RunRecord::total).collect(),
        };
        Summary::of(&usages)
    }

    /// medallion's own timing of its jobs, one list per run of `mode`.
    fn job_seconds(&self, mode: Mode) -> Vec<&[(String, f64)]> {
        match mode {
            Mode::OneProcess => self
                .one_process_runs
                .iter()
                .map(|r| r.job_seconds.as_slice())
                .collect(),
            Mode::PerLayer => self.runs.iter().map(|r| r.job_seconds.as_slice()).collect(),
        }
    }

    /// One layer over the runs; None when not reported.
    pub fn layer(&self, layer: &str) -> Option<Summary> {
        if !self.verdict.reportable() {
            return None;
        }
        let usages: Vec<Usage> = self
            .runs
            .iter()
            .filter_map(|r| r.layers.iter().find(|l| l.layer == layer).map(|l| l.usage))
            .collect();
        Summary::of(&usages)
    }
}

pub fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / (1024.0 * 1024.0))
}

fn seconds(spread: Spread) -> String {
    format!("{:.2} ({:.2}–{:.2})", spread.median, spread.min, spread.max)
}

fn memory(spread: Spread) -> String {
    format!(
        "{} ({:.0}–{:.0})",
        mib(spread.median),
        spread.min / 1048576.0,
        spread.max / 1048576.0
    )
}

/// `value / reference` as `1.23x`.
fn ratio(value: f64, reference: Option<f64>) -> String {
    match reference {
        Some(r) if r > 0.0 => format!("{:.2}x", value / r),
        _ => "-".into(),
    }
}

impl Report {
    fn engine(&self, name: &str) -> Option<&EngineReport> {
        self.engines.iter().find(|e| e.engine == name)
    }

    /// The modes that were run, one process first.
    pub fn modes(&self) -> Vec<Mode> {
        let ran = |mode: Mode| match mode {
            Mode::OneProcess => self.engines.iter().any(|e| !e.one_process_runs.is_empty()),
            Mode::PerLayer => self.engines.iter().any(|e| !e.runs.is_empty()),
        };
        [Mode::OneProcess, Mode::PerLayer]
            .into_iter()
            .filter(|&m| ran(m))
            .collect()
    }

    /// One process is how users run a pipeline, so it is the headline when
    /// it was run; per layer otherwise (`--mode per-layer`).
    pub fn headline_mode(&self) -> Mode {
        self.modes().first().copied().unwrap_or(Mode::OneProcess)
    }

    /// medallion / DuckDB in the headline mode, when both are reported.
    pub fn compute_headline(&self) -> Option<Headline> {
        let mode = self.headline_mode();
        let medallion = self.engine("medallion")?.total(mode)?;
        let duckdb = self.engine("duckdb")?.total(mode)?;
        let divide = |ours: Spread, theirs: Spread| ours.median / theirs.median;
        Some(Headline {
            mode,
            wall: divide(medallion.wall_seconds, duckdb.wall_seconds),
            cpu: divide(medallion.cpu_seconds, duckdb.cpu_seconds),
            peak_memory: divide(medallion.peak_rss_bytes, duckdb.peak_rss_bytes),
        })
    }

    pub fn render_markdown(&self) -> String {
        let mut md = String::new();
        self.render_header(&mut md);
        self.render_headline(&mut md);
        self.render_end_to_end(&mut md);
        self.render_layers(&mut md);
        self.render_jobs(&mut md);
        self.render_results(&mut md);
        if let Some(loads) = &self.second_load {
            crate::second_load::render(loads, &mut md);
            if let Some(duckdb) = &self.second_load_duckdb {
                crate::second_load_duckdb::render(duckdb, loads, &mut md);
            }
        }
        if let Some(cluster) = &self.cluster {
            crate::cluster::render(cluster, &mut md);
        }
        self.render_targets(&mut md);
        md
    }

    /// The title, the data, the machine and the method.
    fn render_header(&self, md: &mut String) {
        let m = &self.machine;
        let _ = writeln!(
            md,
            "# medallion benchmark: reference pipeline v1, TPC-H scale {}\n",
            self.scale
        );
        let _ = writeln!(
            md,
            "{} orders and {} customers ({} of raw Parquet). {} run(s) per engine; \
             each cell is the median, with the fastest and slowest run in parentheses.\n",
            self.orders_rows,
            self.customer_rows,
            mib(self.raw_bytes as f64),
            self.runs
        );
        let _ = writeln!(
            md,
            "Machine: {} cores ({}), {} memory, Linux {}. Load average (1 min) {:.2} before, \
             {:.2} after. Started {}.{}\n",
            m.cores,
            m.cpu_model,
            mib(m.memory_bytes as f64),
            m.kernel,
            m.load_before,
            m.load_after,
            self.started_at,
            self.memory_limit
                .as_ref()
                .map(|l| format!(" medallion memory pool: {l}."))
                .unwrap_or_default()
        );
        let _ = writeln!(md, "{}\n", self.method);
    }

    /// The one sentence to quote: medallion against DuckDB.
    fn render_headline(&self, md: &mut String) {
        let Some(h) = self.compute_headline() else {
            return;
        };
        let _ = writeln!(
            md,
            "## Headline ({})\n\nmedallion / DuckDB, medians: wall time {:.2}x, CPU time {:.2}x, \
             peak memory {:.2}x (below 1.00x, medallion is faster or smaller).\n",
            h.mode.name(),
            h.wall,
            h.cpu,
            h.peak_memory
        );
    }

    /// Each engine's whole pipeline in each mode, against medallion's in
    /// the same mode.
    fn render_end_to_end(&self, md: &mut String) {
        md.push_str("## End to end\n\n");
        md.push_str(
            "| engine | mode | writes | wall s | time vs medallion | CPU s | peak memory | memory vs medallion | read | written | results |\n",
        );
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
        let medallion = self.engine("medallion");
        for engine in &self.engines {
            let verdict = engine.verdict.describe();
            for mode in self.modes() {
                let reference = medallion.and_then(|m| m.total(mode));
                match engine.total(mode) {
                    Some(total) => {
                        let _ = writeln!(
                            md,
                            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {verdict} |",
                            engine.engine,
                            mode.name(),
                            engine.output,
                            seconds(total.wall_seconds),
                            ratio(
                                total.wall_seconds.median,
                                reference.map(|r| r.wall_seconds.median)
                            ),
                            seconds(total.cpu_seconds),
                            memory(total.peak_rss_bytes),
                            ratio(
                                total.peak_rss_bytes.median,
                                reference.map(|r| r.peak_rss_bytes.median)
                            ),
                            mib(total.read_bytes.median),
                            mib(total.written_bytes.median),
                        );
                    }
                    None => {
                        let _ = writeln!(
                            md,
                            "| {} | {} | {} | not reported | | | | | | | {verdict} |",
                            engine.engine,
                            mode.name(),
                            engine.output
                        );
                    }
                }
            }
        }
        md.push_str(
            "\nRatios are the engine's median divided by medallion's in the same mode: above 1.00x, medallion is faster or smaller.\n\n",
        );
    }

    /// Each engine's layers (bronze, silver, gold).
    fn render_layers(&self, md: &mut String) {
        if !self.modes().contains(&Mode::PerLayer) {
            return;
        }
        md.push_str("## Per layer (per-layer mode)\n\n");
        md.push_str("| engine | layer | wall s | CPU s | peak memory | read | written |\n");
        md.push_str("|---|---|---|---|---|---|---|\n");
        for engine in &self.engines {
            for layer in crate::engines::LAYERS {
                if let Some(s) = engine.layer(layer) {
                    let _ = writeln!(
                        md,
                        "| {} | {layer} | {} | {} | {} | {} | {} |",
                        engine.engine,
                        seconds(s.wall_seconds),
                        seconds(s.cpu_seconds),
                        memory(s.peak_rss_bytes),
                        mib(s.read_bytes.median),
                        mib(s.written_bytes.median)
                    );
                }
            }
        }
    }

    /// medallion's own timing of each job, in the headline mode.
    fn render_jobs(&self, md: &mut String) {
        let mode = self.headline_mode();
        let runs = self
            .engine("medallion")
            .map(|m| m.job_seconds(mode))
            .unwrap_or_default();
        if let Some(first) = runs.first()
            && !first.is_empty()
        {
            let _ = writeln!(
                md,
                "\n## medallion jobs ({}; seconds as medallion reports them, median)\n",
                mode.name()
            );
            md.push_str("| job | seconds |\n|---|---|\n");
            for (job, _) in first.iter() {
                let values: Vec<f64> = runs
                    .iter()
                    .flat_map(|r| r.iter())
                    .filter(|(j, _)| j == job)
                    .map(|(_, s)| *s)
                    .collect();
                if let Some(spread) = Spread::of(&values) {
                    let _ = writeln!(md, "| {job} | {} |", seconds(spread));
                }
            }
        }
    }

    fn render_results(&self, md: &mut String) {
        let _ = writeln!(md, "\n## Results check (reference: {})\n", self.reference);
        let _ = write!(md, "| |");
        for engine in &self.engines {
            let _ = write!(md, " {} |", engine.engine);
        }
        md.push('\n');
        md.push_str(&"|---".repeat(self.engines.len() + 1));
        md.push_str("|\n");
        let mut row = |label: &str, cell: &dyn Fn(&Results) -> String| {
            let _ = write!(md, "| {label} |");
            for engine in &self.engines {
                let value = engine.results.as_ref().map_or("-".into(), cell);
                let _ = write!(md, " {value} |");
            }
            md.push('\n');
        };
        for table in crate::checks::TABLES {
            row(&format!("rows {table}"), &|r| {
                r.row_counts
                    .get(table)
                    .map_or("-".into(), |n| n.to_string())
            });
        }
        row("dq_report rejections", &|r| {
            r.dq_report
                .iter()
                .map(|(t, c, n)| format!("{t}/{c}={n}"))
                .collect::<Vec<_>>()
                .join(" ")
        });
        row("sum customer_metrics.total_spend", &|r| {
            r.customer_metrics
                .sums
                .get("total_spend")
                .cloned()
                .unwrap_or_default()
        });
        row("sum sales_dashboard.revenue", &|r| {
            r.sales_dashboard
                .sums
                .get("revenue")
                .cloned()
                .unwrap_or_default()
        });
        row("hash gold.customer_metrics", &|r| {
            r.customer_metrics.hash[..16].to_string()
        });
        row("hash gold.sales_dashboard", &|r| {
            r.sales_dashboard.hash[..16].to_string()
        });
        let _ = write!(md, "| verdict |");
        for engine in &self.engines {
            let _ = write!(md, " {} |", engine.verdict.describe());
        }
        md.push('\n');
        for engine in &self.engines {
            match &engine.verdict {
                Verdict::Differs { differences } => {
                    let _ = writeln!(
                        md,
                        "\n{} differs from {}; its times are not reported:\n",
                        engine.engine, self.reference
                    );
                    for line in differences {
                        let _ = writeln!(md, "- {line}");
                    }
                }
                Verdict::Failed { error } => {
                    let _ = writeln!(md, "\n{} failed: {error}", engine.engine);
                }
                _ => {}
            }
        }
    }

    /// The targets, judged in the headline mode.
    fn render_targets(&self, md: &mut String) {
        let mode = self.headline_mode();
        let total = |name: &str| self.engine(name).and_then(|e| e.total(mode));
        let Some(medallion) = total("medallion") else {
            return;
        };
        let _ = writeln!(md, "\n## Targets (issue 6; {})\n", mode.name());
        let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
        if let Some(duckdb) = total("duckdb") {
            let ok = medallion.wall_seconds.median < duckdb.wall_seconds.median;
            let _ = writeln!(
                md,
                "- Faster than DuckDB end to end: {} (medallion {:.2} s, DuckDB {:.2} s).",
                verdict(ok),
                medallion.wall_seconds.median,
                duckdb.wall_seconds.median
            );
            let ok = medallion.peak_rss_bytes.median < duckdb.peak_rss_bytes.median;
            let _ = writeln!(
                md,
                "- Less peak memory than DuckDB (the target at scale 10): {} (medallion {}, DuckDB {}).",
                verdict(ok),
                mib(medallion.peak_rss_bytes.median),
                mib(duckdb.peak_rss_bytes.median)
            );
        }
        if let Some(spark) = total("spark") {
            let speedup = spark.wall_seconds.median / medallion.wall_seconds.median;
            let _ = writeln!(
                md,
                "- At least 10x faster than Spark: {} ({speedup:.1}x).",
                verdict(speedup >= 10.0)
            );
        }
        if (self.scale - 1.0).abs() < f64::EPSILON {
            let ok = medallion.peak_rss_bytes.max <= 512.0 * 1048576.0;
            let _ = writeln!(
                md,
                "- Peak memory at most 512 MiB at scale 1 (every run): {} (largest run {}).",
                verdict(ok),
                mib(medallion.peak_rss_bytes.max)
            );
        }
        if let Some(limit) = &self.memory_limit {
            let ok = self
                .engine("medallion")
                .is_some_and(|e| e.verdict.reportable());
            let _ = writeln!(
                md,
                "- Completes with identical results inside a {limit} memory pool: {}.",
                verdict(ok)
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn usage(wall: f64, mib: u64) -> Usage {
        Usage {
            wall_seconds: wall,
            cpu_seconds: wall * 1.5,
            peak_rss_bytes: mib * 1048576,
            read_bytes: 100 * 1048576,
            written_bytes: 50 * 1048576,
        }
    }

    pub(crate) fn engine(name: &str, verdict: Verdict, walls: &[f64], mib: u64) -> EngineReport {
        EngineReport {
            engine: name.into(),
            output: "Parquet".into(),
            version: "1".into(),
            verdict,
            runs: walls
                .iter()
                .map(|&w| RunRecord {
                    layers: vec![
                        LayerUsage {
                            layer: "bronze".into(),
                            usage: usage(w / 2.0, mib),
                        },
                        LayerUsage {
                            layer: "silver".into(),
                            usage: usage(w / 4.0, mib / 2),
                        },
                        LayerUsage {
                            layer: "gold".into(),
                            usage: usage(w / 4.0, mib / 4),
                        },
                    ],
                    job_seconds: vec![("bronze_orders".into(), w / 3.0)],
                })
                .collect(),
            one_process_runs: Vec::new(),
            results: None,
        }
    }

    /// Adds one-process runs of these wall times and this peak memory.
    pub(crate) fn with_one_process(
        mut engine: EngineReport,
        walls: &[f64],
        mib: u64,
    ) -> EngineReport {
        engine.one_process_runs = walls
            .iter()
            .map(|&w| PipelineRun {
                usage: usage(w, mib),
                job_seconds: vec![("bronze_orders".into(), w / 4.0)],
            })
            .collect();
        engine
    }

    pub(crate) fn report(engines: Vec<EngineReport>) -> Report {
        Report {
            scale: 1.0,
            runs: 3,
            started_at: "2026-11-30T12:00:00Z".into(),
            machine: Machine {
                cores: 2,
                cpu_model: "test cpu".into(),
                memory_bytes: 24 << 30,
                kernel: "6.1".into(),
                load_before: 0.1,
                load_after: 0.2,
            },
            method: "Each layer is its own process.".into(),
            orders_rows: 1_500_000,
            customer_rows: 150_000,
            raw_bytes: 60 << 20,
            memory_limit: None,
            reference: "medallion".into(),
            engines,
            headline: None,
            second_load: None,
            second_load_duckdb: None,
            cluster: None,
        }
    }

    #[test]
    fn medians_and_spreads() {
        assert_eq!(
            Spread::of(&[3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(Spread::of(&[1.0, 4.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of(&[]), None);
    }

    #[test]
    fn the_end_to_end_table_has_medians_spreads_and_ratios() {
        let md = report(vec![
            engine("medallion", Verdict::Reference, &[2.0, 2.2, 1.8], 400),
            engine("duckdb", Verdict::Same, &[3.0, 3.1, 2.9], 600),
        ])
        .render_markdown();
        assert!(
            md.contains("| medallion | per layer | Parquet | 2.00 (1.80–2.20) | 1.00x |"),
            "{md}"
        );
        assert!(
            md.contains("| duckdb | per layer | Parquet | 3.00 (2.90–3.10) | 1.50x |"),
            "{md}"
        );
        // Peak memory is the largest layer's, and its ratio to medallion's.
        assert!(md.contains("| 600 MiB (600–600) | 1.50x |"), "{md}");
        assert!(
            md.contains("| medallion | silver | 0.50 (0.45–0.55) |"),
            "{md}"
        );
        assert!(md.contains("| bronze_orders | 0.67 (0.60–0.73) |"), "{md}");
        assert!(md.contains("- Faster than DuckDB end to end: met"), "{md}");
        assert!(md.contains("at scale 1 (every run): met"), "{md}");
        assert!(
            md.contains("Load average (1 min) 0.10 before, 0.20 after"),
            "{md}"
        );
    }

    #[test]
    fn an_engine_whose_results_differ_gets_no_time() {
        let differs = Verdict::Differs {
            differences: vec!["gold.sales_dashboard: content hash cc, reference bb".into()],
        };
        let md = report(vec![
            engine("medallion", Verdict::Reference, &[2.0], 700),
            engine("duckdb", differs, &[1.0], 100),
        ])
        .render_markdown();
        assert!(
            md.contains("| duckdb | per layer | Parquet | not reported |"),
            "{md}"
        );
        assert!(!md.contains("## Headline"), "{md}");
        assert!(!md.contains("| duckdb | bronze |"), "{md}");
        assert!(
            md.contains("- gold.sales_dashboard: content hash cc"),
            "{md}"
        );
        assert!(!md.contains("Faster than DuckDB"), "{md}");
        assert!(
            md.contains("(every run): MISSED (largest run 700 MiB)"),
            "{md}"
        );
    }

    #[test]
    fn the_headline_ratio_comes_from_the_one_process_runs() {
        // Per layer medallion looks 2x faster; in one process only 1.25x.
        let report = report(vec![
            with_one_process(
                engine("medallion", Verdict::Reference, &[2.0], 400),
                &[1.6],
                300,
            ),
            with_one_process(engine("duckdb", Verdict::Same, &[4.0], 600), &[2.0], 600),
        ]);
        let headline = report.compute_headline().unwrap();
        assert_eq!(headline.mode, Mode::OneProcess);
        assert!((headline.wall - 0.8).abs() < 1e-9, "{headline:?}");
        assert!((headline.cpu - 0.8).abs() < 1e-9, "{headline:?}");
        assert!((headline.peak_memory - 0.5).abs() < 1e-9, "{headline:?}");
        let md = report.render_markdown();
        assert!(
            md.contains(
                "## Headline (one process)\n\nmedallion / DuckDB, medians: wall time 0.80x, \
                 CPU time 0.80x, peak memory 0.50x"
            ),
            "{md}"
        );
        assert!(md.contains("## Targets (issue 6; one process)"), "{md}");
        assert!(md.contains("(medallion 1.60 s, DuckDB 2.00 s)"), "{md}");
    }

    #[test]
    fn both_modes_stand_side_by_side_per_engine() {
        let md = report(vec![
            with_one_process(
                engine("medallion", Verdict::Reference, &[2.0], 400),
                &[1.6],
                300,
            ),
            with_one_process(engine("duckdb", Verdict::Same, &[4.0], 600), &[2.0], 600),
        ])
        .render_markdown();
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| l.contains(" | one process | ") || l.contains(" | per layer | "))
            .collect();
        assert_eq!(rows.len(), 4, "{md}");
        assert!(rows[0].starts_with("| medallion | one process | Parquet | 1.60"));
        assert!(rows[1].starts_with("| medallion | per layer | Parquet | 2.00"));
        assert!(rows[2].starts_with("| duckdb | one process | Parquet | 2.00 (2.00–2.00) | 1.25x"));
        assert!(rows[3].starts_with("| duckdb | per layer | Parquet | 4.00 (4.00–4.00) | 2.00x"));
        assert!(md.contains("## Per layer (per-layer mode)"), "{md}");
        assert!(md.contains("## medallion jobs (one process;"), "{md}");
    }

    #[test]
    fn without_one_process_runs_the_headline_is_per_layer() {
        let md = report(vec![
            engine("medallion", Verdict::Reference, &[2.0], 400),
            engine("duckdb", Verdict::Same, &[4.0], 800),
        ])
        .render_markdown();
        assert!(md.contains("## Headline (per layer)"), "{md}");
        assert!(md.contains("wall time 0.50x"), "{md}");
        assert!(!md.contains("| one process |"), "{md}");
    }

    #[test]
    fn a_report_json_from_before_the_modes_still_reads() {
        let mut json = serde_json::to_value(report(vec![engine(
            "medallion",
            Verdict::Reference,
            &[2.0],
            400,
        )]))
        .unwrap();
        json.as_object_mut().unwrap().remove("headline");
        json["engines"][0]
            .as_object_mut()
            .unwrap()
            .remove("one_process_runs");
        let old: Report = serde_json::from_value(json).unwrap();
        assert_eq!(old.modes(), vec![Mode::PerLayer]);
    }
}
