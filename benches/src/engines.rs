//! The engines compared, and how the harness drives each one: medallion
//! through its binary, DuckDB and Spark through the Python peers in
//! `benches/peers/`, which implement the same reference pipeline
//! (`shared/pipeline-v1.md`) and answer the same check queries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::checks::check_queries;

/// Layers run in this order; in per-layer mode each as its own process that
/// reads the previous layer's tables back from storage.
pub const LAYERS: [&str; 3] = ["bronze", "silver", "gold"];

/// How an engine's pipeline is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The whole pipeline in one process, as users run it: the headline.
    OneProcess,
    /// Each layer in its own process, to see what each layer costs; it also
    /// charges every layer a start-up (Python, a JVM, a connection).
    PerLayer,
}

impl Mode {
    /// The `--mode` values: `one-process`, `per-layer` or `both`.
    pub fn parse_list(mode: &str) -> Result<Vec<Mode>> {
        Ok(match mode.trim() {
            "one-process" => vec![Mode::OneProcess],
            "per-layer" => vec![Mode::PerLayer],
            "both" => vec![Mode::OneProcess, Mode::PerLayer],
            other => bail!("unknown mode `{other}`; modes: one-process, per-layer, both"),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::OneProcess => "one process",
            Mode::PerLayer => "per layer",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Medallion,
    Duckdb,
    Spark,
}

impl Engine {
    pub fn parse_list(list: &str) -> Result<Vec<Engine>> {
        let mut engines = Vec::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let engine = match name {
                "medallion" => Engine::Medallion,
                "duckdb" => Engine::Duckdb,
                "spark" => Engine::Spark,
                other => bail!("unknown engine `{other}`; engines: medallion, duckdb, spark"),
            };
            if !engines.contains(&engine) {
                engines.push(engine);
            }
        }
        if engines.is_empty() {
            bail!("--engines names no engine; e.g. --engines medallion,duckdb");
        }
        Ok(engines)
    }

    pub fn name(self) -> &'static str {
        match self {
            Engine::Medallion => "medallion",
            Engine::Duckdb => "duckdb",
            Engine::Spark => "spark",
        }
    }

    /// What the engine writes, for the report.
    pub fn output(self) -> &'static str {
        match self {
            Engine::Medallion => "Iceberg (SQL catalog), zstd",
            Engine::Duckdb => "Parquet, zstd",
            Engine::Spark => "Parquet, zstd, local[2]",
        }
    }

    fn peer_script(self) -> Option<&'static str> {
        match self {
            Engine::Medallion => None,
            Engine::Duckdb => Some("duckdb_pipeline.py"),
            Engine::Spark => Some("spark_pipeline.py"),
        }
    }
}

/// Where the programs and data are.
#[derive(Debug, Clone)]
pub struct Setup {
    pub medallion_bin: PathBuf,
    pub python: PathBuf,
    pub peers_dir: PathBuf,
    pub pipeline_dir: PathBuf,
    /// Holds `tpch/orders/` and `tpch/customer/`.
    pub raw_dir: PathBuf,
    /// Passed to medallion as its memory pool (`--memory-limit`).
    pub memory_limit: Option<String>,
}

