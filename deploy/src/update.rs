//! One change to a branch of the GitOps repository, landed however many
//! others push at the same time: fetch the branch, apply the change to its
//! head, commit, push; when the push is rejected because the branch moved,
//! start again from the new head (a rebase by re-applying the change, which
//! cannot conflict), with a jittered pause so racing submitters spread out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::credentials::GitCredentials;
use crate::git::{Git, PushResult};

/// Where the change goes.
#[derive(Clone)]
pub struct RepoTarget {
    /// A URL or a local path, as `git clone` takes it.
    pub repo: String,
    pub branch: String,
    pub credentials: Option<GitCredentials>,
    /// Attempts before giving up on a branch that keeps moving.
    pub max_attempts: u32,
    /// Keep the checkout here instead of a temporary folder (for looking at
    /// it afterwards; it must not exist yet or be empty).
    pub work_dir: Option<PathBuf>,
    /// Called before each push with the attempt number; tests use it to
    /// move the branch at exactly that moment.
    pub before_push: Option<std::sync::Arc<dyn Fn(u32) + Send + Sync>>,
}

impl std::fmt::Debug for RepoTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoTarget")
            .field("repo", &self.repo)
            .field("branch", &self.branch)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl RepoTarget {
    pub fn new(repo: impl Into<String>, branch: impl Into<String>) -> Self {
        Self {
            repo: repo.into(),
            branch: branch.into(),
            credentials: None,
            max_attempts: 20,
            work_dir: None,
            before_push: None,
        }
    }
}

/// A change to commit, or the reason there is nothing to do.
pub enum Change {
    Commit { message: String },
    Nothing,
}

/// What happened to the branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// The change is on the branch in this commit.
    Committed { commit: String, attempts: u32 },
    /// The change had nothing to commit on the branch's head.
    Unchanged,
}

/// Applies `change` to the head of the branch and pushes, retrying on a
/// moved branch. `change` runs once per attempt, on a clean checkout of the
/// current head (or an empty folder when the branch does not exist yet).
pub fn update_branch(
    target: &RepoTarget,
    mut change: impl FnMut(&Path) -> Result<Change>,
) -> Result<Landed> {
    let temporary;
    let dir = match &target.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temporary = tempfile::tempdir().context("cannot create a temporary checkout folder")?;
            temporary.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let git = Git::new(&dir, target.credentials.clone());
    git.run(&["init", "--quiet", "--initial-branch", &target.branch])?;
    git.run(&["remote", "add", "origin", &target.repo])?;
    // Keep commits from the user's signing setup and hooks out of the way.
    git.run(&["config", "commit.gpgsign", "false"])?;

    let tracking = format!("refs/remotes/origin/{}", target.branch);
    let mut last_rejection = String::new();
    for attempt in 1..=target.max_attempts {
        let exists = fetch(&git, target)?;
        if exists {
            git.run(&["reset", "--quiet", "--hard", &tracking])?;
        } else {
            // A new repository: start the branch from nothing.
            let _ = git.run(&["update-ref", "-d", "HEAD"]);
            git.run(&["read-tree", "--empty"])?;
        }
        git.run(&["clean", "--quiet", "-fdx"])?;

        let message = match change(&dir)? {
            Change::Nothing => return Ok(Landed::Unchanged),
            Change::Commit { message } => message,
        };
        git.run(&["add", "--all", "."])?;
        if git.run(&["status", "--porcelain"])?.trim().is_empty() {
            return Ok(Landed::Unchanged);
        }
        git.run(&["commit", "--quiet", "--no-verify", "-m", &message])?;
        if let Some(hook) = &target.before_push {
            hook(attempt);
        }
        match git.push(&target.branch)? {
            PushResult::Pushed => {
                let commit = git.run(&["rev-parse", "HEAD"])?.trim().to_string();
                return Ok(Landed::Committed {
                    commit,
                    attempts: attempt,
                });
            }
            PushResult::Rejected(reason) => {
                last_rejection = reason;
                std::thread::sleep(backoff(attempt));
            }
        }
    }
    bail!(
        "{} moved on at every one of {} attempts; last rejection: {last_rejection}",
        target.branch,
        target.max_attempts
    )
}

/// Fetches the branch; false when the remote does not have it yet.
fn fetch(git: &Git, target: &RepoTarget) -> Result<bool> {
    let heads = git
        .run(&["ls-remote", "--heads", "origin", &target.branch])
        .with_context(|| format!("cannot reach the GitOps repository {}", target.repo))?;
    if heads.trim().is_empty() {
        return Ok(false);
    }
    let refspec = format!("+refs/heads/{0}:refs/remotes/origin/{0}", target.branch);
    git.run(&["fetch", "--quiet", "origin", &refspec])?;
    Ok(true)
}

/// 50 ms doubling to 2 s, with up to half of it again at random.
fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(6)).min(2000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = (u64::from(nanos) ^ u64::from(std::process::id())) % (base / 2 + 1);
    Duration::from_millis(base + jitter)
}
