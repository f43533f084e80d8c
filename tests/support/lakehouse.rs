//! Running the `medallion` binary against a throw-away lakehouse, with the
//! flags and environment of a catalog and storage (embedded or remote).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub struct Lakehouse {
    pub dir: tempfile::TempDir,
    /// Global flags and environment for every command (a remote catalog, S3).
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Lakehouse {
    /// A lakehouse whose commands all get `args` and `env`.
    pub fn with(args: Vec<String>, env: Vec<(String, String)>) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            args,
            env,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `medallion --lakehouse <dir> --quiet <args>`, with this lakehouse's
    /// flags and environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_medallion"));
        command
            .arg("--lakehouse")
            .arg(self.path())
            .arg("--quiet")
            .args(&self.args)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("MEDALLION_CONFIG")
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs `medallion --lakehouse <dir> --quiet <args>`.
    pub fn medallion(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("the medallion binary runs")
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.medallion(args);
        assert!(
            out.status.success(),
            "medallion {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs a command that must fail; returns its stderr, which must be one
    /// `error:` line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.medallion(args);
        assert!(
            !out.status.success(),
            "medallion {args:?} should fail; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        error_line(&out)
    }

    /// The JSON run report of a pipeline command (`--json`).
    pub fn report(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("a JSON report")
    }

    /// One scalar from `medallion sql`.
    pub fn scalar(&self, query: &str) -> String {
        let out = self.ok(&["sql", "--format", "csv", query]);
        let mut lines = out.lines();
        lines.next().expect("a csv header");
        lines
            .next()
            .expect("a csv row")
            .trim()
            .trim_matches('"')
            .to_string()
    }

    pub fn rows(&self, table: &str) -> u64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .parse()
            .expect("a count")
    }

    /// Current snapshot id of every table (from `medallion tables --json`).
    pub fn snapshots(&self) -> HashMap<String, String> {
        let tables: Value = serde_json::from_str(&self.ok(&["tables", "--json"])).expect("json");
        tables
            .as_array()
            .expect("array")
            .iter()
            .map(|t| {
                (
                    t["table"].as_str().unwrap().to_string(),
                    t["snapshot_id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn raw_dir(&self, table: &str) -> PathBuf {
        self.path().join("raw").join("tpch").join(table)
    }
}

/// The one `error:` line a failed command printed.
pub fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got: {stderr}");
    errors[0].to_string()
}

/// The status of each table in a run report.
pub fn statuses(report: &Value) -> HashMap<String, String> {
    report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["table"].as_str().unwrap().to_string(),
                j["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
