//! `deploy submit` against real git: a local bare repository as the GitOps
//! remote, submitters racing on one branch, a push rejected because the
//! branch moved, duplicate job ids, and an HTTPS-style remote that needs a
//! token (git's own http-backend behind a small server checking it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use medallion_deploy::credentials::GitCredentials;
use medallion_deploy::submit::submit;
use medallion_deploy::update::{Landed, RepoTarget};

use crate::git_http_server::GitHttpServer;
use crate::support::*;

fn target(bare: &std::path::Path) -> RepoTarget {
    RepoTarget::new(bare.to_str().unwrap(), "main")
}

#[test]
fn a_run_lands_in_one_commit_at_the_layers_jobs_paths() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path(), "gitops.git");
    let submitted = submit(&reference_run("2026-11-29"), &target(&bare)).unwrap();
    assert_eq!(submitted.added.len(), 7);
    assert!(matches!(
        submitted.landed,
        Landed::Committed { attempts: 1, .. }
    ));

    let files = remote_files(&bare, "main");
    for expected in [
        "jobs/kustomization.yaml",
        "jobs/bronze-layer/template.yaml",
        "jobs/bronze-layer/jobs/bronze-orders-2026-11-29.yaml",
        "jobs/silver-layer/jobs/silver-dq-report-2026-11-29.yaml",
        "jobs/gold-layer/jobs/gold-sales-dashboard-2026-11-29.yaml",
    ] {
        assert!(
            files.contains(&expected.to_string()),
            "{expected} missing from {files:?}"
        );
    }
    let log = git(&bare, &["log", "--format=%s", "main"]);
    assert_eq!(
        log.trim(),
        "Submit job id 2026-11-29: 7 jobs",
        "one commit naming the job id"
    );

    // What ArgoCD will build: the repository's jobs/ folder through kustomize.
    let checkout = dir.path().join("checkout");
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            checkout.to_str().unwrap(),
        ],
    );
    let built = documents(&kustomize(&checkout.join("jobs")));
    assert_eq!(built.len(), 7);
    for object in &built {
        medallion_deploy::schema::check_object(object).unwrap();
    }
}

#[test]
fn the_same_job_id_twice_is_a_no_op_and_a_changed_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path(), "gitops.git");
    let run = one_job_run("bronze_orders", "2026-11-29");
    submit(&run, &target(&bare)).unwrap();
    let head = git(&bare, &["rev-parse", "main"]);

    let again = submit(&run, &target(&bare)).unwrap();
    assert_eq!(again.landed, Landed::Unchanged);
    assert_eq!(
        again.already_submitted,
        ["jobs/bronze-layer/jobs/bronze-orders-2026-11-29.yaml"]
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), head, "no new commit");

    let mut changed = run.clone();
    changed.image = Some("ghcr.io/medallion-data/medallion:9.9.9".into());
    let err = submit(&changed, &target(&bare)).unwrap_err().to_string();
    assert!(
        err.contains("already submitted") && err.contains("new job id"),
        "{err}"
    );
    assert_eq!(git(&bare, &["rev-parse", "main"]), head);
}

