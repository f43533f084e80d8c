//! The container image. No Docker engine runs here, so the image is not
//! built in tests. Instead: the Dockerfile's build command is the release
//! build of the binary CI tests (same package, same Cargo.lock, no other
//! features), its runtime stage has no shell and a non-root user matching
//! the Job template, and the binary itself runs as that non-root user from
//! a read-only working directory, writing only where it is told (the Job's
//! emptyDir), as under `readOnlyRootFilesystem: true`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use medallion_deploy::job::IMAGE_PIPELINES_ROOT;
use medallion_deploy::template::Templates;

use crate::support::*;

fn dockerfile() -> String {
    std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap()
}

/// Instructions (continuation lines joined, comments dropped) per stage.
fn stages() -> Vec<Vec<String>> {
    let mut stages: Vec<Vec<String>> = Vec::new();
    let text = dockerfile().replace("\\\n", " ");
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with("FROM ") {
            stages.push(Vec::new());
        }
        stages
            .last_mut()
            .expect("the Dockerfile starts with FROM")
            .push(line.to_string());
    }
    stages
}

#[test]
fn the_dockerfile_builds_the_binary_ci_tests() {
    let stages = stages();
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let cargo: Vec<&String> = stages[0]
        .iter()
        .filter(|l| l.starts_with("RUN cargo"))
        .collect();
    assert_eq!(cargo.len(), 1, "one cargo command: {cargo:?}");
    let words: Vec<&str> = cargo[0].split_whitespace().skip(1).collect();
    // The same crate and binary the tests run (`-p medallion-engine`,
    // `medallion`), with the committed Cargo.lock as CI uses it, and
    // nothing that changes what is compiled (features, RUSTFLAGS).
    assert_eq!(
        words,
        [
            "cargo",
            "build",
            "--release",
            "--locked",
            "-p",
            "medallion-engine",
            "--bin",
            "medallion"
        ],
        "the Dockerfile's cargo command changed; keep it the README's release build of the tested crate"
    );
    assert!(!dockerfile().contains("RUSTFLAGS") && !dockerfile().contains("--features"));
    let manifest = std::fs::read_to_string(repo_root().join("engine/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("name = \"medallion-engine\"")
            && manifest.contains("name = \"medallion\"")
    );

    // The builder's toolchain is the one CI has (the machine's rustc) and
    // satisfies the workspace's rust-version.
    let from = &stages[0][0];
    let image_version = from
        .split(':')
        .nth(1)
        .and_then(|tag| tag.split('-').next())
        .expect("FROM rust:<version>-...");
    let rustc = Command::new("rustc").arg("--version").output().unwrap();
    let rustc = String::from_utf8_lossy(&rustc.stdout);
    let local: String = rustc
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    assert_eq!(
        image_version, local,
        "the image builds with Rust {image_version}, CI with {rustc}"
    );
    let workspace = std::fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    let required = workspace
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        version_at_least(image_version, required),
        "{image_version} < rust-version {required}"
    );

    // Everything copied exists.
    for line in stages
        .iter()
        .flatten()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let source = line.split_whitespace().nth(1).unwrap();
        assert!(
            repo_root().join(source).exists(),
            "{line}: {source} does not exist"
        );
    }
}

