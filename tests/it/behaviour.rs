//! Table behaviour written as documentation: `tests/behaviour/*.behaviour`.
//! Each file runs top to bottom against a fresh lakehouse, through the real
//! binary. The blocks:
//!
//! ```text
//! # a comment
//! job <job id> [fails with "<part of the error>"]
//!   <job spec YAML, indented two spaces>
//! query
//!   <SQL, indented>
//! ----
//! <expected CSV rows, without the header>
//! command <medallion arguments, "quoted" where needed>
//! contains <text the command must print>
//! lacks <text the command must not print>
//! pyiceberg <table>
//! ----
//! <how many rows PyIceberg reads from the table>
//! pyiceberg <table>: <column>, <column>, ...
//! ----
//! <the rows PyIceberg reads, as CSV, in any order>
//! duckdb <table>: <column>, <column>, ...
//! ----
//! <the rows DuckDB (its iceberg extension) reads, as CSV, in any order>
//! spark <table>: <column>, <column>, ...
//! ----
//! <the rows Spark 3.5 with Iceberg 1.10 reads, as CSV, in any order>
//! file <path in the lakehouse, e.g. raw/orders/part-1.csv>
//!   <its text, indented>
//! python
//!   <Python run with `catalog`, PyIceberg's catalog of the lakehouse>
//! workers <N>
//!   (from here on, jobs run with `--execution distributed` on N fresh
//!   `medallion worker`s; a job that reads tables must send them tasks)
//! ```

use std::path::{Path, PathBuf};

use crate::support::{Lakehouse, Worker, pyiceberg, worker_urls};

fn behaviour_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/behaviour")
}

/// Splits `a "b c" d` into `a`, `b c`, `d`.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// The indented lines after `lines[start]`, unindented, and where they end.
fn indented_block(lines: &[&str], start: usize) -> (String, usize) {
    let mut end = start + 1;
    let mut text = String::new();
    while end < lines.len() && lines[end].starts_with("  ") {
        text.push_str(&lines[end][2..]);
        text.push('\n');
        end += 1;
    }
    (text, end)
}

/// Checks what another engine reads of a table (`pyiceberg`, `duckdb`, `spark`,
/// whose rows `read_tables.py` prints with `how`); where the block ends.
fn read_back(
    lakehouse: &Lakehouse,
    lines: &[&str],
    mut at: usize,
    rest: &str,
    how: &str,
    place: &str,
) -> usize {
    assert_eq!(
        lines.get(at + 1),
        Some(&"----"),
        "{place}: `----` after the read"
    );
    let folder = lakehouse.path().to_str().unwrap();
    let Some((table, columns)) = rest.split_once(':') else {
        assert_eq!(how, "--rows", "{place}: only pyiceberg counts rows");
        let expected: u64 = lines[at + 2].trim().parse().unwrap();
        let facts = pyiceberg(&["sql", folder], &[]).unwrap();
        assert_eq!(facts[rest]["rows"], expected, "{place}: {facts}");
        return at + 3;
    };
    let mut expected = Vec::new();
    at += 2;
    while at < lines.len() && !lines[at].trim().is_empty() {
        expected.push(lines[at].to_string());
        at += 1;
    }
    let read = pyiceberg(&["sql", folder, how, table, columns], &[]).unwrap();
    let mut actual: Vec<&str> = read
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_str().unwrap())
        .collect();
    actual.sort();
    expected.sort();
    assert_eq!(actual, expected, "{place}: {how} of {table}");
    at
}

