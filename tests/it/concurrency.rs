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
    let dir = root.join("events");
    std::fs::create_dir_all(&dir).unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, false),
    ]));
    let keys: Vec<i64> = (first_key..first_key + rows).collect();
    let payloads: StringArray = keys
        .iter()
        .map(|k| Some(format!("event {k} with some padding text")))
        .collect();
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
    let path = lakehouse.path().join("events.yaml");
    std::fs::write(&path, SPEC).unwrap();
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
    let history: serde_json::Value =
        serde_json::from_str(&lakehouse.ok(&["history", "bronze.events", "--json"])).unwrap();
    assert_eq!(
        history.as_array().unwrap().len(),
        100,
        "one snapshot per commit"
    );
}

#[test]
fn a_run_killed_at_any_moment_leaves_the_table_whole_and_a_rerun_loads_exactly_once() {
    let lakehouse = Lakehouse::new();
    let spec = spec(&lakehouse);
    const ROWS: i64 = 20_000;
    let raw = raw_load(&lakehouse.path().join("raw"), 0, ROWS);
    // How long a whole run takes here, to spread the kills over it.
    let started = Instant::now();
    load(&lakehouse, &spec, &raw, "warm-up");
    let full_run = started.elapsed();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut killed_with_commit = 0;
    for trial in 0..50 {
        let job_id = format!("load-{trial}");
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = full_run.mul_f64((state % 1000) as f64 / 1000.0 * 1.2);
        let mut child = Command::new(env!("CARGO_BIN_EXE_medallion"))
            .args(["--lakehouse", lakehouse.path().to_str().unwrap(), "--quiet"])
            .args([
                "--raw",
                raw.to_str().unwrap(),
                "run",
                &spec,
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
        // are all there or not at all.
        let landed: i64 = lakehouse
            .scalar(&format!(
                "SELECT COUNT(*) FROM bronze.events WHERE job_id = '{job_id}'"
            ))
            .parse()
            .unwrap();
        assert!(
            landed == 0 || landed == ROWS,
            "trial {trial} (killed after {delay:?}): {landed} rows of {job_id}"
        );
        if landed == ROWS {
            killed_with_commit += 1;
        }
        // The re-run of the same job id completes the load exactly once.
        load(&lakehouse, &spec, &raw, &job_id);
        assert_eq!(
            lakehouse.scalar(&format!(
                "SELECT COUNT(*) FROM bronze.events WHERE job_id = '{job_id}'"
            )),
            ROWS.to_string(),
            "trial {trial}"
        );
    }
    assert_eq!(lakehouse.rows("bronze.events"), 51 * ROWS as u64);
    eprintln!(
        "{killed_with_commit} of 50 killed runs had already committed; run time {full_run:?}"
    );
    // Both outcomes were exercised.
    assert!(
        killed_with_commit > 0 && killed_with_commit < 50,
        "kills all landed on one side: {killed_with_commit}"
    );
}
