//! No S3 keys configured and nothing vended: medallion says which bucket
//! lacks credentials and how to give them, at once, and never asks the EC2
//! instance-metadata address (169.254.169.254). The binary runs in a
//! network namespace of its own (`unshare -n`), where no address answers:
//! a request to the metadata address would fail with a network error, not
//! the sentence, and a client waiting on it would hit the time limit.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::Lakehouse;

/// Far above the sentence's own time (well under a second), far below a
/// metadata client's retries.
const LIMIT: Duration = Duration::from_secs(60);

/// `command` run by `unshare -n`, with its arguments and environment.
fn without_network(command: &Command) -> Command {
    let mut wrapped = Command::new("unshare");
    wrapped
        .arg("-n")
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// Runs `command` to its end, failing the test if it outlives [`LIMIT`].
fn within_limit(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare runs");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > LIMIT {
            child.kill().unwrap();
            panic!("medallion without credentials still ran after {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn without_keys_or_vended_credentials_the_error_names_the_bucket_and_no_metadata_address_is_asked()
{
    let probe = Command::new("unshare").args(["-n", "true"]).status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs `unshare -n` (root, or user namespaces enabled)"
    );
    let lakehouse = Lakehouse::new();
    let mut command = lakehouse.command(&[
        "--raw",
        "s3://raw/",
        "--s3-endpoint",
        "http://127.0.0.1:9",
        "demo",
        "--scale",
        "0.001",
    ]);
    // Nothing from the machine running the tests: no keys, no profile.
    command.env("HOME", lakehouse.path());
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
        command.env_remove(key);
    }
    let out = within_limit(without_network(&command));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no S3 credentials for bucket `raw`")
            && stderr.contains("AWS_ACCESS_KEY_ID")
            && stderr.contains("s3.instance_metadata")
            && !stderr.contains("169.254"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
}
