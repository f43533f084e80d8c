//! The Airflow DAG `data_ingestion_gitops` (deploy/airflow) in a real
//! Apache Airflow 3.3.2 (airflow_harness.rs): it imports; in local mode it
//! runs the reference pipeline in the worker and commits what `medallion
//! demo` commits; a failing job fails its task and stops the later layers;
//! and a `raw-data-ready` event on a real Kafka broker (Tansu) submits each
//! layer to a GitOps repository served by real git. The one stand-in is the
//! Kubernetes API that `deploy watch` follows: the scripted server of
//! api_server.rs, which answers with the layers' Jobs already succeeded.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use medallion_deploy::names::job_resource_name;
use serde_json::{Value, json};

use crate::airflow_harness::*;
use crate::api_server::{ApiServer, Scenario, container, job_of, pod_of};
use crate::git_http_server::GitHttpServer;
use crate::support::{bare_repo, git, reference_jobs, repo_root};

/// `medallion args` on the lakehouse in `lakehouse`; must succeed.
fn medallion(installed: &Installed, lakehouse: &Path, args: &[&str]) -> String {
    let output = Command::new(&installed.medallion)
        .args(args)
        .env("MEDALLION_LAKEHOUSE", lakehouse)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "medallion {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Rows per table, from `medallion tables --json`.
fn table_rows(installed: &Installed, lakehouse: &Path) -> BTreeMap<String, u64> {
    let tables: Vec<Value> =
        serde_json::from_str(&medallion(installed, lakehouse, &["--json", "tables"])).unwrap();
    tables
        .iter()
        .map(|t| {
            let rows = t["rows"].as_str().unwrap().parse().unwrap();
            (t["table"].as_str().unwrap().to_string(), rows)
        })
        .collect()
}

/// An Airflow whose `medallion_default` connection points medallion at the
/// embedded lakehouse in `lakehouse`.
fn local_airflow(installed: &Installed, dir: &Path, lakehouse: &Path) -> Airflow {
    let mut airflow = Airflow::new(installed, dir);
    airflow.connection(
        "medallion_default",
        json!({"conn_type": "generic", "extra": {"MEDALLION_LAKEHOUSE": lakehouse}}),
    );
    airflow
}

fn states<'a>(
    states: &'a BTreeMap<String, String>,
    tasks: &[&'a str],
) -> Vec<(&'a str, Option<&'a str>)> {
    tasks
        .iter()
        .map(|task| (*task, states.get(*task).map(String::as_str)))
        .collect()
}

#[test]
fn airflow_imports_the_dag_folder_without_errors() {
    let Some(installed) = Installed::or_skip("airflow_imports_the_dag_folder_without_errors")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let airflow = Airflow::new(&installed, dir.path());
    // Exits non-zero when a file of the DAG folder does not import.
    let errors = airflow.check(&["dags", "list-import-errors", "--local"]);
    assert!(errors.contains("No data found"), "{errors}");
    let dags = airflow.check(&["dags", "list", "--local", "--output", "plain"]);
    assert!(dags.contains(DAG), "{dags}");
}

#[test]
fn airflow_local_mode_commits_bronze_silver_and_gold_once() {
    let Some(installed) =
        Installed::or_skip("airflow_local_mode_commits_bronze_silver_and_gold_once")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = dir.path().join("lakehouse");
    medallion(&installed, &lakehouse, &["generate", "--scale", "0.01"]);
    let airflow = local_airflow(&installed, dir.path(), &lakehouse);

    let conf = json!({"mode": "local", "dataset": "orders", "upload_id": "u1"}).to_string();
    let output = airflow.check(&["dags", "test", DAG, "--conf", &conf]);
    let (run_id, state) = airflow.dag_runs().pop().unwrap();
    assert_eq!(state, "success", "{output}\n{}", airflow.explain(&run_id));
    let tasks = airflow.task_states(&run_id);
    assert_eq!(
        states(
            &tasks,
            &[
                "bronze_run",
                "silver_run",
                "gold_run",
                "bronze_submit",
                "check_upload"
            ]
        ),
        [
            ("bronze_run", Some("success")),
            ("silver_run", Some("success")),
            ("gold_run", Some("success")),
            ("bronze_submit", Some("skipped")),
            // No medallion_upload_api connection.
            ("check_upload", Some("skipped")),
        ],
        "{output}"
    );
    // The run report, in the task log; job ids from the upload.
    for line in [
        "run report of job id orders-u1-bronze",
        "bronze.orders     committed",
        "run report of job id orders-u1-gold",
        "gold.sales_dashboard   committed",
    ] {
        assert!(output.contains(line), "`{line}` missing from:\n{output}");
    }

    // What `medallion demo` commits on the same raw data.
    let reference = dir.path().join("reference");
    medallion(&installed, &reference, &["demo", "--scale", "0.01"]);
    let expected = table_rows(&installed, &reference);
    assert_eq!(expected.len(), 7);
    assert_eq!(expected["bronze.orders"], 15_000);
    assert_eq!(table_rows(&installed, &lakehouse), expected);

    // The bronze task run again in the same DAG run: same job id, nothing
    // loaded twice.
    let again = airflow.check(&["tasks", "test", DAG, "bronze_run", &run_id]);
    assert!(again.contains("already_committed"), "{again}");
    assert_eq!(table_rows(&installed, &lakehouse), expected);
}

#[test]
fn airflow_fails_the_layer_whose_job_fails_and_runs_no_later_layer() {
    let Some(installed) =
        Installed::or_skip("airflow_fails_the_layer_whose_job_fails_and_runs_no_later_layer")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = dir.path().join("lakehouse");
    medallion(&installed, &lakehouse, &["generate", "--scale", "0.01"]);
    let pipeline = dir.path().join("pipeline");
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo_root().join("jobs/reference"))
        .arg(&pipeline)
        .status()
        .unwrap();
    assert!(status.success());
    // Parses, but does not plan: the column does not exist.
    let sql = pipeline.join("silver/orders.sql");
    let text = std::fs::read_to_string(&sql).unwrap();
    std::fs::write(&sql, text.replacen("SELECT", "SELECT no_such_column,", 1)).unwrap();
    let airflow = local_airflow(&installed, dir.path(), &lakehouse);

    let conf = json!({"mode": "local", "pipeline": pipeline, "job_id": "bad-sql"}).to_string();
    let output = airflow.run(&["dags", "test", DAG, "--conf", &conf]);
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let (run_id, state) = airflow.dag_runs().pop().unwrap();
    assert_eq!(state, "failed", "{output}");
    let tasks = airflow.task_states(&run_id);
    assert_eq!(
        states(&tasks, &["bronze_run", "silver_run", "gold_run"]),
        [
            ("bronze_run", Some("success")),
            ("silver_run", Some("failed")),
            ("gold_run", Some("upstream_failed")),
        ],
        "{output}"
    );
    // The job's one-line error is the task's error, in its log.
    let error = "error: job `silver_orders` failed; tables of the jobs before it stay committed, silver.orders is unchanged: ";
    let failure = output
        .lines()
        .find(|line| line.contains("AirflowException") && line.contains(error))
        .unwrap_or_else(|| panic!("no task failure with `{error}` in:\n{output}"));
    assert!(
        failure.contains("No field named no_such_column"),
        "{failure}"
    );
    let tables = table_rows(&installed, &lakehouse);
    assert!(tables.contains_key("bronze.orders"), "{tables:?}");
    assert!(!tables.keys().any(|t| t.starts_with("gold.")), "{tables:?}");
}

