//! Several medallion processes writing one table at once, and processes
//! killed at random moments: every commit lands exactly once, none is lost,
//! and a reader always sees a whole snapshot.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use crate::support::Lakehouse;

const SPEC: &str = "\
name: bronze_events
inputs:
  - { name: raw_events, path: events, format: parquet }
steps:
  - bronze:
      from: raw_events
      columns:
        - { name: key, from: key, type: int64 }
        - { name: payload, from: payload, type: string }
target: { table: bronze.events, mode: append }
";

/// Writes `rows` raw rows with keys from `first_key` under `<root>/events/`.
fn raw_load(root: &Path, first_key: i64, rows: i64) -> PathBuf {
    let keys: Vec<i64> = (first_key..first_key + rows).collect();
    let payloads = keys
        .iter()
        .map(|k| format!("event {k} with some padding text"))
        .collect();
    raw_rows(root, keys, payloads)
}

/// Writes the rows `(keys[i], payloads[i])` under `<root>/events/`.
fn raw_rows(root: &Path, keys: Vec<i64>, payloads: Vec<String>) -> PathBuf {
    let dir = root.join("events");
    std::fs::create_dir_all(&dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, false),
    ]));
    let payloads = StringArray::from(payloads);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(keys)), Arc::new(payloads)],
    )
    .unwrap();
    let mut writer = ArrowWriter::try_new(
        std::fs::File::create(dir.join("part-0.parquet")).unwrap(),
        schema,
        None,
    )
    .unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    root.to_path_buf()
}

fn spec(lakehouse: &Lakehouse) -> String {
    write_spec(lakehouse, "events.yaml", SPEC)
}

fn write_spec(lakehouse: &Lakehouse, name: &str, text: &str) -> String {
    let path = lakehouse.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn load(lakehouse: &Lakehouse, spec: &str, raw: &Path, job_id: &str) {
    lakehouse.ok(&[
        "--raw",
        raw.to_str().unwrap(),
        "run",
        spec,
        "--job-id",
        job_id,
    ]);
}

#[test]
fn four_writers_committing_at_once_lose_nothing_and_duplicate_nothing() {
    let lakehouse = Arc::new(Lakehouse::new());
    let spec = spec(&lakehouse);
    let writers: Vec<_> = (0..4i64)
        .map(|writer| {
            let lakehouse = lakehouse.clone();
            let spec = spec.clone();
            std::thread::spawn(move || {
                for round in 0..25i64 {
                    let raw = raw_load(
                        &lakehouse.path().join(format!("raw-w{writer}-r{round}")),
                        writer * 100_000 + round * 100,
                        100,
                    );
                    load(&lakehouse, &spec, &raw, &format!("w{writer}-r{round}"));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer failed");
    }
    assert_eq!(lakehouse.rows("bronze.events"), 10_000);
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT key) FROM bronze.events"),
        "10000"
    );
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT job_id) FROM bronze.events"),
        "100"
    );
    assert_eq!(
        lakehouse.history("bronze.events").len(),
        100,
        "one snapshot per commit"
    );
}

/// One commit of the mixed test: rows `(key, payload)` appended or merged.
struct MixedCommit {
    merge: bool,
    rows: Vec<(i64, String)>,
}

/// Writer `w`, round `r`: even rounds append ten new keys of the writer's
/// own; odd rounds merge new versions of the ten keys the writer appended
/// the round before, plus ten keys of a range every writer merges into.
fn mixed_commit(writer: i64, round: i64) -> MixedCommit {
    let payload = format!("w{writer}r{round}");
    let own = |r: i64| (0..10).map(move |i| writer * 1000 + r * 10 + i);
    if round % 2 == 0 {
        return MixedCommit {
            merge: false,
            rows: own(round).map(|k| (k, payload.clone())).collect(),
        };
    }
    let shared = (0..10).map(|i| 1_000_000 + (writer * 7 + round + i) % 40);
    MixedCommit {
        merge: true,
        rows: own(round - 1)
            .chain(shared)
            .map(|k| (k, payload.clone()))
            .collect(),
    }
}

#[test]
fn four_writers_appending_and_merging_at_once_give_the_serial_result() {
    appending_and_merging_at_once("merge, keys: [key]", "");
}

#[test]
fn four_writers_appending_and_merging_on_read_at_once_give_the_serial_result() {
    let lakehouse =
        appending_and_merging_at_once("merge, keys: [key], write_mode: merge-on-read", "");
    every_replaced_row_is_deleted_once(&lakehouse);
}

#[test]
fn four_writers_merging_on_read_into_a_v3_table_at_once_give_the_serial_result() {
    // Deletion vectors: each merge replaces the vector of every file it
    // deletes rows of, so a vector lost or kept twice shows in the counts.
    let lakehouse = appending_and_merging_at_once(
        "merge, keys: [key], write_mode: merge-on-read",
        ", format_version: 3",
    );
    every_replaced_row_is_deleted_once(&lakehouse);
}

/// The table's deletes delete exactly the rows no longer live, each once.
fn every_replaced_row_is_deleted_once(lakehouse: &Lakehouse) {
    let history = lakehouse.history("silver.state");
    let current = history.iter().find(|s| s["is_current"] == true).unwrap();
    let count = |key: &str| current[key].as_u64().unwrap();
    let live = lakehouse.ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT COUNT(*) FROM silver.state",
    ]);
    let live: u64 = live.lines().nth(1).unwrap().parse().unwrap();
    assert!(
        count("total_position_deletes") > 0,
        "the merges deleted by position: {current}"
    );
    assert_eq!(
        count("total_records") - live,
        count("total_position_deletes"),
        "rows in data files minus live rows are the deleted ones: {current}"
    );
}