fn version_at_least(have: &str, need: &str) -> bool {
    let parse = |v: &str| {
        v.split('.')
            .map(|p| p.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    };
    parse(have) >= parse(need)
}

#[test]
fn the_runtime_stage_needs_no_shell_and_matches_the_job_template() {
    let runtime = &stages()[1];
    assert!(runtime[0].contains("distroless"), "{}", runtime[0]);
    assert!(
        !runtime.iter().any(|l| l.starts_with("RUN ")),
        "the runtime image has no shell to RUN with"
    );
    let entrypoint = runtime
        .iter()
        .find(|l| l.starts_with("ENTRYPOINT "))
        .unwrap();
    assert!(
        entrypoint.contains("[\""),
        "exec form, no shell: {entrypoint}"
    );
    let user = runtime
        .iter()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap();
    let (uid, gid) = user.split_once(':').unwrap();
    assert_ne!(uid, "0");

    let templates = Templates::embedded();
    for layer in medallion_deploy::layout::LAYERS {
        let pod = templates
            .job(layer)
            .unwrap()
            .spec
            .as_ref()
            .unwrap()
            .template
            .spec
            .clone()
            .unwrap();
        let security = pod.security_context.unwrap();
        assert_eq!(security.run_as_user.unwrap().to_string(), uid);
        assert_eq!(security.run_as_group.unwrap().to_string(), gid);
        assert_eq!(security.run_as_non_root, Some(true));
    }
    assert!(
        runtime
            .iter()
            .any(|l| l.contains(&format!("{IMAGE_PIPELINES_ROOT}/reference")))
    );
}

const NON_ROOT: &str = "65532";

/// A folder the non-root user may read and enter but not write.
fn read_only_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    dir
}

/// Runs the binary as uid/gid 65532 with an empty environment, as in the
/// image (HOME does not exist, PATH has no shell).
fn as_non_root(binary: &Path, cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            NON_ROOT,
            "--regid",
            NON_ROOT,
            "--clear-groups",
            "--",
        ])
        .arg(binary)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("HOME", "/nonexistent")
        .output()
        .expect("setpriv (util-linux) runs")
}

#[test]
fn the_binary_runs_as_non_root_from_a_read_only_folder() {
    let Some(built) = binary_or_skip("the_binary_runs_as_non_root_from_a_read_only_folder") else {
        return;
    };
    // Our build folder is under /root, which the non-root user cannot
    // enter: copy the binary where it can, as the image does.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin_dir = dir.path().join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let binary = bin_dir.join("medallion");
    std::fs::copy(&built, &binary).unwrap();
    std::fs::set_permissions(&bin_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let workdir = read_only_dir(dir.path(), "workdir");
    // The Job's emptyDir: the one place it may write.
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    Command::new("chown")
        .args([&format!("{NON_ROOT}:{NON_ROOT}"), scratch.to_str().unwrap()])
        .status()
        .unwrap();

    let help = as_non_root(&binary, &workdir, &["--help"]);
    assert!(
        help.status.success(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    assert!(String::from_utf8_lossy(&help.stdout).contains("deploy"));

    let started = std::time::Instant::now();
    let lakehouse = scratch.join("lakehouse");
    let demo = as_non_root(
        &binary,
        &workdir,
        &[
            "demo",
            "--scale",
            "0.01",
            "--quiet",
            "--lakehouse",
            lakehouse.to_str().unwrap(),
            "--spill-dir",
            scratch.join("spill").to_str().unwrap(),
        ],
    );
    let stdout = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "demo failed as non-root:\n{stdout}\n{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(stdout.contains("gold.sales_dashboard"), "{stdout}");
    eprintln!(
        "demo at scale 0.01 as uid {NON_ROOT}: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        std::fs::read_dir(&workdir).unwrap().next().is_none(),
        "nothing written to the working folder"
    );
    assert!(lakehouse.join("catalog.db").is_file());
}

#[test]
fn the_binary_renders_the_golden_run() {
    let Some(binary) = binary_or_skip("the_binary_renders_the_golden_run") else {
        return;
    };
    let output = Command::new(&binary)
        .args([
            "deploy",
            "render",
            "jobs/reference",
            "--job-id",
            "2026-11-29",
            "--input",
            "s3://raw/2026-11-29",
        ])
        .current_dir(repo_root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut rendered = documents(&String::from_utf8_lossy(&output.stdout));
    let golden =
        std::fs::read_to_string(repo_root().join("tests/deploy/golden/reference-run.yaml"))
            .unwrap();
    let mut golden = documents(&golden);
    let by_name = |v: &serde_json::Value| v["metadata"]["name"].as_str().unwrap().to_string();
    rendered.sort_by_key(by_name);
    golden.sort_by_key(by_name);
    assert_eq!(
        rendered, golden,
        "the engine describes the reference pipeline as the golden test does"
    );
}