fn run_file(name: &str) {
    let path = behaviour_dir().join(format!("{name}.behaviour"));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let lakehouse = Lakehouse::new();
    let mut specs = 0;
    let mut checks = 0;
    let mut workers: Vec<Worker> = Vec::new();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        let place = format!("{}:{}", path.display(), at + 1);
        if line.trim().is_empty() || line.starts_with('#') {
            at += 1;
        } else if let Some(rest) = line.strip_prefix("job ") {
            let (job_id, failure) = match rest.split_once(" fails with ") {
                Some((id, expected)) => (id.trim(), Some(expected.trim().trim_matches('"'))),
                None => (rest.trim(), None),
            };
            let (yaml, end) = indented_block(&lines, at);
            specs += 1;
            let spec = lakehouse.path().join(format!("spec-{specs}.yaml"));
            std::fs::write(&spec, &yaml).unwrap();
            let urls = worker_urls(&workers.iter().collect::<Vec<_>>());
            let mut args = vec!["run", spec.to_str().unwrap(), "--job-id", job_id];
            if !workers.is_empty() {
                args.extend(["--execution", "distributed", "--workers", &urls]);
            }
            match failure {
                None => {
                    let out = lakehouse.medallion(&args);
                    assert!(
                        out.status.success(),
                        "{place}: job {job_id} failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    if !workers.is_empty() && yaml.contains("- table:") {
                        let tasks: usize = workers.iter().map(|w| w.tasks.try_iter().count()).sum();
                        assert!(tasks > 0, "{place}: job {job_id} sent the workers no task");
                    }
                }
                Some(expected) => {
                    let error = lakehouse.fails(&args);
                    assert!(
                        error.contains(expected),
                        "{place}: expected `{expected}` in: {error}"
                    );
                    checks += 1;
                }
            }
            at = end;
        } else if line == "query" {
            let (sql, end) = indented_block(&lines, at);
            assert_eq!(
                lines.get(end),
                Some(&"----"),
                "{place}: `----` after the SQL"
            );
            let mut expected = Vec::new();
            let mut next = end + 1;
            while next < lines.len() && !lines[next].trim().is_empty() {
                expected.push(lines[next].to_string());
                next += 1;
            }
            let out = lakehouse.ok(&["sql", "--format", "csv", sql.trim()]);
            let actual: Vec<&str> = out.lines().skip(1).collect();
            assert_eq!(actual, expected, "{place}: {}", sql.trim());
            checks += 1;
            at = next;
        } else if let Some(rest) = line.strip_prefix("pyiceberg ") {
            at = read_back(&lakehouse, &lines, at, rest, "--rows", &place);
            checks += 1;
        } else if let Some(rest) = line.strip_prefix("duckdb ") {
            at = read_back(&lakehouse, &lines, at, rest, "--duckdb-rows", &place);
            checks += 1;
        } else if let Some(rest) = line.strip_prefix("spark ") {
            at = read_back(&lakehouse, &lines, at, rest, "--spark-rows", &place);
            checks += 1;
        } else if let Some(relative) = line.strip_prefix("file ") {
            let (text, end) = indented_block(&lines, at);
            let path = lakehouse.path().join(relative.trim());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            at = end;
        } else if let Some(count) = line.strip_prefix("workers ") {
            let count: usize = count.trim().parse().expect("workers <N>");
            workers = (0..count).map(|_| lakehouse.worker()).collect();
            at += 1;
        } else if line == "python" {
            let (code, end) = indented_block(&lines, at);
            let folder = lakehouse.path().to_str().unwrap();
            pyiceberg(&["sql", folder, "--run", &code], &[]);
            at = end;
        } else if let Some(rest) = line.strip_prefix("command ") {
            let args = words(rest);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = lakehouse.ok(&args);
            at += 1;
            while let Some(next) = lines.get(at) {
                if let Some(expected) = next.strip_prefix("contains ") {
                    assert!(
                        out.contains(expected),
                        "{place}: expected `{expected}` in: {out}"
                    );
                } else if let Some(absent) = next.strip_prefix("lacks ") {
                    assert!(
                        !out.contains(absent),
                        "{place}: expected no `{absent}` in: {out}"
                    );
                } else {
                    break;
                }
                checks += 1;
                at += 1;
            }
        } else {
            panic!("{place}: unknown block `{line}`");
        }
    }
    assert!(checks > 0, "{}: checks nothing", path.display());
}

#[test]
fn append() {
    run_file("append");
}

#[test]
fn overwrite() {
    run_file("overwrite");
}

#[test]
fn merge() {
    run_file("merge");
}

#[test]
fn merge_on_read() {
    run_file("merge_on_read");
}

#[test]
fn partitioned() {
    run_file("partitioned");
}

#[test]
fn delete_and_maintenance() {
    run_file("delete_and_maintenance");
}

#[test]
fn merge_on_read_v3() {
    run_file("merge_on_read_v3");
}

#[test]
fn schema_drift() {
    run_file("schema_drift");
}

#[test]
fn every_behaviour_file_has_a_test() {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/it/behaviour.rs"),
    )
    .unwrap();
    for entry in std::fs::read_dir(behaviour_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap();
        assert!(
            source.contains(&format!("run_file(\"{name}\")")),
            "{} has no test in tests/it/behaviour.rs",
            path.display()
        );
    }
}

#[test]
fn distributed() {
    run_file("distributed");
}
