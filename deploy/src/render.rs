//! Job manifests for a run: each job's layer template with the run's name,
//! labels, arguments and sync wave filled in.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{Container, EnvVar};

use crate::job::{JobDescription, RunRequest, check_job_id};
use crate::names::{job_resource_name, label_value};
use crate::template::Templates;
use crate::waves::sync_waves;

/// The container the templates run medallion in.
pub const CONTAINER: &str = "medallion";

pub const LABEL_LAYER: &str = "medallion/layer";
pub const LABEL_JOB_ID: &str = "medallion/job-id";
pub const LABEL_JOB: &str = "medallion/job";
/// The exact job id (the label holds a cleaned form).
pub const ANNOTATION_JOB_ID: &str = "medallion/job-id";
pub const ANNOTATION_TARGET: &str = "medallion/target-table";
/// How many Jobs the run has, so `watch` knows when all are done even
/// before ArgoCD has created the later waves.
pub const ANNOTATION_RUN_SIZE: &str = "medallion/run-size";
pub const ANNOTATION_SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";

/// One rendered Job.
#[derive(Debug, Clone)]
pub struct RenderedJob {
    pub layer: String,
    pub job: Job,
}

impl RenderedJob {
    pub fn name(&self) -> &str {
        self.job.metadata.name.as_deref().unwrap_or_default()
    }

    /// The manifest as committed: a header saying where it came from, then
    /// the Job.
    pub fn to_yaml(&self) -> Result<String> {
        let annotations = self.job.metadata.annotations.as_ref();
        let job_id = annotations
            .and_then(|a| a.get(ANNOTATION_JOB_ID))
            .map(String::as_str)
            .unwrap_or_default();
        let body = serde_yaml::to_string(&self.job).context("cannot write the Job as YAML")?;
        Ok(format!(
            "# Rendered by `medallion deploy render` for job id {job_id}.\n\
             # Submit a new job id instead of editing: a Job cannot change once it exists.\n\
             {body}"
        ))
    }
}

/// Renders every job of the run, in pipeline order.
pub fn render(run: &RunRequest, templates: &Templates) -> Result<Vec<RenderedJob>> {
    check_job_id(&run.job_id)?;
    if run.jobs.is_empty() {
        bail!("the run has no jobs to render");
    }
    let waves = sync_waves(&run.jobs)?;
    let rendered: Vec<RenderedJob> = run
        .jobs
        .iter()
        .zip(waves)
        .map(|(job, wave)| render_job(run, job, wave, templates))
        .collect::<Result<_>>()?;
    let mut seen = BTreeMap::new();
    for job in &rendered {
        if let Some(other) = seen.insert(job.name().to_string(), job) {
            bail!(
                "two jobs of the run would both be named {}: rename one of them",
                other.name()
            );
        }
    }
    Ok(rendered)
}

fn render_job(
    run: &RunRequest,
    description: &JobDescription,
    wave: u32,
    templates: &Templates,
) -> Result<RenderedJob> {
    let mut job = templates.job(&description.layer)?.clone();
    let name = job_resource_name(&description.name, &run.job_id);
    let labels = [
        ("app.kubernetes.io/instance", name.clone()),
        (LABEL_LAYER, description.layer.clone()),
        (LABEL_JOB_ID, label_value(&run.job_id)),
        (LABEL_JOB, label_value(&description.name)),
    ];
    let annotations = [
        (ANNOTATION_JOB_ID, run.job_id.clone()),
        (ANNOTATION_TARGET, description.target_table.clone()),
        (ANNOTATION_RUN_SIZE, run.jobs.len().to_string()),
        (ANNOTATION_SYNC_WAVE, wave.to_string()),
    ];

    job.metadata.name = Some(name.clone());
    insert_all(job.metadata.labels.get_or_insert_default(), &labels);
    insert_all(
        job.metadata.annotations.get_or_insert_default(),
        &annotations,
    );

    let spec = job
        .spec
        .as_mut()
        .with_context(|| format!("the {} template has no spec", description.layer))?;
    if let Some(shards) = description.shards {
        indexed(spec, shards);
    }
    // Pods carry the same labels, so `watch` finds them by job id and the
    // NetworkPolicy selects them.
    let pod_metadata = spec.template.metadata.get_or_insert_default();
    insert_all(pod_metadata.labels.get_or_insert_default(), &labels);
    insert_all(
        pod_metadata.annotations.get_or_insert_default(),
        &annotations[..1],
    );
    let pod = spec
        .template
        .spec
        .as_mut()
        .with_context(|| format!("the {} template has no pod spec", description.layer))?;
    let container = pod
        .containers
        .iter_mut()
        .find(|c| c.name == CONTAINER)
        .with_context(|| {
            format!(
                "the {} template has no container named `{CONTAINER}`",
                description.layer
            )
        })?;
    container.args = Some(vec![
        "run".into(),
        description.spec_in_image.clone(),
        "--job-id".into(),
        run.job_id.clone(),
    ]);
    if let Some(image) = &run.image {
        container.image = Some(image.clone());
    }
    if let Some(input) = &run.input {
        set_env(container, "MEDALLION_RAW", input);
    }
    Ok(RenderedJob {
        layer: description.layer.clone(),
        job,
    })
}

/// How many times one pod's index is retried before the Job gives it up;
/// the other indexes keep their pods and what they wrote.
const BACKOFF_LIMIT_PER_INDEX: i32 = 2;

/// An Indexed Job of `shards` pods, all at once: pod i gets
/// JOB_COMPLETION_INDEX=i from Kubernetes, and `medallion run` loads shard
/// i of the raw files. A failed index is retried on its own
/// (`backoffLimitPerIndex`); the Job completes once every index has.
fn indexed(spec: &mut JobSpec, shards: u32) {
    let shards = i32::try_from(shards).unwrap_or(i32::MAX);
    spec.completion_mode = Some("Indexed".into());
    spec.completions = Some(shards);
    spec.parallelism = Some(shards);
    spec.backoff_limit_per_index = Some(BACKOFF_LIMIT_PER_INDEX);
    // With a limit per index, the Job-wide limit would count every pod's
    // failures together and give up on indexes that still have retries.
    spec.backoff_limit = None;
}

fn insert_all(map: &mut BTreeMap<String, String>, pairs: &[(&str, String)]) {
    for (key, value) in pairs {
        map.insert(key.to_string(), value.clone());
    }
}

fn set_env(container: &mut Container, name: &str, value: &str) {
    let env = container.env.get_or_insert_default();
    env.retain(|e| e.name != name);
    env.push(EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    });
}

/// All manifests of a run as one multi-document YAML text.
pub fn to_multi_document_yaml(jobs: &[RenderedJob]) -> Result<String> {
    let documents: Vec<String> = jobs
        .iter()
        .map(RenderedJob::to_yaml)
        .collect::<Result<_>>()?;
    Ok(documents.join("---\n"))
}
