//! A pipeline folder loaded and put in run order by table dependencies, and
//! the reference pipeline compiled into the binary.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::{JobError, Result};
use crate::spec::{InputSpec, JobSpec, RawFormat, TargetMode};

/// The subfolder of a pipeline that holds its dataset specs, not jobs.
pub const DATASETS_DIR: &str = "datasets";

/// A folder of job specs, in the order they must run: a job that reads a
/// table runs after the job that writes it; otherwise by file path. Its
/// `datasets/` folder holds the datasets uploads are checked against.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub dir: PathBuf,
    pub jobs: Vec<JobSpec>,
    pub datasets: Vec<Dataset>,
}

/// The reference pipeline (`shared/pipeline-v1.md`), compiled into the binary
/// so `medallion demo` works from any folder.
const REFERENCE_FILES: &[(&str, &str)] = &[
    (
        "datasets/orders.yaml",
        include_str!("../reference/datasets/orders.yaml"),
    ),
    (
        "datasets/customer.yaml",
        include_str!("../reference/datasets/customer.yaml"),
    ),
    (
        "bronze/orders.yaml",
        include_str!("../reference/bronze/orders.yaml"),
    ),
    (
        "bronze/customers.yaml",
        include_str!("../reference/bronze/customers.yaml"),
    ),
    (
        "silver/customers.yaml",
        include_str!("../reference/silver/customers.yaml"),
    ),
    (
        "silver/orders.yaml",
        include_str!("../reference/silver/orders.yaml"),
    ),
    (
        "silver/orders.sql",
        include_str!("../reference/silver/orders.sql"),
    ),
    (
        "silver/dq_report.yaml",
        include_str!("../reference/silver/dq_report.yaml"),
    ),
    (
        "silver/dq_report.sql",
        include_str!("../reference/silver/dq_report.sql"),
    ),
    (
        "gold/customer_metrics.yaml",
        include_str!("../reference/gold/customer_metrics.yaml"),
    ),
    (
        "gold/customer_metrics.sql",
        include_str!("../reference/gold/customer_metrics.sql"),
    ),
    (
        "gold/sales_dashboard.yaml",
        include_str!("../reference/gold/sales_dashboard.yaml"),
    ),
    (
        "gold/sales_dashboard.sql",
        include_str!("../reference/gold/sales_dashboard.sql"),
    ),
];

/// Writes the reference pipeline into `dir` (files already there are kept,
/// so a user's edits survive) and returns the folder.
pub fn reference_pipeline_dir(dir: &Path) -> Result<PathBuf> {
    for (relative, text) in REFERENCE_FILES {
        let path = dir.join(relative);
        if path.exists() {
            continue;
        }
        let io = |source| JobError::Io {
            path: path.clone(),
            context: "cannot write the reference pipeline".into(),
            source,
        };
        std::fs::create_dir_all(path.parent().expect("relative path has a parent")).map_err(io)?;
        std::fs::write(&path, text).map_err(io)?;
    }
    Ok(dir.to_path_buf())
}

impl Pipeline {
    /// Loads a pipeline folder, or a single job spec file.
    pub fn load(path: &Path) -> Result<Self> {
        if path.is_file() {
            let job = JobSpec::load(path)?;
            return Ok(Self {
                dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                jobs: vec![job],
                datasets: Vec::new(),
            });
        }
        if !path.is_dir() {
            return Err(JobError::Spec {
                path: path.to_path_buf(),
                message: "no such pipeline folder or job spec; `medallion demo` writes the \
                          reference pipeline to lakehouse/pipelines/reference"
                    .into(),
            });
        }
        let mut files = Vec::new();
        collect_specs(path, &mut files)?;
        files.sort();
        let datasets_dir = path.join(DATASETS_DIR);
        let (dataset_files, files): (Vec<_>, Vec<_>) = files
            .into_iter()
            .partition(|f| f.starts_with(&datasets_dir));
        if files.is_empty() {
            return Err(JobError::Spec {
                path: path.to_path_buf(),
                message: "the folder holds no job specs (*.yaml)".into(),
            });
        }
        let jobs = files
            .iter()
            .map(|f| JobSpec::load(f))
            .collect::<Result<Vec<_>>>()?;
        let pipeline = Self {
            dir: path.to_path_buf(),
            jobs: order(jobs)?,
            datasets: dataset_files
                .iter()
                .map(|f| Dataset::load(f))
                .collect::<Result<Vec<_>>>()?,
        };
        pipeline.check_datasets()?;
        Ok(pipeline)
    }