#[test]
fn concurrent_submitters_all_land_and_duplicates_never_make_two_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path(), "gitops.git");
    // Six submitters start together: four distinct job ids, and one id
    // submitted three times at once.
    let runs = [
        one_job_run("bronze_orders", "run-a"),
        one_job_run("bronze_orders", "run-b"),
        one_job_run("bronze_customers", "run-c"),
        one_job_run("bronze_orders", "run-dup"),
        one_job_run("bronze_orders", "run-dup"),
        one_job_run("bronze_orders", "run-dup"),
    ];
    let barrier = Arc::new(std::sync::Barrier::new(runs.len()));
    let handles: Vec<_> = runs
        .into_iter()
        .map(|run| {
            let barrier = barrier.clone();
            let target = target(&bare);
            std::thread::spawn(move || {
                barrier.wait();
                submit(&run, &target).unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();

    // Duplicates that start in the same second build the very same commit
    // (same tree, parent, author and time), so a twin's push finds it
    // already there: count distinct commits.
    let committed = results
        .iter()
        .filter_map(|r| match &r.landed {
            Landed::Committed { commit, .. } => Some(commit.clone()),
            Landed::Unchanged => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let retried = results
        .iter()
        .any(|r| matches!(r.landed, Landed::Committed { attempts, .. } if attempts > 1));
    assert_eq!(
        committed, 4,
        "three distinct ids and the duplicate once: {results:#?}"
    );
    assert!(
        retried,
        "racing pushes were rejected and retried: {results:#?}"
    );

    let files = remote_files(&bare, "main");
    let jobs: Vec<_> = files
        .iter()
        .filter(|f| f.contains("/jobs/") && f.ends_with(".yaml"))
        .collect();
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    // The kustomization lists every one of them, although each submitter
    // rewrote it.
    let kustomization = git(
        &bare,
        &["show", "main:jobs/bronze-layer/kustomization.yaml"],
    );
    for job in &jobs {
        let relative = job.trim_start_matches("jobs/bronze-layer/");
        assert!(
            kustomization.contains(relative),
            "{relative} not in:\n{kustomization}"
        );
    }
    // History is linear: every submit is a commit on top of the previous one.
    let merges = git(&bare, &["rev-list", "--merges", "--count", "main"]);
    assert_eq!(merges.trim(), "0");
    assert_eq!(git(&bare, &["rev-list", "--count", "main"]).trim(), "4");
}

#[test]
fn a_push_rejected_as_non_fast_forward_is_retried_on_the_new_head() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path(), "gitops.git");
    submit(&one_job_run("bronze_orders", "first"), &target(&bare)).unwrap();

    // Between our fetch and our push, someone else pushes to the branch.
    let other = dir.path().join("other");
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    let pushes = Arc::new(AtomicU32::new(0));
    let mut racing = target(&bare);
    let other_clone = other.clone();
    let count = pushes.clone();
    racing.before_push = Some(Arc::new(move |attempt| {
        if attempt == 1 {
            count.fetch_add(1, Ordering::SeqCst);
            std::fs::write(other_clone.join("README.md"), "someone else's change\n").unwrap();
            git(&other_clone, &["add", "README.md"]);
            git(&other_clone, &["commit", "--quiet", "-m", "Someone else"]);
            git(&other_clone, &["push", "--quiet", "origin", "main"]);
        }
    }));
    let submitted = submit(&one_job_run("bronze_orders", "second"), &racing).unwrap();
    assert_eq!(pushes.load(Ordering::SeqCst), 1);
    assert!(
        matches!(submitted.landed, Landed::Committed { attempts: 2, .. }),
        "{submitted:?}"
    );
    let log = git(&bare, &["log", "--format=%s", "main"]);
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        [
            "Submit job id second: 1 job",
            "Someone else",
            "Submit job id first: 1 job"
        ]
    );
}

#[test]
fn a_branch_that_keeps_moving_fails_with_the_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let bare = bare_repo(dir.path(), "gitops.git");
    submit(&one_job_run("bronze_orders", "first"), &target(&bare)).unwrap();
    let other = dir.path().join("other");
    git(
        dir.path(),
        &[
            "clone",
            "--quiet",
            bare.to_str().unwrap(),
            other.to_str().unwrap(),
        ],
    );
    let mut racing = target(&bare);
    racing.max_attempts = 2;
    racing.before_push = Some(Arc::new(move |attempt| {
        git(&other, &["pull", "--quiet", "--ff-only"]);
        std::fs::write(other.join("README.md"), format!("{attempt}\n")).unwrap();
        git(&other, &["add", "README.md"]);
        git(&other, &["commit", "--quiet", "-m", "move"]);
        git(&other, &["push", "--quiet", "origin", "main"]);
    }));
    let err = format!(
        "{:#}",
        submit(&one_job_run("bronze_orders", "second"), &racing).unwrap_err()
    );
    assert!(err.contains("moved on at every one of 2 attempts"), "{err}");
}

#[test]
fn a_token_reaches_the_server_but_never_git_config_or_output() {
    let dir = tempfile::tempdir().unwrap();
    let repos = dir.path().join("served");
    std::fs::create_dir_all(&repos).unwrap();
    let bare = bare_repo(&repos, "gitops.git");
    let token = "tok-4f1c2b9e8d7a6b5c";
    let server = GitHttpServer::start(&repos, token);
    let url = format!("{}/gitops.git", server.url());

    // Without credentials: refused, and said so.
    let err = format!(
        "{:#}",
        submit(
            &one_job_run("bronze_orders", "x"),
            &RepoTarget::new(&url, "main")
        )
        .unwrap_err()
    );
    assert!(err.contains("cannot reach the GitOps repository"), "{err}");

    // A wrong token: refused; the message does not echo it.
    let mut wrong = RepoTarget::new(&url, "main");
    wrong.credentials = Some(GitCredentials::basic("bot", "not-the-token").unwrap());
    let err = format!(
        "{:#}",
        submit(&one_job_run("bronze_orders", "x"), &wrong).unwrap_err()
    );
    assert!(!err.contains("not-the-token"), "{err}");

    // The token from a mounted file: lands.
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let work = dir.path().join("work");
    let mut with_token = RepoTarget::new(&url, "main");
    with_token.credentials = GitCredentials::from_environment(Some(&token_file)).unwrap();
    with_token.work_dir = Some(work.clone());
    let submitted = submit(&one_job_run("bronze_orders", "with-token"), &with_token).unwrap();
    assert!(matches!(submitted.landed, Landed::Committed { .. }));
    assert!(
        remote_files(&bare, "main")
            .iter()
            .any(|f| f.ends_with("bronze-orders-with-token.yaml"))
    );
    assert!(server.authorized_requests() > 0);

    // Nowhere in the checkout (.git/config included), the pushed repository,
    // the result or the error messages.
    let encoded = base64_of(&format!("x-access-token:{token}"));
    let mut found = grep_dir(&work, &[token, &encoded]);
    found.extend(grep_dir(&bare, &[token, &encoded]));
    assert!(found.is_empty(), "the token is in {found:?}");
    // Objects are compressed on disk: look at the pushed history as text too.
    let history = git(&bare, &["log", "-p", "--all"]);
    assert!(!history.contains(token) && !history.contains(&encoded));
    let config = std::fs::read_to_string(work.join(".git/config")).unwrap();
    assert!(
        !config.contains("extraHeader") && !config.contains(token),
        "{config}"
    );
    assert!(!format!("{submitted:?}{with_token:?}").contains(token));
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Files under `dir` that contain any of `needles`.
fn grep_dir(dir: &std::path::Path, needles: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(grep_dir(&path, needles));
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            if needles.iter().any(|n| text.contains(n)) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}