/// Four writers × 25 commits, alternating appends and merges in `merge_mode`
/// (the target's `mode` and what follows it), all into one table, whose
/// target spec both end with `table_options`.
fn appending_and_merging_at_once(merge_mode: &str, table_options: &str) -> Arc<Lakehouse> {
    let lakehouse = Arc::new(Lakehouse::new());
    let spec_of = |mode: &str| {
        SPEC.replace(
            "bronze_events",
            &format!("state_{}", mode.split(',').next().unwrap()),
        )
        .replace(
            "bronze.events, mode: append",
            &format!("silver.state, mode: {mode}"),
        )
    };
    let append = write_spec(
        &lakehouse,
        "append.yaml",
        &spec_of(&format!("append{table_options}")),
    );
    let merge = write_spec(
        &lakehouse,
        "merge.yaml",
        &spec_of(&format!("{merge_mode}{table_options}")),
    );
    let writers: Vec<_> = (0..4i64)
        .map(|writer| {
            let lakehouse = lakehouse.clone();
            let (append, merge) = (append.clone(), merge.clone());
            std::thread::spawn(move || {
                for round in 0..25i64 {
                    let commit = mixed_commit(writer, round);
                    let (keys, payloads) = commit.rows.into_iter().unzip();
                    let raw = raw_rows(
                        &lakehouse.path().join(format!("raw-w{writer}-r{round}")),
                        keys,
                        payloads,
                    );
                    let spec = if commit.merge { &merge } else { &append };
                    load(&lakehouse, spec, &raw, &format!("w{writer}-r{round}"));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer failed");
    }

    // Replay the commits in the order the table's lineage says they landed.
    let snapshots = lakehouse.history("silver.state");
    assert_eq!(snapshots.len(), 100, "one snapshot per commit");
    let mut lineage = Vec::new();
    let mut next = snapshots.iter().find(|s| s["is_current"] == true);
    while let Some(snapshot) = next {
        lineage.push(snapshot["job_id"].as_str().unwrap().to_string());
        next = snapshots
            .iter()
            .find(|s| s["snapshot_id"] == snapshot["parent_id"]);
    }
    assert_eq!(lineage.len(), 100, "every commit is on the lineage");
    let mut expected = std::collections::BTreeMap::new();
    for job_id in lineage.iter().rev() {
        let (writer, round) = job_id[1..].split_once("-r").unwrap();
        let commit = mixed_commit(writer.parse().unwrap(), round.parse().unwrap());
        for (key, payload) in commit.rows {
            expected.insert(key, payload);
        }
    }
    let actual = lakehouse.ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT key, payload FROM silver.state ORDER BY key, payload",
    ]);
    let actual: Vec<String> = actual.lines().skip(1).map(str::to_string).collect();
    let expected: Vec<String> = expected
        .into_iter()
        .map(|(key, payload)| format!("{key},{payload}"))
        .collect();
    assert_eq!(actual.len(), expected.len(), "a key was lost or duplicated");
    assert_eq!(actual, expected);
    lakehouse
}

#[test]
fn a_run_killed_at_any_moment_leaves_the_table_whole_and_a_rerun_loads_exactly_once() {
    // A merge rewrites the files holding its keys.
    killed_at_any_moment("silver.state, mode: merge, keys: [key]");
}

#[test]
fn a_merge_on_read_run_killed_at_any_moment_leaves_the_table_whole_and_a_rerun_loads_once() {
    // A merge writes position deletes of the rows holding its keys.
    killed_at_any_moment("silver.state, mode: merge, keys: [key], write_mode: merge-on-read");
}

#[test]
fn a_merge_on_read_run_into_a_v3_table_killed_at_any_moment_leaves_it_whole_and_a_rerun_loads_once()
{
    // A merge writes deletion vectors, each replacing the file's earlier one.
    killed_at_any_moment(
        "silver.state, mode: merge, keys: [key], write_mode: merge-on-read, format_version: 3",
    );
}

/// Runs killed with SIGKILL at random moments, alternating an append to
/// bronze and a merge of the same rows into silver (`merge_target`).
fn killed_at_any_moment(merge_target: &str) {
    let killed_jobs = [
        ("append", "bronze.events", "bronze.events, mode: append"),
        ("merge", "silver.state", merge_target),
    ];
    let lakehouse = Lakehouse::new();
    const ROWS: i64 = 20_000;
    let raw = raw_load(&lakehouse.path().join("raw"), 0, ROWS);
    let specs: Vec<(String, &str)> = killed_jobs
        .iter()
        .map(|(kind, table, target)| {
            let text = SPEC.replace("bronze.events, mode: append", target);
            (
                write_spec(&lakehouse, &format!("{kind}.yaml"), &text),
                *table,
            )
        })
        .collect();
    // How long a whole run takes here, to spread the kills over it.
    let mut full_runs = Vec::new();
    for (spec, _) in &specs {
        let started = Instant::now();
        load(&lakehouse, spec, &raw, "warm-up");
        full_runs.push(started.elapsed());
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut killed_with_commit = [0; 2];
    for trial in 0..50 {
        let kind = trial % 2;
        let (spec, table) = (&specs[kind].0, specs[kind].1);
        let job_id = format!("load-{trial}");
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = full_runs[kind].mul_f64((state % 1000) as f64 / 1000.0 * 1.2);
        let mut child = Command::new(env!("CARGO_BIN_EXE_medallion"))
            .args(["--lakehouse", lakehouse.path().to_str().unwrap(), "--quiet"])
            .args([
                "--raw",
                raw.to_str().unwrap(),
                "run",
                spec,
                "--job-id",
                &job_id,
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        // Whatever the moment, readers see whole snapshots: this load's rows
        // are all there or not at all, and a merge never duplicates a key.
        let landed: i64 = lakehouse
            .scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE job_id = '{job_id}'"
            ))
            .parse()
            .unwrap();
        assert!(
            landed == 0 || landed == ROWS,
            "trial {trial} (killed after {delay:?}): {landed} rows of {job_id} in {table}"
        );
        if landed == ROWS {
            killed_with_commit[kind] += 1;
        }
        // The re-run of the same job id completes the load exactly once.
        load(&lakehouse, spec, &raw, &job_id);
        assert_eq!(
            lakehouse.scalar(&format!(
                "SELECT COUNT(*) FROM {table} WHERE job_id = '{job_id}'"
            )),
            ROWS.to_string(),
            "trial {trial}"
        );
    }
    assert_eq!(lakehouse.rows("bronze.events"), 26 * ROWS as u64);
    assert_eq!(lakehouse.rows("silver.state"), ROWS as u64);
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT key) FROM silver.state"),
        ROWS.to_string()
    );
    eprintln!(
        "killed runs that had already committed: {killed_with_commit:?} of 25 each; run times {full_runs:?}"
    );
    // Both outcomes were exercised.
    let total: usize = killed_with_commit.iter().sum();
    assert!(
        total > 0 && total < 50,
        "kills all landed on one side: {killed_with_commit:?}"
    );
}
