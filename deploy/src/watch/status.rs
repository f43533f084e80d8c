//! What the Jobs and pods of a run say, read from their status: progress
//! lines to print, and whether the run succeeded, failed (and why) or is
//! still going. Pure, so every case is tested without a cluster.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use crate::render::{ANNOTATION_JOB_ID, ANNOTATION_RUN_SIZE};

/// Waiting reasons that do not go away by waiting: the kubelet keeps
/// retrying, but someone has to fix the image, the registry credentials or
/// the Secret/ConfigMap first.
const STUCK_REASONS: [&str; 5] = [
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Running,
    Succeeded { jobs: usize },
    Failed(String),
}

/// The Jobs and pods of one job id, as last seen.
#[derive(Debug)]
pub struct RunState {
    job_id: String,
    jobs: BTreeMap<String, Job>,
    pods: BTreeMap<String, Pod>,
    unschedulable_since: HashMap<String, Instant>,
}

impl RunState {
    pub fn new(job_id: &str) -> Self {
        Self {
            job_id: job_id.to_string(),
            jobs: BTreeMap::new(),
            pods: BTreeMap::new(),
            unschedulable_since: HashMap::new(),
        }
    }

    /// Keeps a Job of this run; Jobs whose cleaned label matched but whose
    /// exact job id differs are ignored.
    pub fn upsert_job(&mut self, job: Job) {
        let id = job
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_JOB_ID));
        if id != Some(&self.job_id) {
            return;
        }
        if let Some(name) = job.metadata.name.clone() {
            self.jobs.insert(name, job);
        }
    }

    pub fn remove_job(&mut self, job: &Job) {
        if let Some(name) = &job.metadata.name {
            self.jobs.remove(name);
        }
    }

    pub fn upsert_pod(&mut self, pod: Pod, now: Instant) {
        let id = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_JOB_ID));
        if id != Some(&self.job_id) {
            return;
        }
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        if unschedulable(&pod).is_some() {
            self.unschedulable_since.entry(name.clone()).or_insert(now);
        } else {
            self.unschedulable_since.remove(&name);
        }
        self.pods.insert(name, pod);
    }

    pub fn remove_pod(&mut self, pod: &Pod) {
        if let Some(name) = &pod.metadata.name {
            self.pods.remove(name);
            self.unschedulable_since.remove(name);
        }
    }

    pub fn replace_all(&mut self, jobs: Vec<Job>, pods: Vec<Pod>, now: Instant) {
        self.jobs.clear();
        for job in jobs {
            self.upsert_job(job);
        }
        self.replace_pods(pods, now);
    }

    pub fn replace_pods(&mut self, pods: Vec<Pod>, now: Instant) {
        self.pods.clear();
        let before = std::mem::take(&mut self.unschedulable_since);
        for pod in pods {
            self.upsert_pod(pod, now);
        }
        // A pod that was already unschedulable keeps its first sighting.
        for (name, since) in before {
            if let Some(entry) = self.unschedulable_since.get_mut(&name) {
                *entry = since;
            }
        }
    }

    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.pods.values()
    }

    /// The number of Jobs the run has, from the annotation `render` writes.
    pub fn expected_jobs(&self) -> Option<usize> {
        self.jobs
            .values()
            .filter_map(|j| {
                j.metadata
                    .annotations
                    .as_ref()?
                    .get(ANNOTATION_RUN_SIZE)?
                    .parse()
                    .ok()
            })
            .max()
    }

    /// One line per Job and per pod, keyed by object, describing its state.
    pub fn lines(&self) -> BTreeMap<String, String> {
        let mut lines = BTreeMap::new();
        for (name, job) in &self.jobs {
            lines.insert(
                format!("job/{name}"),
                format!("job {name}: {}", job_state(job)),
            );
        }
        for (name, pod) in &self.pods {
            lines.insert(
                format!("pod/{name}"),
                format!("pod {name}: {}", pod_state(pod)),
            );
        }
        lines
    }

    pub fn verdict(&self, now: Instant, unschedulable_grace: Duration) -> Verdict {
        for (name, job) in &self.jobs {
            if let Some((reason, message)) = condition(job, &["Failed", "FailureTarget"]) {
                return Verdict::Failed(self.failure_cause(name, job, &reason, &message));
            }
        }
        for (name, pod) in &self.pods {
            for status in container_statuses(pod) {
                if let Some(waiting) = status.state.as_ref().and_then(|s| s.waiting.as_ref()) {
                    let reason = waiting.reason.clone().unwrap_or_default();
                    if STUCK_REASONS.contains(&reason.as_str()) {
                        return Verdict::Failed(format!(
                            "pod {name} cannot start container {}: {reason}: {}",
                            status.name,
                            waiting.message.clone().unwrap_or_default()
                        ));
                    }
                }
            }
            if let (Some(since), Some(message)) =
                (self.unschedulable_since.get(name), unschedulable(pod))
                && now.duration_since(*since) >= unschedulable_grace
            {
                return Verdict::Failed(format!(
                    "pod {name} has been unschedulable for {}s: {message} (check the nodeSelector workload=data-processing, its taint toleration and the requested resources)",
                    now.duration_since(*since).as_secs()
                ));
            }
        }
        let succeeded = self
            .jobs
            .values()
            .filter(|job| condition(job, &["Complete"]).is_some())
            .count();
        match self.expected_jobs() {
            Some(expected) if succeeded >= expected => Verdict::Succeeded { jobs: succeeded },
            _ => Verdict::Running,
        }
    }

    /// Why a Job failed, with what its last failed pod said.
    fn failure_cause(&self, name: &str, job: &Job, reason: &str, message: &str) -> String {
        let mut cause = match reason {
            "DeadlineExceeded" => format!(
                "job {name} ran past its deadline (activeDeadlineSeconds {}): {message}",
                job.spec
                    .as_ref()
                    .and_then(|s| s.active_deadline_seconds)
                    .map_or("?".to_string(), |s| s.to_string())
            ),
            "BackoffLimitExceeded" => format!(
                "job {name} failed {} time(s), its backoffLimit: {message}",
                job.status.as_ref().and_then(|s| s.failed).unwrap_or(0)
            ),
            // An Indexed Job (a sharded bronze load) gives up on an index
            // after its backoffLimitPerIndex; the other indexes stay done.
            "FailedIndexes" => format!(
                "job {name} gave up on index(es) {} after their backoffLimitPerIndex; the \
                 indexes that succeeded keep their files, and the same job id submitted again \
                 loads only what is missing: {message}",
                job.status
                    .as_ref()
                    .and_then(|s| s.failed_indexes.clone())
                    .unwrap_or_else(|| "?".into())
            ),
            _ => format!("job {name} failed ({reason}): {message}"),
        };
        // Pods sort by name; any failed pod of the Job tells the cause.
        let last_termination = self
            .pods
            .values()
            .filter(|pod| pod_job_name(pod) == Some(name))
            .filter_map(|pod| Some((pod.metadata.name.clone()?, terminated_with_error(pod)?)))
            .next_back();
        if let Some((pod, termination)) = last_termination {
            cause.push_str(&format!("; pod {pod}: {termination}"));
        }
        cause
    }
}

