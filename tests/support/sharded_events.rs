//! A bronze job of `execution.shards: 4` over `EVENT_FILES` raw Parquet
//! files of events (keys unique across files), its shards run as processes
//! (as the pods of a Kubernetes Indexed Job run them), and the check that
//! the table holds every raw row exactly once.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use serde_json::Value;

use super::Lakehouse;

pub const EVENT_FILES: i64 = 24;
pub const EVENT_ROWS_PER_FILE: i64 = 50;
/// The job id every shard of a test's load runs under.
pub const SHARDED_JOB_ID: &str = "load-1";

/// Writes the spec of a bronze job loading `events/` into `table` in four
/// shards committed `commit` (single, per-shard); returns its path.
pub fn sharded_events_spec(lakehouse: &Lakehouse, table: &str, commit: &str) -> String {
    let text = format!(
        "\
name: bronze_events
inputs:
  - {{ name: raw_events, path: events, format: parquet }}
steps:
  - bronze:
      from: raw_events
      columns:
        - {{ name: key, from: key, type: int64 }}
        - {{ name: payload, from: payload, type: string }}
target: {{ table: {table}, mode: append }}
execution: {{ shards: 4, commit: {commit} }}
"
    );
    let path = lakehouse.path().join(format!("{table}-{commit}.yaml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The raw files: `(name, Parquet bytes)`.
pub fn event_files() -> Vec<(String, Vec<u8>)> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, false),
    ]));
    (0..EVENT_FILES)
        .map(|file| {
            let keys: Vec<i64> = (0..EVENT_ROWS_PER_FILE)
                .map(|i| file * EVENT_ROWS_PER_FILE + i)
                .collect();
            let payloads: StringArray = keys.iter().map(|k| Some(format!("event {k}"))).collect();
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(keys)), Arc::new(payloads)],
            )
            .unwrap();
            let mut bytes = Vec::new();
            let mut writer = ArrowWriter::try_new(&mut bytes, schema.clone(), None).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
            (format!("part-{file:03}.parquet"), bytes)
        })
        .collect()
}

fn shard_args<'a>(spec: &'a str, shard: Option<&'a str>) -> Vec<&'a str> {
    let mut args = vec!["run", spec, "--job-id", SHARDED_JOB_ID, "--json"];
    if let Some(shard) = shard {
        args.extend(["--shard", shard]);
    }
    args
}

/// Runs one shard (`"2/4"`), or the whole job, and returns its job's report.
pub fn run_shard(lakehouse: &Lakehouse, spec: &str, shard: Option<&str>) -> Value {
    job_report(lakehouse.medallion(&shard_args(spec, shard)))
}

/// The four shards started at once, each its own process.
pub fn four_shards_at_once(lakehouse: &Lakehouse, spec: &str) -> Vec<Value> {
    let shards: Vec<String> = (0..4).map(|i| format!("{i}/4")).collect();
    let children: Vec<_> = shards
        .iter()
        .map(|shard| {
            lakehouse
                .command(&shard_args(spec, Some(shard)))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("the medallion binary starts")
        })
        .collect();
    children
        .into_iter()
        .map(|child| job_report(child.wait_with_output().unwrap()))
        .collect()
}

fn job_report(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "a shard failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    report["jobs"][0].clone()
}

/// Every raw row once: the row count, the distinct keys, every file.
pub fn assert_every_event_once(lakehouse: &Lakehouse, table: &str) {
    let total = EVENT_FILES * EVENT_ROWS_PER_FILE;
    assert_eq!(lakehouse.rows(table), total as u64, "{table}");
    assert_eq!(
        lakehouse.scalar(&format!("SELECT COUNT(DISTINCT key) FROM {table}")),
        total.to_string()
    );
    assert_eq!(
        lakehouse.scalar(&format!("SELECT COUNT(DISTINCT source_file) FROM {table}")),
        EVENT_FILES.to_string()
    );
}