const GIT_TOKEN: &str = "gitops-token-3f9c1a";
const UPLOAD_ID: &str = "9c4e2a7b";

/// The layers' job ids, as the DAG derives them from the event.
fn layer_job_id(layer: &str) -> String {
    format!("orders-{UPLOAD_ID}-{layer}")
}

/// The Kubernetes API as ArgoCD would leave it after syncing each layer:
/// every Job of every layer succeeded, one pod each with a log.
fn synced_cluster() -> Scenario {
    let jobs = reference_jobs();
    let mut scenario = Scenario::default();
    for job in &jobs {
        let job_id = layer_job_id(&job.layer);
        let run_size = jobs.iter().filter(|j| j.layer == job.layer).count();
        let name = job_resource_name(&job.name, &job_id);
        let pod = format!("{name}-x7k2p");
        let complete =
            json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
        let done = container(
            json!({"terminated": {"reason": "Completed", "exitCode": 0}}),
            0,
        );
        scenario = scenario
            .at(0, "ADDED", job_of(&job_id, &name, run_size, complete))
            .at(0, "ADDED", pod_of(&job_id, &pod, &name, "Succeeded", done))
            .log(
                &pod,
                &format!("committed {} in the pod of {name}\n", job.target_table),
            );
    }
    scenario
}

fn kubeconfig(server: &ApiServer) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: standin\n\
         clusters: [{{name: standin, cluster: {{server: 'http://127.0.0.1:{}'}}}}]\n\
         users: [{{name: airflow, user: {{}}}}]\n\
         contexts: [{{name: standin, context: {{cluster: standin, user: airflow, namespace: medallion-jobs}}}}]\n",
        server.port
    )
}

