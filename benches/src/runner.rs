//! One benchmark: raw data, then every run of every engine in every mode
//! (engines take turns, so a slow drift of the machine affects all of them
//! alike), each followed by the results check.

use std::path::Path;

use anyhow::{Context, Result};

use crate::checks::Results;
use crate::engines::{Engine, LAYERS, Mode, Setup, medallion_job_seconds};
use crate::machine::{Machine, load_average};
use crate::measure::{Usage, run_measured};
use crate::report::{EngineReport, LayerUsage, PipelineRun, Report, RunRecord, Verdict};

const METHOD: &str = "Two modes. One process (the headline, how users run a pipeline): each \
engine runs the whole pipeline in one process (medallion: `medallion run` of the pipeline \
folder; DuckDB: one connection; Spark: one SparkSession), bronze then silver then gold. Per \
layer: each layer (bronze, silver, gold) runs as its own process, which charges every layer a \
start-up (Python, a connection, a JVM); end to end is the sum of the layers' wall time, CPU \
time and bytes, and the largest layer's peak memory. In both modes each layer reads the \
previous layer's tables back from storage. Peak memory is the sum of the resident set \
sizes of the whole process tree (Spark: Python driver plus JVM), sampled every 20 ms; CPU is \
user plus system time of the tree (wait4); read and written are the bytes through read and \
write system calls (/proc/<pid>/io rchar and wchar, page cache included). Engines take turns \
within each run and mode. After every run each engine answers the same check queries; an engine whose \
results differ from the reference gets no time in this report.";

/// What one engine did so far.
struct Progress {
    engine: Engine,
    version: String,
    runs: Vec<RunRecord>,
    one_process_runs: Vec<PipelineRun>,
    results: Option<Results>,
    verdict: Option<Verdict>,
}

/// What one run measured, by mode.
enum Measured {
    OneProcess(PipelineRun),
    PerLayer(RunRecord),
}

impl Progress {
    /// Keeps a run's numbers; results that differ from the engine's first
    /// run (in either mode) make it differ.
    fn record(&mut self, label: &str, measured: Measured, results: Results) {
        if let Some(earlier) = &self.results
            && earlier != &results
        {
            let mut differences = results.differences(earlier);
            differences.insert(0, format!("{label} differs from the first run"));
            self.verdict = Some(Verdict::Differs { differences });
        }
        match measured {
            Measured::OneProcess(run) => self.one_process_runs.push(run),
            Measured::PerLayer(run) => self.runs.push(run),
        }
        self.results.get_or_insert(results);
    }
}

