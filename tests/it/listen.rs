//! `medallion listen` against a real broker (Tansu): batches, one run per
//! batch under a job id from its upload ids, offsets committed only after a
//! run succeeded, a clean stop on SIGTERM.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{BRONZE_EVENTS_CSV, Lakehouse, TABLES, Tansu, edit, raw_data_ready};

const MINUTES: Duration = Duration::from_secs(180);

/// The raw Parquet files of one generated TPC-H table, as URIs.
fn object_keys(dir: &Path) -> Vec<String> {
    let mut keys: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| format!("file://{}", e.unwrap().path().display()))
        .collect();
    keys.sort();
    keys
}

#[test]
fn sigterm_finishes_the_run_and_commits_it_and_the_same_events_again_change_no_table() {
    let broker = Tansu::start();
    let lakehouse = Lakehouse::new();
    lakehouse.ok(&["generate", "--scale", "0.01"]);
    let events = [
        raw_data_ready(
            "orders",
            "orders-1",
            object_keys(&lakehouse.raw_dir("orders")),
        ),
        raw_data_ready(
            "customer",
            "customer-1",
            object_keys(&lakehouse.raw_dir("customer")),
        ),
    ];
    let mut listener = lakehouse.listen(&broker.brokers(), &[]);
    lakehouse.publish(&broker.brokers(), &events);
    // SIGTERM as soon as the run starts: it finishes and is committed.
    listener.wait_for("run listen-", 1, MINUTES);
    let first = listener.stop();
    assert_eq!(
        (first["runs"].as_u64(), first["events"].as_u64()),
        (Some(1), Some(2)),
        "{first}"
    );
    let snapshots = lakehouse.snapshots();
    for table in TABLES {
        assert!(
            snapshots.contains_key(table),
            "{table} committed: {snapshots:?}"
        );
    }
    let orders = lakehouse.rows("bronze.orders");
    assert_eq!(orders, 15_000);

    // The same uploads again: the same job id, which commits nothing new;
    // the first batch was committed, so it is not read again.
    let mut listener = lakehouse.listen(&broker.brokers(), &[]);
    lakehouse.publish(&broker.brokers(), &events);
    listener.wait_for("committed raw-data-ready", 1, MINUTES);
    let second = listener.stop();
    assert_eq!(
        (second["runs"].as_u64(), second["events"].as_u64()),
        (Some(1), Some(2)),
        "{second}"
    );
    assert_eq!(second["job_ids"], first["job_ids"]);
    assert_eq!(lakehouse.snapshots(), snapshots, "no new snapshot anywhere");
    assert_eq!(lakehouse.rows("bronze.orders"), orders);
}

/// A pipeline of one bronze job over `raw/events/*.csv`, plus `extra` jobs.
fn events_pipeline(lakehouse: &Lakehouse, extra: &[(&str, &str)]) -> PathBuf {
    let dir = lakehouse.path().join("events-pipeline");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("bronze_events.yaml"), BRONZE_EVENTS_CSV).unwrap();
    for (file, yaml) in extra {
        std::fs::write(dir.join(file), yaml).unwrap();
    }
    lakehouse.raw_file("events/one.csv", "key,payload\n1,a\n2,b\n");
    dir
}

#[test]
fn a_burst_of_fifty_events_becomes_one_or_a_few_runs_not_fifty() {
    let broker = Tansu::start();
    let lakehouse = Lakehouse::new();
    let pipeline = events_pipeline(&lakehouse, &[]);
    let mut listener = lakehouse.listen(
        &broker.brokers(),
        &[
            "--pipeline",
            pipeline.to_str().unwrap(),
            "--batch-window",
            "5s",
        ],
    );
    let burst: Vec<_> = (0..50)
        .map(|i| {
            raw_data_ready(
                "events",
                &format!("upload-{i:02}"),
                vec![format!("events/{i}.csv")],
            )
        })
        .collect();
    lakehouse.publish(&broker.brokers(), &burst);
    // Offsets 0..49 read and committed: the next one to read is 50.
    listener.wait_for("raw-data-ready/0@Offset(50)", 1, MINUTES);
    let summary = listener.stop();
    let runs = summary["runs"].as_u64().unwrap();
    assert!(
        (1..=3).contains(&runs),
        "{runs} runs for a burst of 50: {summary}"
    );
    assert_eq!(summary["events"].as_u64(), Some(50));
    let loads = lakehouse.scalar("SELECT COUNT(DISTINCT job_id) FROM bronze.events");
    assert_eq!(loads, runs.to_string());
}

