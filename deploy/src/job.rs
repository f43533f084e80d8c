//! What `deploy` needs to know about a pipeline's jobs. The engine loads
//! the pipeline and fills these in; this crate never parses job specs, so
//! it does not depend on DataFusion or Iceberg.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// One job spec of a pipeline, as the engine read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSource {
    /// The spec's `name` (`bronze_orders`).
    pub name: String,
    /// The target table (`bronze.orders`); its namespace is the layer.
    pub target_table: String,
    /// Tables the job reads; a job runs after the jobs that write them.
    pub reads: Vec<String>,
    /// The spec file on this machine.
    pub spec_path: PathBuf,
    /// `execution.shards`: the job runs as an Indexed Job of this many pods.
    pub shards: Option<u32>,
}

/// A pipeline folder (or the folder of a single spec) and its jobs, in the
/// order they run.
#[derive(Debug, Clone)]
pub struct PipelineSource {
    pub dir: PathBuf,
    pub jobs: Vec<JobSource>,
}

/// One job of a run, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobDescription {
    pub name: String,
    /// The Iceberg namespace of the target table: bronze, silver or gold.
    pub layer: String,
    pub target_table: String,
    pub reads: Vec<String>,
    /// Where the spec is inside the container image.
    pub spec_in_image: String,
    /// Pods of an Indexed Job, each loading one shard of the raw files.
    pub shards: Option<u32>,
}

/// Everything one `render` or `submit` needs.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub job_id: String,
    pub jobs: Vec<JobDescription>,
    /// Raw-input root for this run (`MEDALLION_RAW` in the pod), e.g.
    /// `s3://raw/2026-11-29`; the image's config decides when absent.
    pub input: Option<String>,
    /// Image to run instead of the template's.
    pub image: Option<String>,
}

/// Where pipelines are copied in the image (see deploy/Dockerfile).
pub const IMAGE_PIPELINES_ROOT: &str = "/pipelines";

impl PipelineSource {
    /// The jobs with their layer and their spec's path in the image.
    /// `image_dir` is where `self.dir` is in the image; by default
    /// `/pipelines/<folder name>`, as the Dockerfile copies `jobs/reference`.
    pub fn describe(&self, image_dir: Option<&str>) -> Result<Vec<JobDescription>> {
        let image_dir = match image_dir {
            Some(dir) => dir.trim_end_matches('/').to_string(),
            None => {
                let folder = absolute_name(&self.dir)?;
                format!("{IMAGE_PIPELINES_ROOT}/{folder}")
            }
        };
        self.jobs
            .iter()
            .map(|job| {
                let relative = job.spec_path.strip_prefix(&self.dir).with_context(|| {
                    format!(
                        "job spec {} is not inside the pipeline folder {}",
                        job.spec_path.display(),
                        self.dir.display()
                    )
                })?;
                let relative = relative
                    .to_str()
                    .with_context(|| format!("{} is not UTF-8", relative.display()))?;
                Ok(JobDescription {
                    name: job.name.clone(),
                    layer: layer_of(&job.target_table)?,
                    target_table: job.target_table.clone(),
                    reads: job.reads.clone(),
                    spec_in_image: format!("{image_dir}/{relative}"),
                    shards: job.shards,
                })
            })
            .collect()
    }
}

/// `silver.orders` → `silver`.
pub fn layer_of(table: &str) -> Result<String> {
    match table.split_once('.') {
        Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
            Ok(namespace.to_string())
        }
        _ => bail!(
            "target table `{table}` has no namespace; write it as layer.table, e.g. silver.orders"
        ),
    }
}

fn absolute_name(dir: &Path) -> Result<String> {
    let absolute =
        std::path::absolute(dir).with_context(|| format!("bad pipeline path {}", dir.display()))?;
    let name = absolute
        .components()
        .rfind(|c| !matches!(c, std::path::Component::CurDir))
        .and_then(|c| c.as_os_str().to_str())
        .filter(|name| *name != "/")
        .with_context(|| {
            format!(
                "cannot name {} in the image; pass --image-path",
                dir.display()
            )
        })?;
    Ok(name.to_string())
}

/// Checks a job id before it goes into names, labels and arguments, by the
/// rule of `medallion run --job-id` (`medallion_jobs::parse_job_id`, said
/// again here to keep this crate free of DataFusion): a Job rendered with
/// an id the pod's `medallion run` refuses could only fail.
pub fn check_job_id(job_id: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-');
    if job_id.is_empty() || job_id.chars().count() > 128 || !job_id.chars().all(allowed) {
        bail!(
            "`{job_id}` is not a job id; use 1 to 128 characters of A-Za-z0-9._:-, e.g. --job-id 2026-11-29"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_medallion_run_refuses_are_refused_before_rendering() {
        for id in [
            "2026-11-29",
            "load-2",
            "2026-11-29T06:00:00Z",
            &"x".repeat(128),
        ] {
            assert!(check_job_id(id).is_ok(), "{id}");
        }
        for id in ["", " ", "load 2", "a/b", &"x".repeat(129)] {
            let error = check_job_id(id).unwrap_err().to_string();
            assert!(error.contains("A-Za-z0-9._:-"), "{id:?}: {error}");
        }
    }
}
