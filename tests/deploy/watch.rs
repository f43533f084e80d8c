//! `deploy watch` against the scripted API server (api_server.rs), a
//! stand-in for a real Kubernetes API that cannot run here: success,
//! failure with an exit code, OOMKilled, deadline exceeded, image pull
//! error, unschedulable, and a run whose later wave appears only after the
//! first succeeded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use medallion_deploy::watch::{Output, WatchOptions, watch};
use serde_json::json;

use crate::api_server::*;

const NAME: &str = "bronze-orders-2026-11-29";
const POD: &str = "bronze-orders-2026-11-29-x7k2p";

struct Watched {
    result: anyhow::Result<usize>,
    output: String,
    requests: Vec<String>,
}

fn run(scenario: Scenario) -> Watched {
    let server = ApiServer::start(scenario);
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    let out: Output = buffer.clone();
    let options = WatchOptions {
        namespace: "medallion-jobs".into(),
        job_id: JOB_ID.into(),
        timeout: Duration::from_secs(20),
        unschedulable_grace: Duration::from_millis(600),
        follow_logs: true,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let result = runtime.block_on(async { watch(server.client(), &options, out).await });
    let output = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    let requests = server.requests.lock().unwrap().clone();
    Watched {
        result,
        output,
        requests,
    }
}

fn running() -> serde_json::Value {
    container(json!({"running": {"startedAt": "2026-11-29T06:00:05Z"}}), 0)
}

fn terminated(reason: &str, exit_code: i32) -> serde_json::Value {
    container(
        json!({"terminated": {"reason": reason, "exitCode": exit_code}}),
        0,
    )
}

#[test]
fn a_successful_job_exits_zero_with_its_log() {
    let watched = run(Scenario::default()
        .at(0, "ADDED", job(NAME, 1, json!({"active": 1})))
        .at(50, "ADDED", pod(POD, NAME, "Pending", json!({})))
        .at(150, "MODIFIED", pod(POD, NAME, "Running", running()))
        .at(
            300,
            "MODIFIED",
            pod(POD, NAME, "Succeeded", terminated("Completed", 0)),
        )
        .at(
            350,
            "MODIFIED",
            job(
                NAME,
                1,
                json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}),
            ),
        )
        .log(
            POD,
            "reading raw files\ncommitted bronze.orders snapshot 42\n",
        ));
    assert_eq!(watched.result.unwrap(), 1, "{}", watched.output);
    for line in [
        "job bronze-orders-2026-11-29: active 1",
        "pod bronze-orders-2026-11-29-x7k2p: Running",
        "[bronze-orders-2026-11-29-x7k2p] committed bronze.orders snapshot 42",
        "job bronze-orders-2026-11-29: succeeded",
        "all 1 Jobs succeeded",
    ] {
        assert!(
            watched.output.contains(line),
            "`{line}` missing from:\n{}",
            watched.output
        );
    }
    // Jobs and pods were selected by the job id label.
    assert!(
        watched.requests.iter().any(|r| r
            .contains("/apis/batch/v1/namespaces/medallion-jobs/jobs?")
            && r.contains("labelSelector=medallion%2Fjob-id%3D2026-11-29")),
        "{:?}",
        watched.requests
    );
    assert!(watched.requests.iter().any(|r| r.contains("watch=true")));
}

