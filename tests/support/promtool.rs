//! Prometheus's own parser and linter for a text exposition (`promtool
//! check metrics`), and the programs the monitoring tests need.

use std::io::Write;
use std::process::{Command, Stdio};

/// The path of a program the monitoring tests need; CI installs it.
pub fn required(program: &str) -> String {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{program}` is not installed: apt-get install prometheus prometheus-pushgateway (.ci/run does)"
    );
    program.to_string()
}

/// `promtool check metrics` on `text`: its verdict, and what it said.
pub fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new(required("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}