    /// Each dataset is declared once and feeds a raw input of a job here.
    fn check_datasets(&self) -> Result<()> {
        for (index, dataset) in self.datasets.iter().enumerate() {
            let error = |message: String| JobError::Spec {
                path: dataset.path.clone(),
                message: format!("dataset `{}`: {message}", dataset.dataset),
            };
            if let Some(other) = self.datasets[..index]
                .iter()
                .find(|d| d.dataset == dataset.dataset)
            {
                return Err(error(format!("also declared by {}", other.path.display())));
            }
            let (job_name, input) = dataset.feeds().map_err(error)?;
            let Some(job) = self.jobs.iter().find(|j| j.name == job_name) else {
                return Err(error(format!(
                    "`feeds: {}` names no job of this pipeline; jobs: {}",
                    dataset.feeds,
                    self.job_names()
                )));
            };
            let raw: Vec<(&str, RawFormat)> = job
                .inputs
                .iter()
                .filter_map(|i| match i {
                    InputSpec::Raw { name, format, .. } => Some((name.as_str(), *format)),
                    InputSpec::Table { .. } => None,
                })
                .collect();
            match raw.iter().find(|(name, _)| *name == input) {
                None => {
                    let names: Vec<&str> = raw.iter().map(|(name, _)| *name).collect();
                    return Err(error(format!(
                        "`feeds: {}`: job `{job_name}` has no raw input `{input}`; its raw inputs: {}",
                        dataset.feeds,
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    )));
                }
                // Uploads land as Parquet, so the input must read Parquet.
                Some((_, format)) if *format != RawFormat::Parquet => {
                    return Err(error(format!(
                        "`feeds: {}`: raw input `{input}` reads {format:?} files, but uploads land as Parquet; \
                         give it `format: parquet`",
                        dataset.feeds
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// The dataset of this name.
    pub fn dataset(&self, name: &str) -> Result<&Dataset> {
        self.datasets
            .iter()
            .find(|d| d.dataset == name)
            .ok_or_else(|| JobError::Spec {
                path: self.dir.join(DATASETS_DIR),
                message: format!(
                    "no dataset named `{name}`; datasets: {}",
                    if self.datasets.is_empty() {
                        "none (add datasets/<name>.yaml to the pipeline)".to_string()
                    } else {
                        self.datasets
                            .iter()
                            .map(|d| d.dataset.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            })
    }

    fn job_names(&self) -> String {
        self.jobs
            .iter()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The jobs selected by name (all when `names` is empty), in pipeline order.
    pub fn select(&self, names: &[String]) -> Result<Vec<&JobSpec>> {
        for name in names {
            if !self.jobs.iter().any(|j| &j.name == name) {
                return Err(JobError::Spec {
                    path: self.dir.clone(),
                    message: format!("no job named `{name}`; jobs: {}", self.job_names()),
                });
            }
        }
        Ok(self
            .jobs
            .iter()
            .filter(|j| names.is_empty() || names.contains(&j.name))
            .collect())
    }
}

fn collect_specs(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| JobError::Io {
        path: dir.to_path_buf(),
        context: "cannot read the pipeline folder".into(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_specs(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

/// Bronze before silver before gold, where dependencies leave a choice.
fn layer_rank(table: &str) -> usize {
    let layer = table.split('.').next().unwrap_or_default();
    ["bronze", "silver", "gold"]
        .iter()
        .position(|l| *l == layer)
        .unwrap_or(3)
}

/// Topological order by table dependencies; among jobs that are ready, by
/// layer, then by file path.
fn order(jobs: Vec<JobSpec>) -> Result<Vec<JobSpec>> {
    let mut writers: HashMap<String, usize> = HashMap::new();
    let mut names: HashMap<&str, &Path> = HashMap::new();
    for (index, job) in jobs.iter().enumerate() {
        if let Some(other) = names.insert(&job.name, &job.path) {
            return Err(JobError::Spec {
                path: job.path.clone(),
                message: format!(
                    "job name `{}` is also used by {}",
                    job.name,
                    other.display()
                ),
            });
        }
        // Maintenance runs after the job that writes the table; it does
        // not own the table.
        if job.target.mode == TargetMode::Maintain {
            continue;
        }
        if let Some(&other) = writers.get(&job.target.table) {
            return Err(JobError::Spec {
                path: job.path.clone(),
                message: format!(
                    "table {} is also written by {}; one job owns a table",
                    job.target.table,
                    jobs[other].path.display()
                ),
            });
        }
        writers.insert(job.target.table.clone(), index);
    }
    let depends_on: Vec<Vec<usize>> = jobs
        .iter()
        .map(|job| {
            let maintained =
                (job.target.mode == TargetMode::Maintain).then_some(job.target.table.as_str());
            job.input_tables()
                .chain(maintained)
                .filter_map(|t| writers.get(t).copied())
                .collect()
        })
        .collect();
    let mut remaining: BTreeMap<usize, Vec<usize>> = depends_on.into_iter().enumerate().collect();
    let mut done = vec![false; jobs.len()];
    let mut sequence = Vec::with_capacity(jobs.len());
    while !remaining.is_empty() {
        let ready = remaining
            .iter()
            .filter(|(_, deps)| deps.iter().all(|&d| done[d]))
            .map(|(&index, _)| index)
            .min_by_key(|&index| (layer_rank(&jobs[index].target.table), index));
        match ready {
            Some(index) => {
                remaining.remove(&index);
                done[index] = true;
                sequence.push(index);
            }
            None => {
                let cycle: Vec<&str> = remaining.keys().map(|&i| jobs[i].name.as_str()).collect();
                return Err(JobError::Spec {
                    path: jobs[*remaining.keys().next().expect("non-empty")]
                        .path
                        .clone(),
                    message: format!("jobs depend on each other in a cycle: {}", cycle.join(", ")),
                });
            }
        }
    }
    let mut slots: Vec<Option<JobSpec>> = jobs.into_iter().map(Some).collect();
    Ok(sequence
        .into_iter()
        .map(|i| slots[i].take().expect("each job once"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `dir`, relative to `root`.
    fn files_under(root: &Path, dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(root, &path, found);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                found.push(relative.to_str().unwrap().to_string());
            }
        }
    }

    /// `jobs/reference/` is the truth; `medallion demo` runs what the binary
    /// embeds. A file added there but not to `REFERENCE_FILES` would be
    /// missing from every demo, so the two must list the same files.
    #[test]
    fn the_binary_embeds_every_file_of_the_reference_pipeline() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
        let mut on_disk = Vec::new();
        files_under(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = REFERENCE_FILES
            .iter()
            .map(|(relative, _)| relative.to_string())
            .collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "REFERENCE_FILES in jobs/src/pipeline.rs must list every file of jobs/reference/"
        );
        for (relative, text) in REFERENCE_FILES {
            let on_disk = std::fs::read_to_string(root.join(relative)).unwrap();
            assert_eq!(*text, on_disk, "{relative} is embedded from another file");
        }
    }

    /// A pipeline folder with one bronze job reading `raw` in `format`,
    /// and one dataset feeding `feeds`.
    fn load_with_dataset(format: &str, feeds: &str) -> Result<Pipeline> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("datasets")).unwrap();
        std::fs::write(
            dir.path().join("bronze.yaml"),
            format!("name: bronze_x\ninputs:\n  - {{ name: raw, path: x, format: {format} }}\nsteps:\n  - bronze:\n      from: raw\n      columns:\n        - {{ name: id, from: id, type: int64 }}\ntarget: {{ table: bronze.x, mode: append }}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("datasets/x.yaml"),
            format!("dataset: x\nformats: [csv]\ncolumns:\n  - {{ name: id, type: int64 }}\nfeeds: {feeds}\n"),
        )
        .unwrap();
        Pipeline::load(dir.path())
    }

    #[test]
    fn datasets_are_loaded_as_datasets_and_feed_a_raw_parquet_input_of_a_job() {
        let pipeline = load_with_dataset("parquet", "bronze_x.raw").unwrap();
        assert_eq!(pipeline.jobs.len(), 1, "a dataset spec is no job");
        assert_eq!(pipeline.dataset("x").unwrap().feeds, "bronze_x.raw");
        let err = pipeline.dataset("y").unwrap_err().to_string();
        assert!(err.contains("no dataset named `y`; datasets: x"), "{err}");

        let err = load_with_dataset("parquet", "bronze_y.raw")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("names no job of this pipeline; jobs: bronze_x"),
            "{err}"
        );
        let err = load_with_dataset("parquet", "bronze_x.other")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("has no raw input `other`; its raw inputs: raw"),
            "{err}"
        );
        let err = load_with_dataset("csv", "bronze_x.raw")
            .unwrap_err()
            .to_string();
        assert!(err.contains("uploads land as Parquet"), "{err}");
    }
}
