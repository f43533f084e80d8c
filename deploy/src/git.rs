//! The git command line, run in one checkout. medallion shells out to git
//! rather than linking a git library: the machines it runs on have git, and
//! git's own transports, config and hooks behave as operators expect.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail};

use crate::credentials::GitCredentials;

/// A checkout and the credentials to reach its remote.
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    credentials: Option<GitCredentials>,
}

/// What a failed push means for the next step.
#[derive(Debug, PartialEq, Eq)]
pub enum PushResult {
    Pushed,
    /// The branch moved on (non-fast-forward) or another push held the ref
    /// lock: fetch, re-apply the change, push again.
    Rejected(String),
}

impl Git {
    pub fn new(dir: &Path, credentials: Option<GitCredentials>) -> Self {
        Self {
            dir: dir.to_path_buf(),
            credentials,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.dir).args(args);
        // Never wait for a password on a terminal: fail and say so.
        command.env("GIT_TERMINAL_PROMPT", "0");
        command.env("GIT_ASKPASS", "");
        command.env("SSH_ASKPASS", "");
        // Tracing would print the Authorization header.
        for name in [
            "GIT_TRACE",
            "GIT_TRACE_CURL",
            "GIT_CURL_VERBOSE",
            "GIT_TRACE_PACKET",
        ] {
            command.env_remove(name);
        }
        for (name, value) in [
            ("GIT_AUTHOR_NAME", "medallion"),
            ("GIT_AUTHOR_EMAIL", "medallion@localhost"),
            ("GIT_COMMITTER_NAME", "medallion"),
            ("GIT_COMMITTER_EMAIL", "medallion@localhost"),
        ] {
            if std::env::var_os(name).is_none() {
                command.env(name, value);
            }
        }
        if let Some(credentials) = &self.credentials {
            let existing = std::env::var("GIT_CONFIG_COUNT")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            command.envs(credentials.git_env(existing));
        }
        command
    }

    fn output(&self, args: &[&str]) -> Result<Output> {
        self.command(args)
            .output()
            .context("cannot run git; install git and put it on PATH")
    }

    fn redact(&self, text: &str) -> String {
        match &self.credentials {
            Some(credentials) => credentials.redact(text),
            None => text.to_string(),
        }
    }

    /// Runs git and returns its standard output; fails with git's message.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let output = self.output(args)?;
        if !output.status.success() {
            bail!(
                "`git {}` failed ({}): {}",
                args.join(" "),
                output.status,
                self.redact(String::from_utf8_lossy(&output.stderr).trim())
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Pushes HEAD to `branch` on origin.
    pub fn push(&self, branch: &str) -> Result<PushResult> {
        let refspec = format!("HEAD:refs/heads/{branch}");
        let output = self.output(&["push", "--porcelain", "origin", &refspec])?;
        if output.status.success() {
            return Ok(PushResult::Pushed);
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let all = format!("{stdout}\n{stderr}");
        let moved_on = [
            "non-fast-forward",
            "fetch first",
            "stale info",
            "cannot lock ref",
            "failed to update ref",
            "incorrect old value",
        ]
        .iter()
        .any(|reason| all.contains(reason));
        if moved_on {
            return Ok(PushResult::Rejected(self.redact(all.trim())));
        }
        bail!(
            "`git push origin {refspec}` failed ({}): {}",
            output.status,
            self.redact(all.trim())
        )
    }
}