pub fn benchmark(
    setup: &Setup,
    engines: &[Engine],
    modes: &[Mode],
    scale: f64,
    runs: usize,
    work_dir: &Path,
) -> Result<Report> {
    let mut machine = Machine::describe();
    let started_at = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S UTC")
        .to_string();
    let mut progress = Vec::new();
    for &engine in engines {
        progress.push(Progress {
            engine,
            version: setup.version(engine)?,
            runs: Vec::new(),
            one_process_runs: Vec::new(),
            results: None,
            verdict: None,
        });
    }
    // medallion generates the raw data for everyone, also when it is not compared.
    let (orders_rows, customer_rows) = generate_raw(setup, scale, work_dir)?;
    let raw_bytes = folder_bytes(&setup.raw_dir.join("tpch"));

    for run in 1..=runs {
        for &mode in modes {
            for state in progress.iter_mut().filter(|p| p.verdict.is_none()) {
                let label = format!("run {run} ({})", mode.name());
                eprintln!(
                    "run {run}/{runs} ({}): {}",
                    mode.name(),
                    state.engine.name()
                );
                match run_once(setup, state.engine, mode, run, work_dir) {
                    Ok((measured, results)) => state.record(&label, measured, results),
                    Err(error) => {
                        eprintln!("{} failed: {error:#}", state.engine.name());
                        state.verdict = Some(Verdict::Failed {
                            error: format!("{label}: {error:#}"),
                        });
                    }
                }
            }
        }
    }
    machine.load_after = load_average();

    let reference = progress
        .iter()
        .filter(|p| p.verdict.is_none() && p.results.is_some())
        .min_by_key(|p| p.engine != Engine::Medallion)
        .map(|p| p.engine);
    let reference_results = reference.and_then(|r| {
        progress
            .iter()
            .find(|p| p.engine == r)
            .and_then(|p| p.results.clone())
    });
    let engines = progress
        .into_iter()
        .map(|state| {
            let verdict = match (state.verdict, &state.results, &reference_results) {
                (Some(verdict), _, _) => verdict,
                (None, Some(ours), Some(theirs)) => {
                    let mut differences = ours.differences(theirs);
                    differences.extend(ours.invariant_violation());
                    if !differences.is_empty() {
                        Verdict::Differs { differences }
                    } else if Some(state.engine) == reference {
                        Verdict::Reference
                    } else {
                        Verdict::Same
                    }
                }
                _ => Verdict::Failed {
                    error: "no results".into(),
                },
            };
            EngineReport {
                engine: state.engine.name().into(),
                output: state.engine.output().into(),
                version: state.version,
                verdict,
                runs: state.runs,
                one_process_runs: state.one_process_runs,
                results: state.results,
            }
        })
        .collect();
    let mut report = Report {
        scale,
        runs,
        started_at,
        machine,
        method: METHOD.into(),
        orders_rows,
        customer_rows,
        raw_bytes,
        memory_limit: setup.memory_limit.clone(),
        reference: reference.map_or("none", Engine::name).into(),
        engines,
        headline: None,
        second_load: None,
        second_load_duckdb: None,
        cluster: None,
    };
    report.headline = report.compute_headline();
    Ok(report)
}

/// Runs one engine's pipeline in `mode` into a fresh folder, then has it
/// answer the check queries.
fn run_once(
    setup: &Setup,
    engine: Engine,
    mode: Mode,
    run: usize,
    work_dir: &Path,
) -> Result<(Measured, Results)> {
    let engine_dir = work_dir.join("runs").join(engine.name());
    if engine_dir.exists() {
        std::fs::remove_dir_all(&engine_dir)
            .with_context(|| format!("cannot clear {}", engine_dir.display()))?;
    }
    std::fs::create_dir_all(&engine_dir)
        .with_context(|| format!("cannot create {}", engine_dir.display()))?;
    let logs = work_dir.join("logs").join(engine.name());
    std::fs::create_dir_all(&logs)?;
    let job_id = format!("bench-run-{run}");
    let measured = match mode {
        Mode::OneProcess => Measured::OneProcess(run_pipeline(
            setup,
            engine,
            &engine_dir,
            &logs.join(format!("run{run}-pipeline")),
            &job_id,
        )?),
        Mode::PerLayer => {
            Measured::PerLayer(run_layers(setup, engine, &engine_dir, &logs, run, &job_id)?)
        }
    };
    let results_dir = engine_dir.join("results");
    setup
        .dump_results(engine, &engine_dir, &results_dir)
        .with_context(|| format!("{} answering the check queries", engine.name()))?;
    let results = Results::read(&results_dir)?;
    Ok((measured, results))
}

/// The whole pipeline as one measured process.
fn run_pipeline(
    setup: &Setup,
    engine: Engine,
    engine_dir: &Path,
    log_prefix: &Path,
    job_id: &str,
) -> Result<PipelineRun> {
    let mut command = setup.pipeline_command(engine, engine_dir, job_id);
    let usage = run_measured(&mut command, log_prefix)
        .with_context(|| format!("{} whole pipeline in one process", engine.name()))?;
    print_usage("all", &usage);
    Ok(PipelineRun {
        usage,
        job_seconds: job_seconds(engine, log_prefix)?,
    })
}