#[test]
fn airflow_runs_each_layer_through_gitops_on_a_raw_data_ready_event() {
    let Some(installed) =
        Installed::or_skip("airflow_runs_each_layer_through_gitops_on_a_raw_data_ready_event")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let repos = dir.path().join("repos");
    std::fs::create_dir(&repos).unwrap();
    let bare = bare_repo(&repos, "gitops.git");
    let forge = GitHttpServer::start(&repos, GIT_TOKEN);
    let kubernetes = ApiServer::start(synced_cluster());
    let kafka = Tansu::start(&installed, dir.path());
    kafka.create_topic("raw-data-ready");

    let mut airflow = Airflow::new(&installed, dir.path());
    airflow.connection(
        "kafka_default",
        json!({"conn_type": "kafka", "extra": {
            "bootstrap.servers": kafka.bootstrap(),
            "group.id": "airflow-medallion",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }}),
    );
    airflow.connection(
        "medallion_default",
        json!({"conn_type": "generic", "extra": {
            "MEDALLION_GITOPS_REPO": format!("{}/gitops.git", forge.url()),
            "MEDALLION_GIT_TOKEN": GIT_TOKEN,
        }}),
    );
    airflow.connection(
        "kubernetes_default",
        json!({"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig(&kubernetes)}}),
    );
    airflow.start_services(dir.path());

    // A raw-data-ready event as `medallion ingest` publishes it
    // (engine/src/events/mod.rs, schema version 1), keyed by the upload id.
    let event = json!({
        "schema_version": 1,
        "dataset": "orders",
        "upload_id": UPLOAD_ID,
        "object_keys": [format!("s3://raw/orders/2026/12/01/{UPLOAD_ID}.parquet")],
        "rows_accepted": 15000,
        "rows_quarantined": 0,
        "sha256": "9c4e2a7b0d1f",
        "source": "orders.csv",
        "timestamp": "2026-12-01T06:00:00Z",
    });
    let finished = |airflow: &mut Airflow, runs: usize| {
        wait_for("the DAG run", Duration::from_secs(480), || {
            airflow.check_services();
            let all = airflow.dag_runs();
            (all.len() == runs && ["success", "failed"].contains(&all[runs - 1].1.as_str()))
                .then(|| all[runs - 1].clone())
        })
    };
    airflow.produce(&kafka.bootstrap(), "raw-data-ready", UPLOAD_ID, &event);
    let (first, state) = finished(&mut airflow, 1);
    let log = |task: &str| airflow.task_log(&first, task);
    assert_eq!(state, "success", "{}", airflow.explain(&first));
    assert!(first.starts_with("asset_triggered__"), "{first}");

    // One commit per layer, naming its job id, in layer order.
    let subjects = git(&bare, &["log", "--reverse", "--format=%s", "main"]);
    assert_eq!(
        subjects.lines().collect::<Vec<_>>(),
        [
            format!("Submit job id {}: 2 jobs", layer_job_id("bronze")),
            format!("Submit job id {}: 3 jobs", layer_job_id("silver")),
            format!("Submit job id {}: 2 jobs", layer_job_id("gold")),
        ]
    );
    let tasks = airflow.task_states(&first);
    assert_eq!(
        states(
            &tasks,
            &[
                "bronze_submit",
                "bronze_sync",
                "bronze_watch",
                "gold_watch",
                "gold_run"
            ]
        ),
        [
            ("bronze_submit", Some("success")),
            // The Application syncs by itself (the argocd_auto_sync param).
            ("bronze_sync", Some("skipped")),
            ("bronze_watch", Some("success")),
            ("gold_watch", Some("success")),
            ("gold_run", Some("skipped")),
        ]
    );
    // deploy watch's output, the pods' logs with it, is in the task log.
    let watched = log("silver_watch");
    let silver = job_resource_name("silver_orders", &layer_job_id("silver"));
    for line in [
        format!("[{silver}-x7k2p] committed silver.orders in the pod of {silver}"),
        format!("job id {}: all 3 Jobs succeeded", layer_job_id("silver")),
    ] {
        assert!(watched.contains(&line), "`{line}` missing from:\n{watched}");
    }

    // The same event again: a new DAG run, the same job ids, no new commit.
    airflow.produce(&kafka.bootstrap(), "raw-data-ready", UPLOAD_ID, &event);
    let (second, state) = finished(&mut airflow, 2);
    assert_eq!(state, "success", "{}", airflow.explain(&second));
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "3");
    let resubmitted = airflow.task_log(&second, "bronze_submit");
    let nothing = format!(
        "nothing to submit: job id {} is already in",
        layer_job_id("bronze")
    );
    assert!(resubmitted.contains(&nothing), "{resubmitted}");

    // The git token went to git through the connection and the child's
    // environment, and into no log.
    assert!(forge.authorized_requests() > 0);
    assert!(!airflow.all_logs().contains(GIT_TOKEN));
}
