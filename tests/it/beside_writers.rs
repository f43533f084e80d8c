//! Maintenance, overwrites by filter and rollback beside steady writers:
//! real processes of the binary appending while others compact, rewrite
//! manifests, expire and delete. Every maintenance run succeeds, rows are
//! accounted for exactly, an overwrite fails only on a file that could hold
//! rows it matches, and a rollback never discards commits unseen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{BRONZE_EVENTS_CSV as SPEC, Lakehouse, pyiceberg};

/// The rows `replace_where` owns: keys from 500 000 to 599 999.
const REPLACE_SPEC: &str = "\
name: replace_events
inputs:
  - { name: raw_events, path: events, format: csv }
steps:
  - bronze:
      from: raw_events
      columns:
        - { name: key, from: key, type: int64 }
        - { name: payload, from: payload, type: string }
target:
  table: bronze.events
  mode: overwrite
  replace_where: \"key >= 500000 AND key < 600000\"
";

/// How long the writers keep writing.
const WRITING: Duration = Duration::from_secs(20);

fn spec(lakehouse: &Lakehouse, name: &str, text: &str) -> String {
    let path = lakehouse.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs `spec` over a raw folder of the rows with these keys, as job `job_id`.
fn load(lakehouse: &Lakehouse, spec: &str, keys: impl Iterator<Item = i64>, job_id: &str) {
    let out = try_load(lakehouse, spec, keys, job_id);
    assert!(
        out.status.success(),
        "{job_id} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn try_load(
    lakehouse: &Lakehouse,
    spec: &str,
    keys: impl Iterator<Item = i64>,
    job_id: &str,
) -> std::process::Output {
    let raw = lakehouse.path().join(format!("raw-{job_id}"));
    write_raw(&raw, keys);
    logging_replans(
        lakehouse,
        &[
            "--raw",
            raw.to_str().unwrap(),
            "run",
            spec,
            "--job-id",
            job_id,
        ],
    )
}

fn write_raw(raw: &Path, keys: impl Iterator<Item = i64>) {
    std::fs::create_dir_all(raw.join("events")).unwrap();
    let rows: String = keys.map(|k| format!("{k},payload {k}\n")).collect();
    std::fs::write(raw.join("events/part.csv"), format!("key,payload\n{rows}")).unwrap();
}

/// Two writers appending `rows` rows a load for [`WRITING`], writer `w`'s
/// keys starting at `first_key(w)`, resting `pause` after each load; the
/// number of rows they appended.
fn appenders(
    lakehouse: &Arc<Lakehouse>,
    spec: &str,
    rows: i64,
    first_key: fn(i64) -> i64,
    pause: Duration,
) -> std::thread::JoinHandle<u64> {
    let lakehouse = lakehouse.clone();
    let spec = spec.to_string();
    std::thread::spawn(move || {
        let writers: Vec<_> = (0..2i64)
            .map(|writer| {
                let lakehouse = lakehouse.clone();
                let spec = spec.clone();
                std::thread::spawn(move || {
                    let started = Instant::now();
                    let mut round = 0;
                    while started.elapsed() < WRITING {
                        let first = first_key(writer) + round * rows;
                        load(
                            &lakehouse,
                            &spec,
                            first..first + rows,
                            &format!("w{writer}-r{round}"),
                        );
                        round += 1;
                        std::thread::sleep(pause);
                    }
                    (round * rows) as u64
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

fn json(lakehouse: &Lakehouse, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&lakehouse.ok(&all)).expect("a JSON report")
}

fn pyiceberg_rows(lakehouse: &Lakehouse) -> u64 {
    let facts = pyiceberg(&["sql", lakehouse.path().to_str().unwrap()], &[]).unwrap();
    facts["bronze.events"]["rows"].as_u64().unwrap()
}

/// Four loads of 500 rows, keys 0 to 1999.
fn seed(lakehouse: &Lakehouse, spec: &str) {
    for load_number in 0..4 {
        let first = load_number * 500;
        load(
            lakehouse,
            spec,
            first..first + 500,
            &format!("seed-{load_number}"),
        );
    }
}

/// A seeded `bronze.events` beside two writers appending for [`WRITING`]
/// keys from a million up, which no delete or replace below matches.
fn seeded_beside_appenders_outside_every_range() -> (Arc<Lakehouse>, std::thread::JoinHandle<u64>) {
    let lakehouse = Arc::new(Lakehouse::new());
    let append = spec(&lakehouse, "events.yaml", SPEC);
    seed(&lakehouse, &append);
    let first_key = |w| 1_000_000 * (w + 1);
    let writers = appenders(&lakehouse, &append, 20, first_key, Duration::ZERO);
    (lakehouse, writers)
}

#[test]
fn maintenance_beside_steady_appenders_always_succeeds_and_every_row_is_accounted_for() {
    let (lakehouse, writers) = seeded_beside_appenders_outside_every_range();
    let started = Instant::now();
    let (mut deleted, mut runs, mut round) = (0u64, 0, 0i64);
    // At least two rounds, however slow the machine: the first beside the
    // appenders.
    while round < 2 || started.elapsed() < WRITING {
        let report = json(&lakehouse, &["compact", "bronze.events"]);
        assert!(report["snapshot_id"].is_i64(), "{report}");
        assert_eq!(
            report["rows"].as_u64() == Some(0),
            report["files_written"].as_u64() == Some(0),
            "the report counts what compact wrote: {report}"
        );
        lakehouse.ok(&["rewrite-manifests", "bronze.events"]);
        lakehouse.ok(&["expire-snapshots", "bronze.events", "--older-than", "0s"]);
        let range = format!("key >= {} AND key < {}", round * 50, round * 50 + 50);
        let report = json(&lakehouse, &["delete", "bronze.events", "--where", &range]);
        deleted += report["rows_deleted"].as_u64().unwrap();
        runs += 4;
        round += 1;
    }
    let appended = writers.join().expect("an appender failed");
    assert_eq!(deleted, (round * 50) as u64, "every delete found its rows");

    let expected = 2000 - deleted + appended;
    assert_eq!(lakehouse.rows("bronze.events"), expected);
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT key) FROM bronze.events"),
        expected.to_string(),
        "a key was doubled"
    );
    assert_eq!(
        lakehouse.scalar(&format!(
            "SELECT COUNT(*) FROM bronze.events WHERE key < {}",
            round * 50
        )),
        "0",
        "a deleted row came back"
    );
    assert_eq!(pyiceberg_rows(&lakehouse), expected);
    eprintln!("{runs} maintenance runs beside {appended} appended rows, all succeeded");
}

/// Logs that say a run planned its change again on a new head.
const REPLAN_LOGS: &str = "warn,medallion_engine::replan=info,medallion_catalog::maintenance=info";

/// Runs `medallion <args>` with its re-plans logged.
fn logging_replans(lakehouse: &Lakehouse, args: &[&str]) -> std::process::Output {
    let mut command = lakehouse.command(args);
    command.env("RUST_LOG", REPLAN_LOGS).output().unwrap()
}

/// Runs of each command: how many, how many succeeded, how many re-planned
/// on a new head, and the first failure's stderr.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, (u32, u32, u32, Option<String>)>);

impl Tally {
    fn record(&mut self, command: &'static str, out: &std::process::Output) {
        let (runs, ok, replans, failure) = self.0.entry(command).or_default();
        let stderr = String::from_utf8_lossy(&out.stderr);
        *runs += 1;
        *replans += stderr.matches("re-plans on the new head").count() as u32;
        if out.status.success() {
            *ok += 1;
        } else {
            failure.get_or_insert_with(|| stderr.into_owned());
        }
    }

    /// Prints `command: ok/runs` lines, then fails naming the first failure.
    fn all_succeeded(mut self, other: Tally) {
        self.0.extend(other.0);
        for (command, (runs, ok, replans, _)) in &self.0 {
            eprintln!("{command}: {ok}/{runs} succeeded, {replans} re-plan(s)");
        }
        for (command, (_, _, _, failure)) in &self.0 {
            assert!(failure.is_none(), "a {command} failed: {failure:?}");
        }
    }
}

/// `compact`, `rewrite-manifests` and `expire-snapshots --older-than 0s`
/// in a loop until `stop`, each run tallied.
fn maintainer(
    lakehouse: &Arc<Lakehouse>,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Tally> {
    let (lakehouse, stop) = (lakehouse.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut tally = Tally::default();
        while !stop.load(Ordering::Relaxed) {
            let compact = logging_replans(&lakehouse, &["compact", "bronze.events"]);
            tally.record("compact", &compact);
            let manifests = lakehouse.medallion(&["rewrite-manifests", "bronze.events"]);
            tally.record("rewrite-manifests", &manifests);
            let expire = ["expire-snapshots", "bronze.events", "--older-than", "0s"];
            tally.record("expire-snapshots", &lakehouse.medallion(&expire));
        }
        tally
    })
}

#[test]
fn deletes_and_replaces_beside_a_looping_compact_and_appenders_all_succeed() {
    // The compactions rewrite the very files the deletes and replaces do.
    let (lakehouse, writers) = seeded_beside_appenders_outside_every_range();
    let replace = spec(&lakehouse, "replace.yaml", REPLACE_SPEC);
    let stop = Arc::new(AtomicBool::new(false));
    let maintenance = maintainer(&lakehouse, &stop);
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut round = 0i64;
    while round < 2 || started.elapsed() < WRITING {
        let range = format!("key >= {} AND key < {}", round * 50, round * 50 + 50);
        let delete = ["delete", "bronze.events", "--where", &range];
        tally.record("delete --where", &logging_replans(&lakehouse, &delete));
        let key = 500_000 + round;
        let replaced = try_load(
            &lakehouse,
            &replace,
            key..key + 1,
            &format!("replace-{round}"),
        );
        tally.record("replace_where", &replaced);
        round += 1;
    }
    let appended = writers.join().expect("an appender failed");
    stop.store(true, Ordering::Relaxed);
    tally.all_succeeded(maintenance.join().unwrap());

    // Every delete took its 50 rows; the replaced range holds the last row.
    let expected = 2000 - (round * 50) as u64 + appended + 1;
    assert_eq!(lakehouse.rows("bronze.events"), expected);
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT key) FROM bronze.events"),
        expected.to_string(),
        "a key was doubled"
    );
    let deleted_range = format!(
        "SELECT COUNT(*) FROM bronze.events WHERE key < {}",
        round * 50
    );
    assert_eq!(
        lakehouse.scalar(&deleted_range),
        "0",
        "a deleted row came back"
    );
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.events WHERE key >= 500000 AND key < 600000"),
        "1",
        "a replaced row survived"
    );
    assert_eq!(pyiceberg_rows(&lakehouse), expected);
}

#[test]
fn replace_where_beside_appends_that_cannot_match_succeeds_every_time() {
    let (lakehouse, writers) = seeded_beside_appenders_outside_every_range();
    let replace = spec(&lakehouse, "replace.yaml", REPLACE_SPEC);
    let started = Instant::now();
    let mut replaced = 0;
    while replaced < 2 || started.elapsed() < WRITING {
        let key = 500_000 + replaced;
        load(
            &lakehouse,
            &replace,
            key..key + 1,
            &format!("replace-{replaced}"),
        );
        replaced += 1;
    }
    let appended = writers.join().expect("an appender failed");
    // The range holds exactly the last replace's row; nothing else went.
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.events WHERE key >= 500000 AND key < 600000"),
        "1"
    );
    assert_eq!(lakehouse.rows("bronze.events"), 2000 + appended + 1);
    assert_eq!(pyiceberg_rows(&lakehouse), 2000 + appended + 1);
}

#[test]
fn replace_where_beside_appends_of_matching_rows_leaves_none_of_them_behind() {
    let lakehouse = Arc::new(Lakehouse::new());
    let append = spec(&lakehouse, "events.yaml", SPEC);
    let replace = spec(&lakehouse, "replace.yaml", REPLACE_SPEC);
    seed(&lakehouse, &append);
    // These appended keys fall inside the range every replace owns.
    // They rest between loads, so that some replaces land between them.
    let writers = appenders(
        &lakehouse,
        &append,
        5,
        |w| 550_000 + 20_000 * w,
        Duration::from_millis(1500),
    );
    let started = Instant::now();
    let (mut landed, mut conflicts, mut attempt) = (0, 0, 0);
    while started.elapsed() < WRITING {
        let key = 500_000 + attempt;
        let out = try_load(
            &lakehouse,
            &replace,
            key..key + 1,
            &format!("replace-{attempt}"),
        );
        if out.status.success() {
            landed += 1;
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("could hold rows the filter matches")
                    && stderr.contains("re-run the job"),
                "{stderr}"
            );
            conflicts += 1;
        }
        attempt += 1;
    }
    writers.join().expect("an appender failed");
    assert!(landed > 0, "no replace landed in {attempt} attempts");
    assert!(
        conflicts > 0,
        "no replace met a matching append: the test proves nothing"
    );

    // Replay the lineage: after the last replace that landed, the range
    // holds its row and the rows of the appends committed after it only.
    let history = lakehouse.history("bronze.events");
    let mut lineage = Vec::new();
    let mut next = history.iter().find(|s| s["is_current"] == true);
    while let Some(snapshot) = next {
        lineage.push(snapshot["job_id"].as_str().unwrap().to_string());
        next = history
            .iter()
            .find(|s| s["snapshot_id"] == snapshot["parent_id"]);
    }
    let last_replace = lineage
        .iter()
        .position(|job| job.starts_with("replace-"))
        .unwrap();
    let expected: BTreeSet<String> = lineage[..=last_replace].iter().cloned().collect();
    let surviving = lakehouse.ok(&[
        "sql",
        "--format",
        "csv",
        "SELECT DISTINCT job_id FROM bronze.events WHERE key >= 500000 AND key < 600000",
    ]);
    let surviving: BTreeSet<String> = surviving.lines().skip(1).map(str::to_string).collect();
    assert_eq!(surviving, expected, "a matching row survived a replace");
    eprintln!("{landed} replaces landed, {conflicts} conflicted with matching appends");
}

#[test]
fn rollback_names_the_commits_it_discards_and_refuses_a_head_it_did_not_see() {
    let lakehouse = Lakehouse::new();
    let append = spec(&lakehouse, "events.yaml", SPEC);
    seed(&lakehouse, &append);
    let history = lakehouse.history("bronze.events");
    let first = history[0]["snapshot_id"].as_i64().unwrap().to_string();
    let head = history[3]["snapshot_id"].as_i64().unwrap().to_string();

    // A commit lands after the operator looked: --expect-head refuses.
    load(&lakehouse, &append, 5000..5010, "late-load");
    let before = lakehouse.snapshots()["bronze.events"].clone();
    let refused = lakehouse.fails(&[
        "rollback",
        "bronze.events",
        "--to",
        &first,
        "--expect-head",
        &head,
    ]);
    assert!(
        refused.contains(&format!("no longer at snapshot {head}"))
            && refused.contains("nothing was rolled back"),
        "{refused}"
    );
    assert_eq!(
        lakehouse.snapshots()["bronze.events"],
        before,
        "nothing changed"
    );
    assert_eq!(lakehouse.rows("bronze.events"), 2010);

    // Without it, the rollback first names every later commit it takes out.
    let text = lakehouse.ok(&["rollback", "bronze.events", "--to", &first]);
    for job in ["seed-1", "seed-2", "seed-3", "late-load"] {
        assert!(text.contains(job), "{job} is not named:\n{text}");
    }
    assert!(
        text.contains("4 later snapshot(s), 1510 rows added"),
        "{text}"
    );
    assert!(
        text.contains(&format!("bronze.events is at snapshot {first}")),
        "{text}"
    );
    assert_eq!(lakehouse.rows("bronze.events"), 500);

    // --json reports them too.
    load(&lakehouse, &append, 6000..6010, "after-rollback");
    let report = json(&lakehouse, &["rollback", "bronze.events", "--to", &first]);
    assert_eq!(report["rows_discarded"], 10, "{report}");
    assert_eq!(
        report["discarded"][0]["job_id"], "after-rollback",
        "{report}"
    );
    assert_eq!(lakehouse.rows("bronze.events"), 500);
}
