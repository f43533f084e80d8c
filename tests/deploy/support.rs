//! Shared helpers: the reference pipeline as the engine describes it, git
//! and kubectl.

use std::path::{Path, PathBuf};
use std::process::Command;

use medallion_deploy::{JobDescription, RunRequest};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn deploy_dir() -> PathBuf {
    repo_root().join("deploy")
}

fn job(name: &str, target: &str, reads: &[&str], spec: &str) -> JobDescription {
    JobDescription {
        name: name.into(),
        layer: target.split('.').next().unwrap().into(),
        target_table: target.into(),
        reads: reads.iter().map(|s| s.to_string()).collect(),
        spec_in_image: format!("/pipelines/reference/{spec}"),
    }
}

/// jobs/reference as the engine describes it (pipeline order).
pub fn reference_jobs() -> Vec<JobDescription> {
    vec![
        job(
            "bronze_customers",
            "bronze.customers",
            &[],
            "bronze/customers.yaml",
        ),
        job("bronze_orders", "bronze.orders", &[], "bronze/orders.yaml"),
        job(
            "silver_customers",
            "silver.customers",
            &["bronze.customers"],
            "silver/customers.yaml",
        ),
        job(
            "silver_orders",
            "silver.orders",
            &["bronze.orders", "silver.customers"],
            "silver/orders.yaml",
        ),
        job(
            "silver_dq_report",
            "silver.dq_report",
            &["bronze.customers", "bronze.orders", "silver.orders"],
            "silver/dq_report.yaml",
        ),
        job(
            "gold_customer_metrics",
            "gold.customer_metrics",
            &["silver.orders"],
            "gold/customer_metrics.yaml",
        ),
        job(
            "gold_sales_dashboard",
            "gold.sales_dashboard",
            &["silver.orders"],
            "gold/sales_dashboard.yaml",
        ),
    ]
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
        jobs: vec![job(name, "bronze.orders", &[], "bronze/orders.yaml")],
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
