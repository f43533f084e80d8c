//! Shared helpers: the reference pipeline as the engine describes it, git
//! and kubectl.

use std::path::{Path, PathBuf};
use std::process::Command;

use medallion_deploy::layout::LAYERS;
use medallion_deploy::waves::sync_waves;
use medallion_deploy::{JobDescription, JobSource, PipelineSource, RunRequest};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

/// The fields of a job spec the engine hands to `deploy` (see
/// `deploy_pipeline` in engine/src/cli.rs); serde skips the others.
#[derive(serde::Deserialize)]
struct SpecSummary {
    name: String,
    inputs: Vec<SpecInput>,
    target: SpecTarget,
}

#[derive(serde::Deserialize)]
struct SpecInput {
    table: Option<String>,
}

#[derive(serde::Deserialize)]
struct SpecTarget {
    table: String,
}

fn job_source(spec_path: PathBuf) -> JobSource {
    let text = std::fs::read_to_string(&spec_path).unwrap();
    let spec: SpecSummary =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", spec_path.display()));
    JobSource {
        name: spec.name,
        target_table: spec.target.table,
        reads: spec.inputs.into_iter().filter_map(|i| i.table).collect(),
        spec_path,
        shards: None,
    }
}

/// jobs/reference as the engine describes it, read from the specs
/// themselves (the deploy crate does not link the jobs crate). In pipeline
/// order: the engine runs a job after the jobs whose tables it reads, then
/// by layer, then by file, which for this pipeline is by sync wave, then
/// layer, then file; the golden file pins it.
pub fn reference_jobs() -> Vec<JobDescription> {
    let dir = repo_root().join("jobs/reference");
    let mut jobs = Vec::new();
    for layer in LAYERS {
        let mut specs: Vec<PathBuf> = std::fs::read_dir(dir.join(layer))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
            .collect();
        specs.sort();
        jobs.extend(specs.into_iter().map(job_source));
    }
    let described = PipelineSource { dir, jobs }.describe(None).unwrap();
    let mut by_wave: Vec<_> = sync_waves(&described)
        .unwrap()
        .into_iter()
        .zip(described)
        .collect();
    by_wave.sort_by_key(|(wave, _)| *wave);
    by_wave.into_iter().map(|(_, job)| job).collect()
}

pub fn reference_run(job_id: &str) -> RunRequest {
    RunRequest {
        job_id: job_id.into(),
        jobs: reference_jobs(),
        input: None,
        image: None,
    }
}

/// A run of one bronze job, for the git tests.
pub fn one_job_run(name: &str, job_id: &str) -> RunRequest {
    RunRequest {
        job_id: job_id.into(),
        jobs: vec![JobDescription {
            name: name.into(),
            layer: "bronze".into(),
            target_table: "bronze.orders".into(),
            reads: Vec::new(),
            spec_in_image: "/pipelines/reference/bronze/orders.yaml".into(),
            shards: None,
        }],
        input: None,
        image: None,
    }
}

/// Runs git in `dir`, panicking with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A new bare repository, the stand-in for the GitOps remote.
pub fn bare_repo(parent: &Path, name: &str) -> PathBuf {
    let path = parent.join(name);
    git(
        parent,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch",
            "main",
            path.to_str().unwrap(),
        ],
    );
    path
}

/// Files on the remote branch.
pub fn remote_files(bare: &Path, branch: &str) -> Vec<String> {
    git(bare, &["ls-tree", "-r", "--name-only", branch])
        .lines()
        .map(str::to_string)
        .collect()
}

/// `kubectl kustomize DIR`; kubectl comes with the machine or from
/// Debian's kubernetes-client (.ci/run installs it when missing).
pub fn kustomize(dir: &Path) -> String {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl is installed (apt-get install kubernetes-client)");
    assert!(
        output.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Parses every document of a YAML text.
pub fn documents(text: &str) -> Vec<serde_json::Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

/// The `medallion` binary next to this test binary (cargo and nextest put
/// both in target/debug); MEDALLION_BIN names another one.
pub fn medallion_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MEDALLION_BIN") {
        return Some(PathBuf::from(path));
    }
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("medallion");
    path.is_file().then_some(path)
}

/// The binary, or None when it is not built and this is not CI (where the
/// workspace build always makes it).
pub fn binary_or_skip(test: &str) -> Option<PathBuf> {
    match medallion_binary() {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("{test}: target/debug/medallion is missing; CI builds the whole workspace")
        }
        None => {
            eprintln!("{test}: skipped, build the binary first: cargo build -p medallion-engine");
            None
        }
    }
}
