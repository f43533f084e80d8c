//! `deploy prune` against real git: old manifests go in one commit, recent
//! ones and runs that may still be going stay, and the kustomizations
//! follow.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use medallion_deploy::layout;
use medallion_deploy::prune::prune;
use medallion_deploy::render::render;
use medallion_deploy::submit::submit;
use medallion_deploy::template::Templates;
use medallion_deploy::update::{Landed, RepoTarget};

use crate::support::*;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Commits a run's manifests as if submitted `days_ago`.
fn submit_as_of(bare: &Path, work: &Path, run: &medallion_deploy::RunRequest, days_ago: u64) {
    if !work.exists() {
        git(
            work.parent().unwrap(),
            &[
                "clone",
                "--quiet",
                bare.to_str().unwrap(),
                work.to_str().unwrap(),
            ],
        );
    }
    if !git(bare, &["branch", "--list", "main"]).trim().is_empty() {
        git(work, &["pull", "--quiet", "--ff-only", "origin", "main"]);
    }
    Templates::embedded().bootstrap(work, &[]).unwrap();
    for job in render(run, &Templates::embedded()).unwrap() {
        std::fs::write(
            work.join(layout::manifest_path(&job.layer, job.name())),
            job.to_yaml().unwrap(),
        )
        .unwrap();
    }
    layout::write_kustomizations(work).unwrap();
    git(work, &["add", "--all"]);
    let seconds = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - days_ago * DAY.as_secs();
    let date = format!("@{seconds} +0000");
    let status = Command::new("git")
        .arg("-C")
        .arg(work)
        .args([
            "commit",
            "--quiet",
            "-m",
            &format!("Submit job id {}", run.job_id),
        ])
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_DATE", &date)
        .env("GIT_AUTHOR_DATE", &date)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    git(work, &["push", "--quiet", "origin", "HEAD:main"]);
}

#[test]
fn old_manifests_go_in_one_commit_and_recent_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path(), "gitops.git");
    let work = dir.path().join("work");
    submit_as_of(&bare, &work, &reference_run("old"), 10);
    submit_as_of(&bare, &work, &reference_run("recent"), 2);
    submit(
        &one_job_run("bronze_orders", "today"),
        &RepoTarget::new(bare.to_str().unwrap(), "main"),
    )
    .unwrap();
    let commits_before: u32 = git(&bare, &["rev-list", "--count", "main"])
        .trim()
        .parse()
        .unwrap();

    let pruned = prune(
        &RepoTarget::new(bare.to_str().unwrap(), "main"),
        7 * DAY,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(pruned.removed.len(), 7, "{pruned:?}");
    assert!(
        pruned.removed.iter().all(|p| p.ends_with("-old.yaml")),
        "{pruned:?}"
    );
    assert!(matches!(pruned.landed, Landed::Committed { .. }));
    let commits_after: u32 = git(&bare, &["rev-list", "--count", "main"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(commits_after, commits_before + 1, "one commit");
    let subject = git(&bare, &["log", "-1", "--format=%s", "main"]);
    assert_eq!(
        subject.trim(),
        "Prune 7 finished job manifests older than 7days"
    );

    let files = remote_files(&bare, "main");
    assert!(!files.iter().any(|f| f.ends_with("-old.yaml")));
    assert_eq!(
        files.iter().filter(|f| f.ends_with("-recent.yaml")).count(),
        7
    );
    assert!(files.iter().any(|f| f.ends_with("-today.yaml")));
    // The kustomizations no longer list the removed files, and still build.
    let checkout = dir.path().join("after");
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            checkout.to_str().unwrap(),
        ],
    );
    assert_eq!(documents(&kustomize(&checkout.join("jobs"))).len(), 8);

    // Again: nothing left that old.
    let again = prune(
        &RepoTarget::new(bare.to_str().unwrap(), "main"),
        7 * DAY,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(again.landed, Landed::Unchanged);
}

#[test]
fn a_run_that_may_still_be_going_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path(), "gitops.git");
    submit(
        &reference_run("running"),
        &RepoTarget::new(bare.to_str().unwrap(), "main"),
    )
    .unwrap();
    // An hour later, with a tiny --older-than: the run's waves may take up
    // to the sum of their deadlines (12 hours for the reference pipeline).
    let an_hour_later = SystemTime::now() + Duration::from_secs(3600);
    let pruned = prune(
        &RepoTarget::new(bare.to_str().unwrap(), "main"),
        Duration::from_secs(1),
        an_hour_later,
    )
    .unwrap();
    assert!(pruned.removed.is_empty(), "{pruned:?}");
    assert_eq!(pruned.kept_running.len(), 7);
    assert_eq!(pruned.landed, Landed::Unchanged);

    let next_day = SystemTime::now() + DAY;
    let pruned = prune(
        &RepoTarget::new(bare.to_str().unwrap(), "main"),
        Duration::from_secs(1),
        next_day,
    )
    .unwrap();
    assert_eq!(pruned.removed.len(), 7);
}
