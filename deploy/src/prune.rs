//! `deploy prune`: remove finished Jobs' manifests from the GitOps
//! repository in one commit, so neither the repository nor ArgoCD's app
//! grows without bound. ArgoCD (prune: true) then deletes those Jobs.
//!
//! Whether a Job finished is read from Git alone: a manifest is old enough
//! when it was committed longer ago than `--older-than` and than the sum of
//! its run's `activeDeadlineSeconds` (the waves of a run start one after
//! another, and Kubernetes stops each at its deadline).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use crate::git::Git;
use crate::layout;
use crate::render::ANNOTATION_JOB_ID;
use crate::update::{Change, Landed, RepoTarget, update_branch};

/// What a prune did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub removed: Vec<String>,
    /// Manifests old enough by `--older-than` but kept because their run
    /// could still be running.
    pub kept_running: Vec<String>,
    pub landed: Landed,
}

struct Manifest {
    path: String,
    committed: SystemTime,
    job_id: String,
    deadline: Duration,
}

/// Removes manifests committed more than `older_than` before `now`.
pub fn prune(target: &RepoTarget, older_than: Duration, now: SystemTime) -> Result<Pruned> {
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    let landed = update_branch(target, |root| {
        removed.clear();
        kept.clear();
        let manifests = manifests(root, &Git::new(root, target.credentials.clone()))?;
        let mut run_deadline: HashMap<&str, Duration> = HashMap::new();
        for m in &manifests {
            *run_deadline.entry(&m.job_id).or_default() += m.deadline;
        }
        for m in &manifests {
            let age = now.duration_since(m.committed).unwrap_or_default();
            if age < older_than {
                continue;
            }
            if age < run_deadline[m.job_id.as_str()] {
                kept.push(m.path.clone());
                continue;
            }
            std::fs::remove_file(root.join(&m.path))
                .with_context(|| format!("cannot remove {}", m.path))?;
            removed.push(m.path.clone());
        }
        if removed.is_empty() {
            return Ok(Change::Nothing);
        }
        layout::write_kustomizations(root)?;
        let mut message = format!(
            "Prune {} finished job manifest{} older than {}\n\n",
            removed.len(),
            if removed.len() == 1 { "" } else { "s" },
            humantime::format_duration(older_than)
        );
        for path in &removed {
            message.push_str(&format!("- {path}\n"));
        }
        Ok(Change::Commit { message })
    })?;
    Ok(Pruned {
        removed,
        kept_running: kept,
        landed,
    })
}

/// Every job manifest of the checkout with the time of the commit that
/// added it.
fn manifests(root: &Path, git: &Git) -> Result<Vec<Manifest>> {
    if git
        .run(&["rev-parse", "--verify", "--quiet", "HEAD"])
        .is_err()
    {
        return Ok(Vec::new());
    }
    let added = added_times(git)?;
    let mut manifests = Vec::new();
    for layer in layout::layers(root)? {
        for relative in layout::layer_manifests(root, &layer)? {
            let path = layout::layer_dir(&layer).join(&relative);
            let path = path.to_string_lossy().into_owned();
            let text = std::fs::read_to_string(root.join(&path))
                .with_context(|| format!("cannot read {path}"))?;
            let job = crate::template::parse(&text)
                .with_context(|| format!("{path} is not a medallion Job manifest"))?;
            let job_id = job
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_JOB_ID).cloned())
                .unwrap_or_else(|| path.clone());
            let deadline = job
                .spec
                .as_ref()
                .and_then(|s| s.active_deadline_seconds)
                .map(|s| Duration::from_secs(s.max(0) as u64))
                .unwrap_or_default();
            let Some(&committed) = added.get(&path) else {
                // Not committed yet: not ours to judge.
                continue;
            };
            manifests.push(Manifest {
                path,
                committed,
                job_id,
                deadline,
            });
        }
    }
    Ok(manifests)
}

/// When each file under jobs/ was last added, from one `git log`.
fn added_times(git: &Git) -> Result<BTreeMap<String, SystemTime>> {
    let log = git.run(&[
        "log",
        "--diff-filter=A",
        "--name-only",
        "--format=commit %ct",
        "--",
        layout::JOBS_DIR,
    ])?;
    let mut times = BTreeMap::new();
    let mut current = None;
    for line in log.lines() {
        if let Some(seconds) = line.strip_prefix("commit ") {
            let seconds: u64 = seconds
                .trim()
                .parse()
                .context("unexpected git log output")?;
            current = Some(UNIX_EPOCH + Duration::from_secs(seconds));
        } else if !line.trim().is_empty()
            && let Some(time) = current
        {
            // Newest first: the first time a path shows is its latest add.
            times.entry(line.trim().to_string()).or_insert(time);
        }
    }
    Ok(times)
}