impl Setup {
    /// A `medallion` command that sees only the harness's settings: every
    /// MEDALLION_* variable of the caller is removed and the working folder
    /// is `work_dir`, so no stray medallion.yaml or catalog URI applies.
    pub fn medallion(&self, work_dir: &Path) -> Command {
        let mut command = Command::new(&self.medallion_bin);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("MEDALLION_") {
                command.env_remove(key);
            }
        }
        command
            .current_dir(work_dir)
            .env("MEDALLION_LAKEHOUSE", work_dir.join("lakehouse"))
            .env("MEDALLION_RAW", &self.raw_dir)
            .env("MEDALLION_SPILL_DIR", work_dir.join("spill"))
            .arg("--quiet");
        if let Some(limit) = &self.memory_limit {
            command.env("MEDALLION_MEMORY_LIMIT", limit);
        }
        command
    }

    /// The engine's peer script, run in `work_dir`.
    pub fn peer(&self, engine: Engine, work_dir: &Path) -> Command {
        let script = self
            .peers_dir
            .join(engine.peer_script().expect("peers have a script"));
        let mut command = Command::new(&self.python);
        command.current_dir(work_dir).arg(script);
        command
    }

    /// The command that runs one layer of the pipeline, writing under `work_dir`.
    pub fn layer_command(
        &self,
        engine: Engine,
        layer: &str,
        work_dir: &Path,
        job_id: &str,
    ) -> Command {
        self.run_command(engine, Some(layer), work_dir, job_id)
    }

    /// The command that runs the whole pipeline in one process, the way
    /// users run it, writing the same tables as the three layer commands.
    pub fn pipeline_command(&self, engine: Engine, work_dir: &Path, job_id: &str) -> Command {
        self.run_command(engine, None, work_dir, job_id)
    }

    /// One layer, or with `None` every layer in one process.
    fn run_command(
        &self,
        engine: Engine,
        layer: Option<&str>,
        work_dir: &Path,
        job_id: &str,
    ) -> Command {
        match engine {
            Engine::Medallion => {
                // medallion runs a folder's jobs in dependency order, so the
                // pipeline folder is the whole pipeline and a subfolder one layer.
                let target = match layer {
                    Some(layer) => self.pipeline_dir.join(layer),
                    None => self.pipeline_dir.clone(),
                };
                let mut command = self.medallion(work_dir);
                command
                    .arg("--json")
                    .arg("run")
                    .arg(target)
                    .arg("--job-id")
                    .arg(job_id);
                command
            }
            Engine::Duckdb | Engine::Spark => {
                let mut command = self.peer(engine, work_dir);
                command
                    .arg("run")
                    .arg("--layer")
                    .arg(layer.unwrap_or("all"))
                    .arg("--raw")
                    .arg(&self.raw_dir)
                    .arg("--out")
                    .arg(work_dir.join("tables"))
                    .arg("--job-id")
                    .arg(job_id)
                    // The peers run the pipeline's SQL files, not copies.
                    .arg("--pipeline")
                    .arg(&self.pipeline_dir);
                command
            }
        }
    }

    /// Has the engine answer every check query into `<results_dir>/<name>.csv`.
    pub fn dump_results(&self, engine: Engine, work_dir: &Path, results_dir: &Path) -> Result<()> {
        std::fs::create_dir_all(results_dir)
            .with_context(|| format!("cannot create {}", results_dir.display()))?;
        match engine {
            Engine::Medallion => {
                for query in check_queries() {
                    let path = results_dir.join(format!("{}.csv", query.name));
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut command = self.medallion(work_dir);
                    command
                        .args(["sql", "--format", "csv"])
                        .arg(&query.sql)
                        .stdout(file);
                    run_quietly(&mut command)?;
                }
            }
            Engine::Duckdb | Engine::Spark => {
                let queries: Vec<_> = check_queries()
                    .iter()
                    .map(|q| serde_json::json!({"name": q.name, "sql": q.sql}))
                    .collect();
                let queries_path = results_dir.join("queries.json");
                std::fs::write(&queries_path, serde_json::to_vec_pretty(&queries)?)?;
                let mut command = self.peer(engine, work_dir);
                command
                    .arg("dump")
                    .arg("--out")
                    .arg(work_dir.join("tables"))
                    .arg("--queries")
                    .arg(&queries_path)
                    .arg("--results")
                    .arg(results_dir);
                run_quietly(&mut command)?;
            }
        }
        Ok(())
    }

    /// The engine's version, e.g. `medallion 0.1.0` or `duckdb 1.5.5`.
    pub fn version(&self, engine: Engine) -> Result<String> {
        let output = match engine {
            Engine::Medallion => Command::new(&self.medallion_bin).arg("--version").output(),
            Engine::Duckdb | Engine::Spark => {
                self.peer(engine, Path::new(".")).arg("version").output()
            }
        }
        .with_context(|| format!("cannot start {}", engine.name()))?;
        if !output.status.success() {
            bail!(
                "{} is not usable: {}{}",
                engine.name(),
                String::from_utf8_lossy(&output.stderr).trim(),
                match engine {
                    Engine::Medallion =>
                        "\nbuild it with `cargo build --release -p medallion-engine` or pass --medallion-bin",
                    Engine::Duckdb => "\ninstall it with `pip install -r benches/requirements.txt`",
                    Engine::Spark =>
                        "\ninstall it with `pip install -r benches/requirements-spark.txt` (needs Java 17)",
                }
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }
}

/// Runs an unmeasured helper command; a failure quotes its stderr.
fn run_quietly(command: &mut Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Seconds per job from medallion's `--json` run report, to see which job
/// dominates a layer.
pub fn medallion_job_seconds(run_report_json: &str) -> Result<Vec<(String, f64)>> {
    #[derive(Deserialize)]
    struct Job {
        job: String,
        seconds: f64,
    }
    #[derive(Deserialize)]
    struct RunReport {
        jobs: Vec<Job>,
    }
    let report: RunReport =
        serde_json::from_str(run_report_json).context("medallion --json printed no run report")?;
    Ok(report
        .jobs
        .into_iter()
        .map(|j| (j.job, j.seconds))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_lists_are_parsed_and_checked() {
        assert_eq!(
            Engine::parse_list("medallion, duckdb,medallion").unwrap(),
            vec![Engine::Medallion, Engine::Duckdb]
        );
        assert!(Engine::parse_list("polars").is_err());
        assert!(Engine::parse_list(",").is_err());
    }

    #[test]
    fn both_modes_are_the_default_and_one_process_comes_first() {
        assert_eq!(
            Mode::parse_list("both").unwrap(),
            vec![Mode::OneProcess, Mode::PerLayer]
        );
        assert_eq!(Mode::parse_list("per-layer").unwrap(), vec![Mode::PerLayer]);
        let error = Mode::parse_list("all").unwrap_err().to_string();
        assert!(error.contains("one-process, per-layer, both"), "{error}");
    }

    fn setup() -> Setup {
        Setup {
            medallion_bin: "/bin/medallion".into(),
            python: "python3".into(),
            peers_dir: "/peers".into(),
            pipeline_dir: "/jobs/reference".into(),
            raw_dir: "/raw".into(),
            memory_limit: None,
        }
    }

    fn args(command: &Command) -> Vec<String> {
        command
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn one_process_runs_the_whole_pipeline_folder_with_medallion() {
        let setup = setup();
        let command = setup.pipeline_command(Engine::Medallion, Path::new("/w"), "id");
        assert_eq!(
            args(&command),
            [
                "--quiet",
                "--json",
                "run",
                "/jobs/reference",
                "--job-id",
                "id"
            ]
        );
        let layer = setup.layer_command(Engine::Medallion, "silver", Path::new("/w"), "id");
        assert!(args(&layer).contains(&"/jobs/reference/silver".to_string()));
    }

    #[test]
    fn one_process_asks_the_peers_for_every_layer() {
        let setup = setup();
        for engine in [Engine::Duckdb, Engine::Spark] {
            let command = args(&setup.pipeline_command(engine, Path::new("/w"), "id"));
            let layer = command.iter().position(|a| a == "--layer").unwrap();
            assert_eq!(command[layer + 1], "all");
            let command = args(&setup.layer_command(engine, "gold", Path::new("/w"), "id"));
            let layer = command.iter().position(|a| a == "--layer").unwrap();
            assert_eq!(command[layer + 1], "gold");
        }
    }

    #[test]
    fn job_seconds_come_from_the_run_report() {
        let json = r#"{"job_id":"x","jobs":[{"job":"bronze_orders","table":"bronze.orders","status":"committed","seconds":1.5}],"seconds":1.6,"error":null}"#;
        assert_eq!(
            medallion_job_seconds(json).unwrap(),
            vec![("bronze_orders".to_string(), 1.5)]
        );
    }
}
