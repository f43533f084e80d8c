//! `deploy submit`: commit a run's Job manifests to the GitOps repository,
//! where ArgoCD applies them. One run is one commit. A job id submitted
//! again is a no-op when its manifests are the same, and refused when they
//! differ: Git never holds two Jobs for one job of one run.

use std::path::Path;

use anyhow::{Result, bail};

use crate::job::RunRequest;
use crate::layout;
use crate::render::{ANNOTATION_JOB_ID, RenderedJob, render};
use crate::template::Templates;
use crate::update::{Change, Landed, RepoTarget, update_branch};

/// What a submit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// Manifests committed, relative to the repository root.
    pub added: Vec<String>,
    /// Manifests that were already there, identical: nothing to do for them.
    pub already_submitted: Vec<String>,
    pub landed: Landed,
}

/// Renders the run on the branch's head (with the repository's templates)
/// and commits the new manifests.
pub fn submit(run: &RunRequest, target: &RepoTarget) -> Result<Submitted> {
    let mut added = Vec::new();
    let mut already = Vec::new();
    let landed = update_branch(target, |root| {
        added.clear();
        already.clear();
        let templates = Templates::from_checkout(root)?;
        let layers: Vec<&str> = run.jobs.iter().map(|j| j.layer.as_str()).collect();
        templates.bootstrap(root, &layers)?;
        let rendered = render(run, &templates)?;
        for job in &rendered {
            let relative = layout::manifest_path(&job.layer, job.name());
            let text = job.to_yaml()?;
            match std::fs::read_to_string(root.join(&relative)) {
                Ok(existing) if existing == text => already.push(display(&relative)),
                Ok(existing) => refuse_duplicate(run, job, &relative, &existing)?,
                Err(_) => {
                    std::fs::write(root.join(&relative), text)?;
                    added.push(display(&relative));
                }
            }
        }
        if added.is_empty() {
            return Ok(Change::Nothing);
        }
        layout::write_kustomizations(root)?;
        Ok(Change::Commit {
            message: commit_message(run, &rendered, &added),
        })
    })?;
    Ok(Submitted {
        added,
        already_submitted: already,
        landed,
    })
}

fn refuse_duplicate(
    run: &RunRequest,
    job: &RenderedJob,
    path: &Path,
    existing: &str,
) -> Result<()> {
    let existing_id = crate::template::parse(existing)
        .ok()
        .and_then(|j| j.metadata.annotations?.get(ANNOTATION_JOB_ID).cloned());
    match existing_id {
        Some(id) if id != run.job_id => bail!(
            "{} already holds job id `{id}`, whose Job name `{}` job id `{}` also maps to; use a job id that differs in more than punctuation or case",
            display(path),
            job.name(),
            run.job_id
        ),
        _ => bail!(
            "job id `{}` was already submitted as {} with a different manifest (another image, input or template); a job id runs once: submit a new job id, or prune the old manifest first",
            run.job_id,
            display(path)
        ),
    }
}

fn commit_message(run: &RunRequest, rendered: &[RenderedJob], added: &[String]) -> String {
    let names: Vec<&str> = rendered.iter().map(RenderedJob::name).collect();
    let mut message = format!(
        "Submit job id {}: {} job{}\n\n",
        run.job_id,
        added.len(),
        if added.len() == 1 { "" } else { "s" }
    );
    for path in added {
        message.push_str(&format!("- {path}\n"));
    }
    if added.len() < names.len() {
        message.push_str(&format!(
            "\n{} job(s) of this run were already submitted.\n",
            names.len() - added.len()
        ));
    }
    message
}

fn display(path: &Path) -> String {
    path.display().to_string()
}
