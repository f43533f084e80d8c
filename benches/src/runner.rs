//! One benchmark: raw data, then every run of every engine (engines take
//! turns, so a slow drift of the machine affects all of them alike), each
//! followed by the results check.

use std::path::Path;

use anyhow::{Context, Result};

use crate::checks::Results;
use crate::engines::{Engine, LAYERS, Setup, medallion_job_seconds};
use crate::machine::{Machine, load_average};
use crate::measure::run_measured;
use crate::report::{EngineReport, LayerUsage, Report, RunRecord, Verdict};

const METHOD: &str = "Each layer (bronze, silver, gold) runs as its own process and reads the \
previous layer's tables back from storage; end to end is the sum of the layers' wall time, CPU \
time and bytes, and the largest layer's peak memory. Peak memory is the sum of the resident set \
sizes of the whole process tree (Spark: Python driver plus JVM), sampled every 20 ms; CPU is \
user plus system time of the tree (wait4); read and written are the bytes through read and \
write system calls (/proc/<pid>/io rchar and wchar, page cache included). Engines take turns \
within each run. After every run each engine answers the same check queries; an engine whose \
results differ from the reference gets no time in this report.";

/// What one engine did so far.
struct Progress {
    engine: Engine,
    version: String,
    runs: Vec<RunRecord>,
    results: Option<Results>,
    verdict: Option<Verdict>,
}

pub fn benchmark(
    setup: &Setup,
    engines: &[Engine],
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
            results: None,
            verdict: None,
        });
    }
    // medallion generates the raw data for everyone, also when it is not compared.
    let (orders_rows, customer_rows) = generate_raw(setup, scale, work_dir)?;
    let raw_bytes = folder_bytes(&setup.raw_dir.join("tpch"));

    for run in 1..=runs {
        for state in progress.iter_mut().filter(|p| p.verdict.is_none()) {
            eprintln!("run {run}/{runs}: {}", state.engine.name());
            match run_once(setup, state.engine, run, work_dir) {
                Ok((record, results)) => {
                    if let Some(earlier) = &state.results
                        && earlier != &results
                    {
                        let mut differences = results.differences(earlier);
                        differences.insert(0, format!("run {run} differs from run 1"));
                        state.verdict = Some(Verdict::Differs { differences });
                    }
                    state.runs.push(record);
                    state.results.get_or_insert(results);
                }
                Err(error) => {
                    eprintln!("{} failed: {error:#}", state.engine.name());
                    state.verdict = Some(Verdict::Failed {
                        error: format!("run {run}: {error:#}"),
                    });
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
                results: state.results,
            }
        })
        .collect();
    Ok(Report {
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
    })
}

/// Runs the three layers of one engine into a fresh folder, then has it
/// answer the check queries.
fn run_once(
    setup: &Setup,
    engine: Engine,
    run: usize,
    work_dir: &Path,
) -> Result<(RunRecord, Results)> {
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
    let mut record = RunRecord {
        layers: Vec::new(),
        job_seconds: Vec::new(),
    };
    for layer in LAYERS {
        let log_prefix = logs.join(format!("run{run}-{layer}"));
        let mut command = setup.layer_command(engine, layer, &engine_dir, &job_id);
        let usage = run_measured(&mut command, &log_prefix)
            .with_context(|| format!("{} {layer} layer", engine.name()))?;
        eprintln!(
            "  {layer:<6} {:>7.2} s wall {:>7.2} s CPU {:>6.0} MiB peak",
            usage.wall_seconds,
            usage.cpu_seconds,
            usage.peak_rss_bytes as f64 / 1048576.0
        );
        if engine == Engine::Medallion {
            let out = std::fs::read_to_string(log_prefix.with_extension("out"))?;
            record.job_seconds.extend(medallion_job_seconds(&out)?);
        }
        record.layers.push(LayerUsage {
            layer: layer.into(),
            usage,
        });
    }
    let results_dir = engine_dir.join("results");
    setup
        .dump_results(engine, &engine_dir, &results_dir)
        .with_context(|| format!("{} answering the check queries", engine.name()))?;
    let results = Results::read(&results_dir)?;
    Ok((record, results))
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