fn condition(job: &Job, types: &[&str]) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find_map(|c| {
            (types.contains(&c.type_.as_str()) && c.status == "True").then(|| {
                (
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            })
        })
}

fn job_state(job: &Job) -> String {
    if condition(job, &["Complete"]).is_some() {
        return "succeeded".into();
    }
    if let Some((reason, message)) = condition(job, &["Failed", "FailureTarget"]) {
        return format!("failed: {reason}: {message}");
    }
    let status = job.status.clone().unwrap_or_default();
    let mut parts = vec![format!("active {}", status.active.unwrap_or(0))];
    if let Some(failed) = status.failed.filter(|f| *f > 0) {
        parts.push(format!("failed pods {failed}"));
    }
    // An Indexed Job: which pods' shards are done, out of how many.
    if let Some(completions) = job
        .spec
        .as_ref()
        .and_then(|s| s.completions)
        .filter(|_| indexed(job))
    {
        let done = status
            .completed_indexes
            .as_deref()
            .filter(|i| !i.is_empty());
        parts.push(format!(
            "indexes done {} of {completions}",
            done.unwrap_or("none")
        ));
    }
    parts.join(", ")
}

fn indexed(job: &Job) -> bool {
    job.spec.as_ref().and_then(|s| s.completion_mode.as_deref()) == Some("Indexed")
}

fn pod_job_name(pod: &Pod) -> Option<&str> {
    let labels = pod.metadata.labels.as_ref()?;
    labels
        .get("batch.kubernetes.io/job-name")
        .or_else(|| labels.get("job-name"))
        .map(String::as_str)
}

fn container_statuses(pod: &Pod) -> impl Iterator<Item = &ContainerStatus> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
}

fn unschedulable(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find_map(|c| {
            (c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable"))
            .then(|| c.message.clone().unwrap_or_else(|| "no node fits".into()))
        })
}

/// `container medallion OOMKilled (exit code 137): ...` for a container
/// that ended badly.
fn terminated_with_error(pod: &Pod) -> Option<String> {
    container_statuses(pod).find_map(|status| {
        let terminated = status
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .or_else(|| status.last_state.as_ref().and_then(|s| s.terminated.as_ref()))?;
        if terminated.exit_code == 0 {
            return None;
        }
        let reason = terminated.reason.clone().unwrap_or_else(|| "Error".into());
        let hint = if reason == "OOMKilled" {
            " — the container used more than its memory limit; raise resources.limits.memory in the layer's template"
        } else {
            ""
        };
        Some(format!(
            "container {} {reason} (exit code {}){hint}{}",
            status.name,
            terminated.exit_code,
            terminated
                .message
                .as_ref()
                .map(|m| format!(": {}", m.trim()))
                .unwrap_or_default()
        ))
    })
}

fn pod_state(pod: &Pod) -> String {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "Pending".into());
    let mut state = phase.clone();
    if let Some(message) = unschedulable(pod) {
        state.push_str(&format!(" (Unschedulable: {message})"));
    }
    for status in container_statuses(pod) {
        if let Some(waiting) = status.state.as_ref().and_then(|s| s.waiting.as_ref())
            && let Some(reason) = &waiting.reason
        {
            state.push_str(&format!(" ({reason}"));
            if let Some(message) = &waiting.message {
                state.push_str(&format!(": {message}"));
            }
            state.push(')');
        }
        if status.restart_count > 0 {
            state.push_str(&format!(", restarts {}", status.restart_count));
        }
    }
    if let Some(termination) = terminated_with_error(pod) {
        state.push_str(&format!(": {termination}"));
    }
    state
}