#[test]
fn a_failed_job_names_the_exit_code() {
    let watched = run(Scenario::default()
        .at(0, "ADDED", job(NAME, 1, json!({"active": 1})))
        .at(50, "ADDED", pod(POD, NAME, "Running", running()))
        .at(150, "MODIFIED", pod(POD, NAME, "Failed", terminated("Error", 1)))
        .at(200, "MODIFIED", job(NAME, 1, json!({"failed": 3, "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]})))
        .log(POD, "error: the table bronze.orders cannot be read\n"));
    let err = watched.result.unwrap_err().to_string();
    assert!(err.contains("failed 3 time(s), its backoffLimit"), "{err}");
    assert!(
        err.contains("container medallion Error (exit code 1)"),
        "{err}"
    );
    assert!(
        watched
            .output
            .contains("error: the table bronze.orders cannot be read"),
        "{}",
        watched.output
    );
}

#[test]
fn an_oom_killed_pod_is_named_with_what_to_change() {
    let watched = run(Scenario::default()
        .at(0, "ADDED", job(NAME, 1, json!({"active": 1})))
        .at(50, "ADDED", pod(POD, NAME, "Failed", terminated("OOMKilled", 137)))
        .at(100, "MODIFIED", job(NAME, 1, json!({"failed": 1, "conditions": [{"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}))));
    let err = watched.result.unwrap_err().to_string();
    assert!(
        err.contains("OOMKilled (exit code 137)") && err.contains("memory limit"),
        "{err}"
    );
    assert!(
        watched
            .output
            .contains("pod bronze-orders-2026-11-29-x7k2p: Failed: container medallion OOMKilled"),
        "{}",
        watched.output
    );
}

#[test]
fn a_job_past_its_deadline_fails_with_the_deadline() {
    let watched = run(Scenario::default()
        .at(0, "ADDED", job(NAME, 1, json!({"active": 1})))
        .at(50, "ADDED", pod(POD, NAME, "Running", running()))
        .at(
            150,
            "MODIFIED",
            job(
                NAME,
                1,
                job_condition(
                    "Failed",
                    "DeadlineExceeded",
                    "Job was active longer than specified deadline",
                ),
            ),
        ));
    let err = watched.result.unwrap_err().to_string();
    assert!(
        err.contains("ran past its deadline (activeDeadlineSeconds 7200)"),
        "{err}"
    );
}

#[test]
fn an_image_that_cannot_be_pulled_fails_without_waiting() {
    let watched = run(Scenario::default()
        .at(0, "ADDED", job(NAME, 1, json!({"active": 1})))
        .at(50, "ADDED", pod(POD, NAME, "Pending", container(json!({"waiting": {"reason": "ErrImagePull", "message": "pull access denied"}}), 0)))
        .at(150, "MODIFIED", pod(POD, NAME, "Pending", container(json!({"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"ghcr.io/medallion-data/medallion:0.1.0\""}}), 0))));
    let err = watched.result.unwrap_err().to_string();
    assert!(
        err.contains("cannot start container medallion: ImagePullBackOff"),
        "{err}"
    );
    assert!(
        watched
            .output
            .contains("(ErrImagePull: pull access denied)"),
        "{}",
        watched.output
    );
}

#[test]
fn a_pod_that_stays_unschedulable_fails_after_the_grace() {
    let message = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.";
    let watched = run(Scenario::default()
        .at(0, "ADDED", job(NAME, 1, json!({"active": 1})))
        .at(50, "ADDED", pod(POD, NAME, "Pending", json!({"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}))));
    let err = watched.result.unwrap_err().to_string();
    assert!(
        err.contains("unschedulable for") && err.contains("didn't match Pod's node affinity"),
        "{err}"
    );
    assert!(
        watched.output.contains("Pending (Unschedulable: 0/3 nodes"),
        "{}",
        watched.output
    );
}

#[test]
fn a_run_ends_only_when_every_wave_succeeded() {
    let silver = "silver-orders-2026-11-29";
    let complete = json!({"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]});
    // The second wave's Job appears after the first succeeded and after the
    // first watch has ended (so watch lists and watches again).
    let watched = run(Scenario::default()
        .at(0, "ADDED", job(NAME, 2, json!({"active": 1})))
        .at(100, "MODIFIED", job(NAME, 2, complete.clone()))
        .at(1500, "ADDED", job(silver, 2, json!({"active": 1})))
        .at(1600, "MODIFIED", job(silver, 2, complete)));
    assert_eq!(watched.result.unwrap(), 2, "{}", watched.output);
    let order = (
        watched
            .output
            .find("job bronze-orders-2026-11-29: succeeded")
            .unwrap(),
        watched
            .output
            .find("job silver-orders-2026-11-29: succeeded")
            .unwrap(),
    );
    assert!(order.0 < order.1);
}
