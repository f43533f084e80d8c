//! A bronze job split among processes (`--shard i/N`, the pods of a
//! Kubernetes Indexed Job): every raw file is loaded by exactly one shard;
//! under `commit: single` readers see no row until the last shard commits
//! every shard's files in one snapshot, under `per-shard` each shard commits
//! once; re-runs of any shard change nothing.

use std::path::Path;

use crate::support::{
    EVENT_FILES, EVENT_ROWS_PER_FILE, Lakehouse, assert_every_event_once, event_files,
    four_shards_at_once, run_shard, sharded_events_spec,
};

const TABLE: &str = "bronze.events";

fn spec(lakehouse: &Lakehouse, commit: &str) -> String {
    sharded_events_spec(lakehouse, TABLE, commit)
}

fn lakehouse_with_raw_files() -> Lakehouse {
    let lakehouse = Lakehouse::new();
    let dir = lakehouse.path().join("raw").join("events");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in event_files() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    lakehouse
}

fn assert_every_row_once(lakehouse: &Lakehouse) {
    assert_every_event_once(lakehouse, TABLE);
}

fn staged_records(lakehouse: &Lakehouse) -> usize {
    let dir = lakehouse.path();
    walk(dir)
        .into_iter()
        .filter(|p| p.contains("/metadata/shards-"))
        .count()
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn shards_staged_one_by_one_show_no_row_until_the_last_commits_them_all_in_one_snapshot() {
    let lakehouse = lakehouse_with_raw_files();
    let spec = spec(&lakehouse, "single");
    let mut staged_rows = 0;
    for shard in 0..3 {
        let report = run_shard(&lakehouse, &spec, Some(&format!("{shard}/4")));
        assert_eq!(report["status"], "staged", "{report}");
        let waiting: Vec<u64> = (shard + 1..4).collect();
        assert_eq!(report["waiting_for"], serde_json::json!(waiting));
        staged_rows += report["rows_written"].as_u64().unwrap();
        assert!(
            lakehouse.history(TABLE).is_empty(),
            "no snapshot before the last shard"
        );
    }
    let last = run_shard(&lakehouse, &spec, Some("3/4"));
    assert_eq!(last["status"], "committed", "{last}");
    let total = (EVENT_FILES * EVENT_ROWS_PER_FILE) as u64;
    assert!(staged_rows < total, "the last shard had files of its own");
    assert_eq!(last["rows_written"].as_u64(), Some(total), "{last}");
    assert_every_row_once(&lakehouse);
    assert_eq!(lakehouse.history(TABLE).len(), 1);
    assert_eq!(
        staged_records(&lakehouse),
        0,
        "the records of a committed job go"
    );

    // Any shard again, or the whole job under the same job id: nothing new.
    for shard in [Some("1/4"), Some("3/4"), None] {
        let again = run_shard(&lakehouse, &spec, shard);
        assert_eq!(again["status"], "already_committed", "{shard:?}: {again}");
    }
    assert_eq!(lakehouse.history(TABLE).len(), 1);
    assert_every_row_once(&lakehouse);
}

#[test]
fn four_shard_processes_at_once_commit_one_snapshot_holding_every_row_once() {
    let lakehouse = lakehouse_with_raw_files();
    let spec = spec(&lakehouse, "single");
    let reports = four_shards_at_once(&lakehouse, &spec);
    let committed = reports
        .iter()
        .filter(|r| r["status"] == "committed")
        .count();
    assert!(committed >= 1, "{reports:?}");
    assert!(
        reports
            .iter()
            .all(|r| ["committed", "staged", "already_committed"]
                .contains(&r["status"].as_str().unwrap())),
        "{reports:?}"
    );
    assert_every_row_once(&lakehouse);
    let history = lakehouse.history(TABLE);
    assert_eq!(history.len(), 1, "one snapshot: {history:?}");
}

#[test]
fn per_shard_commits_give_one_snapshot_per_shard_and_a_rerun_of_any_is_a_no_op() {
    let lakehouse = lakehouse_with_raw_files();
    let spec = spec(&lakehouse, "per-shard");
    for report in four_shards_at_once(&lakehouse, &spec) {
        assert_eq!(report["status"], "committed", "{report}");
    }
    assert_every_row_once(&lakehouse);
    assert_eq!(lakehouse.history(TABLE).len(), 4);
    for shard in ["0/4", "2/4"] {
        let again = run_shard(&lakehouse, &spec, Some(shard));
        assert_eq!(again["status"], "already_committed", "{shard}: {again}");
    }
    assert_eq!(lakehouse.history(TABLE).len(), 4);
    assert_every_row_once(&lakehouse);

    // The whole job under the same id would load every shard's files again.
    let error = lakehouse.fails(&["run", &spec, "--job-id", "load-1"]);
    assert!(error.contains("in shards"), "{error}");
    assert!(error.contains("--shard"), "{error}");
    assert_every_row_once(&lakehouse);
}

#[test]
fn a_shard_whose_staged_record_was_cut_short_loads_again_and_nothing_is_duplicated() {
    let lakehouse = lakehouse_with_raw_files();
    let spec = spec(&lakehouse, "single");
    for shard in ["0/4", "1/4", "2/4"] {
        run_shard(&lakehouse, &spec, Some(shard));
    }
    // Shard 1's pod was killed while it wrote its record.
    let record = walk(lakehouse.path())
        .into_iter()
        .find(|p| p.ends_with("/metadata/shards-load-1-1-of-4.metadata.json"))
        .expect("shard 1's record");
    let text = std::fs::read(&record).unwrap();
    std::fs::write(&record, &text[..text.len() / 2]).unwrap();

    let last = run_shard(&lakehouse, &spec, Some("3/4"));
    assert_eq!(last["status"], "staged", "{last}");
    assert_eq!(last["waiting_for"], serde_json::json!([1]));
    assert!(lakehouse.history(TABLE).is_empty());

    // Kubernetes retries index 1: it writes its files again and commits all.
    let retried = run_shard(&lakehouse, &spec, Some("1/4"));
    assert_eq!(retried["status"], "committed", "{retried}");
    assert_every_row_once(&lakehouse);
    assert_eq!(lakehouse.history(TABLE).len(), 1);
}

#[test]
fn only_appends_of_raw_files_split_into_shards() {
    let lakehouse = Lakehouse::new();
    let merge = lakehouse.path().join("merge.yaml");
    std::fs::write(
        &merge,
        "name: silver_events\ninputs:\n  - { name: raw, path: events, format: parquet }\n\
         steps:\n  - sql: SELECT * FROM raw\n\
         target: { table: silver.events, mode: merge, keys: [key] }\n\
         execution: { shards: 2 }\n",
    )
    .unwrap();
    let error = lakehouse.fails(&["validate", merge.to_str().unwrap()]);
    assert!(
        error.contains("only a job that appends raw files"),
        "{error}"
    );

    let spec = spec(&lakehouse, "single");
    let validated = lakehouse.ok(&["validate", &spec]);
    assert!(validated.contains("runs in 4 shards"), "{validated}");
    assert!(
        validated.contains("one snapshot once every shard"),
        "{validated}"
    );
    let error = lakehouse.fails(&["run", &spec, "--shard", "1/3"]);
    assert!(error.contains("`execution.shards` says 4"), "{error}");
    let error = lakehouse.fails(&["run", &spec, "--shard", "4/4"]);
    assert!(error.contains("0 to 3"), "{error}");
}
