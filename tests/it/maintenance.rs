//! Maintenance commands: compact small files, expire old snapshots, remove
//! orphan files. Each leaves the same rows, readable by PyIceberg too.

use crate::support::{BRONZE_EVENTS_CSV as SPEC, Lakehouse, parquet_files_under, pyiceberg};

/// Five loads of 100 rows each: five small data files.
fn five_small_loads(lakehouse: &Lakehouse) {
    let spec = lakehouse.path().join("events.yaml");
    std::fs::write(&spec, SPEC).unwrap();
    for load in 0..5 {
        let raw = lakehouse.path().join(format!("raw-{load}"));
        std::fs::create_dir_all(raw.join("events")).unwrap();
        let rows: String = (load * 100..load * 100 + 100)
            .map(|k| format!("{k},payload {k}\n"))
            .collect();
        std::fs::write(raw.join("events/part.csv"), format!("key,payload\n{rows}")).unwrap();
        lakehouse.ok(&[
            "--raw",
            raw.to_str().unwrap(),
            "run",
            spec.to_str().unwrap(),
            "--job-id",
            &format!("load-{load}"),
        ]);
    }
}

fn pyiceberg_rows(lakehouse: &Lakehouse) -> u64 {
    let facts = pyiceberg(&["sql", lakehouse.path().to_str().unwrap()], &[]).unwrap();
    facts["bronze.events"]["rows"].as_u64().unwrap()
}

fn table_digest(lakehouse: &Lakehouse) -> String {
    lakehouse.scalar(
        "SELECT CONCAT(COUNT(*), '/', SUM(key), '/', COUNT(DISTINCT payload)) FROM bronze.events",
    )
}

#[test]
fn compact_expire_and_orphan_removal_keep_every_row_and_free_the_files() {
    let lakehouse = Lakehouse::new();
    five_small_loads(&lakehouse);
    let table_dir = lakehouse.path().join("warehouse");
    let digest = table_digest(&lakehouse);
    assert_eq!(digest, "500/124750/500");
    assert_eq!(parquet_files_under(&table_dir).len(), 5);
    let first_snapshot = lakehouse.history("bronze.events")[0]["snapshot_id"]
        .as_i64()
        .unwrap()
        .to_string();

    // Compact: the five files become one; same rows; the snapshot is a replace.
    let report: serde_json::Value =
        serde_json::from_str(&lakehouse.ok(&["--json", "compact", "bronze.events"])).unwrap();
    assert_eq!(report["files_rewritten"], 5, "{report}");
    assert_eq!(report["files_written"], 1, "{report}");
    assert_eq!(report["rows"], 500, "{report}");
    assert_eq!(table_digest(&lakehouse), digest);
    assert_eq!(
        lakehouse.history("bronze.events").last().unwrap()["operation"],
        "replace"
    );
    assert_eq!(pyiceberg_rows(&lakehouse), 500);
    // Old snapshots still hold the old files: time travel works.
    let first_load = lakehouse.ok(&[
        "sql",
        "--format",
        "csv",
        "--snapshot",
        &format!("bronze.events={first_snapshot}"),
        "SELECT COUNT(*) AS n FROM bronze.events",
    ]);
    assert_eq!(first_load.trim(), "n\n100");
    assert_eq!(parquet_files_under(&table_dir).len(), 6);
    // Nothing to compact twice.
    let again = lakehouse.ok(&["compact", "bronze.events"]);
    assert!(again.contains("nothing to compact"), "{again}");

    // Expire all but the current snapshot: the five small files go.
    let report: serde_json::Value = serde_json::from_str(&lakehouse.ok(&[
        "--json",
        "expire-snapshots",
        "bronze.events",
        "--older-than",
        "0s",
    ]))
    .unwrap();
    assert_eq!(report["snapshots_expired"], 5, "{report}");
    assert_eq!(report["snapshots_kept"], 1, "{report}");
    assert_eq!(parquet_files_under(&table_dir).len(), 1);
    assert_eq!(table_digest(&lakehouse), digest);
    assert_eq!(pyiceberg_rows(&lakehouse), 500);
    let gone = lakehouse.fails(&[
        "sql",
        "--snapshot",
        &format!("bronze.events={first_snapshot}"),
        "SELECT COUNT(*) FROM bronze.events",
    ]);
    assert!(gone.contains("has no snapshot"), "{gone}");

    // An orphan, as a killed write leaves it: listed by a dry run, kept
    // while younger than the safety age, deleted after.
    let data_dir = parquet_files_under(&table_dir)[0]
        .parent()
        .unwrap()
        .to_path_buf();
    let orphan = data_dir.join("killed-write-00000.parquet");
    std::fs::write(&orphan, b"half a parquet file").unwrap();
    let young = lakehouse.ok(&["remove-orphan-files", "bronze.events", "--dry-run"]);
    assert!(young.contains("would delete 0 orphan files"), "{young}");
    let refused = lakehouse.fails(&["remove-orphan-files", "bronze.events", "--older-than", "0s"]);
    assert!(
        refused.contains("younger than 1d") && refused.contains("--force-unsafe-age"),
        "{refused}"
    );
    assert!(orphan.exists());
    let listed = lakehouse.ok(&[
        "remove-orphan-files",
        "bronze.events",
        "--older-than",
        "0s",
        "--force-unsafe-age",
        "--dry-run",
    ]);
    assert!(listed.contains("killed-write-00000.parquet"), "{listed}");
    assert!(listed.contains("would delete 1 orphan files"), "{listed}");
    assert!(orphan.exists());
    lakehouse.ok(&[
        "remove-orphan-files",
        "bronze.events",
        "--older-than",
        "0s",
        "--force-unsafe-age",
    ]);
    assert!(!orphan.exists());
    assert_eq!(parquet_files_under(&table_dir).len(), 1);
    assert_eq!(table_digest(&lakehouse), digest);
    assert_eq!(pyiceberg_rows(&lakehouse), 500);
}
