//! `deploy watch`: follow a run's Jobs and pods through the Kubernetes API
//! until every Job of the run succeeded (exit 0) or one of them cannot
//! (an error naming the cause: exit code, OOMKilled, deadline, image pull,
//! unschedulable). This replaces Airflow's polling of a SparkApplication
//! until COMPLETED.
//!
//! It lists, then watches from the list's resourceVersion; when a watch
//! ends (the API server closes them every few minutes) or expires, it lists
//! again. The Jobs of later sync waves appear only once ArgoCD reaches
//! them, so the run's size comes from the `medallion/run-size` annotation.

mod logs;
pub mod status;

use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::{Api, Client};
use tokio::time::Instant;

pub use logs::Output;
use logs::{LogFollower, lock};
use status::{RunState, Verdict};

use crate::names::label_value;
use crate::render::LABEL_JOB_ID;

#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub namespace: String,
    pub job_id: String,
    /// Give up after this long.
    pub timeout: Duration,
    /// Fail when a pod stays unschedulable this long.
    pub unschedulable_grace: Duration,
    pub follow_logs: bool,
}

/// Watches until the run ends; Ok with the number of Jobs that succeeded.
pub async fn watch(client: Client, options: &WatchOptions, out: Output) -> Result<usize> {
    let jobs: Api<Job> = Api::namespaced(client.clone(), &options.namespace);
    let pods: Api<Pod> = Api::namespaced(client, &options.namespace);
    let selector = format!("{LABEL_JOB_ID}={}", label_value(&options.job_id));
    let mut state = RunState::new(&options.job_id);
    let mut printed = std::collections::BTreeMap::new();
    let mut logs = options
        .follow_logs
        .then(|| LogFollower::new(pods.clone(), out.clone()));
    let deadline = Instant::now() + options.timeout;
    let mut said_waiting = false;

    let mut first = true;
    let verdict = 'watching: loop {
        if !first {
            // A watch that ended at once must not turn into a busy loop.
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        first = false;
        let list = ListParams::default().labels(&selector);
        let job_list = jobs.list(&list).await.with_context(|| {
            format!(
                "cannot list Jobs in namespace {} (check the kubeconfig and the medallion-watch Role)",
                options.namespace
            )
        })?;
        let pod_list = pods
            .list(&list)
            .await
            .with_context(|| format!("cannot list pods in namespace {}", options.namespace))?;
        let job_version = job_list
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        let pod_version = pod_list
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        state.replace_all(job_list.items, pod_list.items, std::time::Instant::now());

        let params = WatchParams::default().labels(&selector).timeout(290);
        let mut job_events = jobs.watch(&params, &job_version).await?.boxed();
        let mut pod_events = pods.watch(&params, &pod_version).await?.boxed();
        loop {
            if !said_waiting && state.lines().is_empty() {
                said_waiting = true;
                let _ = writeln!(
                    lock(&out),
                    "waiting for the Jobs of job id {} in namespace {} (ArgoCD creates them after it syncs the GitOps repository)",
                    options.job_id,
                    options.namespace
                );
            }
            report(&state, &mut printed, &out);
            if let Some(logs) = logs.as_mut() {
                state.pods().for_each(|pod| logs.follow(pod));
            }
            match state.verdict(std::time::Instant::now(), options.unschedulable_grace) {
                Verdict::Running => {}
                Verdict::Failed(_) => {
                    // The failed pod's last status comes on the other watch
                    // and may trail the Job's: read the pods once more so
                    // the cause names the exit code or OOMKilled.
                    let pod_list = pods.list(&list).await.with_context(|| {
                        format!("cannot list pods in namespace {}", options.namespace)
                    })?;
                    state.replace_pods(pod_list.items, std::time::Instant::now());
                    report(&state, &mut printed, &out);
                    break 'watching state
                        .verdict(std::time::Instant::now(), options.unschedulable_grace);
                }
                done => break 'watching done,
            }
            if Instant::now() >= deadline {
                break 'watching Verdict::Failed(format!(
                    "gave up after {} (--timeout); the run is still going",
                    humantime::format_duration(options.timeout)
                ));
            }
            // Wake up now and then even without events: the unschedulable
            // grace and the timeout are measured here.
            let tick = tokio::time::sleep(Duration::from_millis(250));
            tokio::select! {
                event = job_events.next() => match next(event) {
                    Some(WatchEvent::Added(job) | WatchEvent::Modified(job)) => state.upsert_job(job),
                    Some(WatchEvent::Deleted(job)) => state.remove_job(&job),
                    Some(_) => {}
                    None => continue 'watching,
                },
                event = pod_events.next() => match next(event) {
                    Some(WatchEvent::Added(pod) | WatchEvent::Modified(pod)) => state.upsert_pod(pod, std::time::Instant::now()),
                    Some(WatchEvent::Deleted(pod)) => state.remove_pod(&pod),
                    Some(_) => {}
                    None => continue 'watching,
                },
                _ = tick => {}
            }
        }
    };
    if let Some(logs) = logs {
        logs.finish(Duration::from_secs(3)).await;
    }
    match verdict {
        Verdict::Succeeded { jobs } => {
            let _ = writeln!(
                lock(&out),
                "job id {}: all {jobs} Jobs succeeded",
                options.job_id
            );
            Ok(jobs)
        }
        Verdict::Failed(cause) => bail!("job id {} failed: {cause}", options.job_id),
        Verdict::Running => unreachable!("the loop ends only with a verdict"),
    }
}

/// An event to apply; None when the watch ended, expired (410 Gone) or
/// broke, and the caller should list again.
fn next<K>(event: Option<kube::Result<WatchEvent<K>>>) -> Option<WatchEvent<K>> {
    match event {
        Some(Ok(WatchEvent::Error(_))) | Some(Err(_)) | None => None,
        Some(Ok(event)) => Some(event),
    }
}

/// Prints the lines that changed since last time.
fn report(
    state: &RunState,
    printed: &mut std::collections::BTreeMap<String, String>,
    out: &Output,
) {
    for (key, line) in state.lines() {
        if printed.get(&key) != Some(&line) {
            let _ = writeln!(lock(out), "{line}");
            printed.insert(key, line);
        }
    }
}