/// The three layers, each as its own measured process.
fn run_layers(
    setup: &Setup,
    engine: Engine,
    engine_dir: &Path,
    logs: &Path,
    run: usize,
    job_id: &str,
) -> Result<RunRecord> {
    let mut record = RunRecord {
        layers: Vec::new(),
        job_seconds: Vec::new(),
    };
    for layer in LAYERS {
        let log_prefix = logs.join(format!("run{run}-{layer}"));
        let mut command = setup.layer_command(engine, layer, engine_dir, job_id);
        let usage = run_measured(&mut command, &log_prefix)
            .with_context(|| format!("{} {layer} layer", engine.name()))?;
        print_usage(layer, &usage);
        record.job_seconds.extend(job_seconds(engine, &log_prefix)?);
        record.layers.push(LayerUsage {
            layer: layer.into(),
            usage,
        });
    }
    Ok(record)
}

fn print_usage(step: &str, usage: &Usage) {
    eprintln!(
        "  {step:<6} {:>7.2} s wall {:>7.2} s CPU {:>6.0} MiB peak",
        usage.wall_seconds,
        usage.cpu_seconds,
        usage.peak_rss_bytes as f64 / 1048576.0
    );
}

/// medallion's per-job seconds from the run's `--json` output; the peers
/// report none.
fn job_seconds(engine: Engine, log_prefix: &Path) -> Result<Vec<(String, f64)>> {
    if engine != Engine::Medallion {
        return Ok(Vec::new());
    }
    let out = std::fs::read_to_string(log_prefix.with_extension("out"))?;
    medallion_job_seconds(&out)
}

/// `medallion generate`, kept between benchmarks per scale.
fn generate_raw(setup: &Setup, scale: f64, work_dir: &Path) -> Result<(u64, u64)> {
    std::fs::create_dir_all(work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    eprintln!(
        "raw TPC-H data at scale {scale} in {}",
        setup.raw_dir.display()
    );
    let output = setup
        .medallion(work_dir)
        .arg("--json")
        .arg("generate")
        .arg("--scale")
        .arg(scale.to_string())
        .output()
        .context("cannot start medallion to generate the raw data")?;
    if !output.status.success() {
        anyhow::bail!(
            "medallion generate failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .context("medallion generate --json printed no report")?;
    let rows = |key: &str| json.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
    Ok((rows("orders_rows"), rows("customer_rows")))
}

fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => folder_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::tests::sample_results;

    fn progress() -> Progress {
        Progress {
            engine: Engine::Duckdb,
            version: "duckdb 1.5.5".into(),
            runs: Vec::new(),
            one_process_runs: Vec::new(),
            results: None,
            verdict: None,
        }
    }

    fn one_process() -> Measured {
        Measured::OneProcess(PipelineRun {
            usage: Usage::default(),
            job_seconds: Vec::new(),
        })
    }

    fn per_layer() -> Measured {
        Measured::PerLayer(RunRecord {
            layers: Vec::new(),
            job_seconds: Vec::new(),
        })
    }

    #[test]
    fn each_mode_keeps_its_own_runs() {
        let mut state = progress();
        state.record("run 1 (one process)", one_process(), sample_results());
        state.record("run 1 (per layer)", per_layer(), sample_results());
        state.record("run 2 (one process)", one_process(), sample_results());
        assert_eq!(state.one_process_runs.len(), 2);
        assert_eq!(state.runs.len(), 1);
        assert_eq!(state.verdict, None);
    }

    #[test]
    fn results_that_differ_between_the_modes_make_the_engine_differ() {
        let mut state = progress();
        state.record("run 1 (one process)", one_process(), sample_results());
        let mut other = sample_results();
        other.sales_dashboard.hash = "cc".into();
        state.record("run 1 (per layer)", per_layer(), other);
        let Some(Verdict::Differs { differences }) = &state.verdict else {
            panic!("{:?}", state.verdict);
        };
        assert_eq!(
            differences[0],
            "run 1 (per layer) differs from the first run"
        );
        assert!(
            differences[1].contains("sales_dashboard"),
            "{differences:?}"
        );
    }
}