const SILVER_EVENTS: &str = "\
name: silver_events
inputs:
  - table: bronze.events
steps:
  - sql: SELECT key, no_such_column FROM bronze.events
target: { table: silver.events, mode: overwrite }
";

#[test]
fn a_failed_run_keeps_its_offset_and_runs_again_once_the_pipeline_is_fixed() {
    let broker = Tansu::start();
    let lakehouse = Lakehouse::new();
    let pipeline = events_pipeline(&lakehouse, &[("silver_events.yaml", SILVER_EVENTS)]);
    let args = ["--pipeline", pipeline.to_str().unwrap()];
    let mut listener = lakehouse.listen(&broker.brokers(), &args);
    lakehouse.publish(
        &broker.brokers(),
        &[raw_data_ready("events", "upload-1", vec![])],
    );
    listener.wait_for("failed, its events stay uncommitted", 1, MINUTES);
    let failed = listener.stop();
    assert_eq!(failed["runs"].as_u64(), Some(0), "{failed}");
    assert!(failed["failed_runs"].as_u64().unwrap() >= 1, "{failed}");
    assert!(
        !lakehouse.snapshots().contains_key("silver.events"),
        "nothing committed to silver"
    );

    edit(
        &pipeline.join("silver_events.yaml"),
        "key, no_such_column",
        "key, payload",
    );
    let mut listener = lakehouse.listen(&broker.brokers(), &args);
    listener.wait_for("committed raw-data-ready", 1, MINUTES);
    let fixed = listener.stop();
    assert_eq!(
        (fixed["runs"].as_u64(), fixed["events"].as_u64()),
        (Some(1), Some(1)),
        "{fixed}"
    );
    assert_eq!(lakehouse.rows("silver.events"), 2);
    assert_eq!(
        lakehouse.rows("bronze.events"),
        2,
        "bronze committed once under the job id"
    );
}

#[test]
fn an_event_of_an_unknown_schema_version_is_skipped_counted_and_committed() {
    let broker = Tansu::start();
    let lakehouse = Lakehouse::new();
    let pipeline = events_pipeline(&lakehouse, &[]);
    let mut listener = lakehouse.listen(
        &broker.brokers(),
        &["--pipeline", pipeline.to_str().unwrap()],
    );
    let mut future = raw_data_ready("events", "upload-v2", vec![]);
    future.schema_version = 2;
    lakehouse.publish(&broker.brokers(), &[future]);
    listener.wait_for("committed raw-data-ready", 1, MINUTES);
    assert_eq!(listener.count("schema_version 2 is unknown"), 1);
    let summary = listener.stop();
    assert_eq!(
        (summary["runs"].as_u64(), summary["refused"].as_u64()),
        (Some(0), Some(1)),
        "{summary}"
    );
}

#[test]
fn in_gitops_mode_a_batch_is_submitted_under_its_job_id_once_and_again_changes_nothing() {
    let broker = Tansu::start();
    let lakehouse = Lakehouse::new();
    let repo = lakehouse.path().join("gitops.git");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    git(&[
        "init",
        "--quiet",
        "--bare",
        "--initial-branch",
        "main",
        repo.to_str().unwrap(),
    ]);
    let args = ["--mode", "gitops", "--repo", repo.to_str().unwrap()];
    let mut listener = lakehouse.listen(&broker.brokers(), &args);
    let event = raw_data_ready("orders", "upload-1", vec![]);
    lakehouse.publish(&broker.brokers(), std::slice::from_ref(&event));
    listener.wait_for("committed raw-data-ready", 1, MINUTES);
    lakehouse.publish(&broker.brokers(), &[event]);
    listener.wait_for("committed raw-data-ready", 2, MINUTES);
    assert_eq!(listener.count("was already submitted"), 1);
    let summary = listener.stop();
    let job_id = summary["job_ids"][0].as_str().unwrap().to_string();
    assert_eq!(
        summary["job_ids"][1].as_str(),
        Some(job_id.as_str()),
        "{summary}"
    );
    let subjects = git(&["-C", repo.to_str().unwrap(), "log", "--format=%s", "main"]);
    let runs = subjects.lines().filter(|s| s.contains(&job_id)).count();
    assert_eq!(runs, 1, "one commit for the run {job_id}:\n{subjects}");
    assert!(
        lakehouse.snapshots().is_empty(),
        "nothing ran in this process"
    );
}
