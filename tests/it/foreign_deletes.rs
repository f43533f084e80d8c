//! Tables another engine updated with merge-on-read: Iceberg v2 position
//! delete files, written by PyIceberg's own writers as Spark or DuckDB
//! leave them after a DELETE (`tests/interop/position_deletes.py`).
//! medallion reads the rows PyIceberg reads, and its rewrites apply the
//! deletes (never resurrecting a deleted row) and drop delete files once no
//! data file they cover is left.

use crate::support::{Lakehouse, interop_script, parquet_files_under, pyiceberg};

const TABLE: &str = "foreign.deleted";

/// A lakehouse whose catalog medallion created, holding the table.
fn lakehouse_with_deletes() -> (Lakehouse, serde_json::Value) {
    let lakehouse = Lakehouse::new();
    // medallion creates the catalog's tables: PyIceberg's lack a column it reads.
    lakehouse.ok(&["tables"]);
    let read = interop_script(
        "position_deletes.py",
        &[lakehouse.path().to_str().unwrap(), TABLE],
        &[],
    )
    .expect("PyIceberg's reading as JSON");
    (lakehouse, read)
}

#[test]
fn rows_deleted_by_position_delete_files_are_not_read() {
    let (lakehouse, pyiceberg) = lakehouse_with_deletes();
    assert_eq!(
        pyiceberg["deleted"], 29,
        "the fixture deletes every seventh id"
    );
    let count = lakehouse.scalar(&format!("SELECT COUNT(*) FROM {TABLE}"));
    assert_eq!(
        count,
        pyiceberg["rows"].to_string(),
        "medallion reads what PyIceberg reads"
    );
    let sum = lakehouse.scalar(&format!("SELECT SUM(id) FROM {TABLE}"));
    assert_eq!(sum, pyiceberg["sum_id"].to_string());
    let deleted_left = lakehouse.scalar(&format!("SELECT COUNT(*) FROM {TABLE} WHERE id % 7 = 0"));
    assert_eq!(deleted_left, "0");
    // Across both data files, with a filter pushed into the scan.
    let between = lakehouse.scalar(&format!(
        "SELECT CAST(COUNT(*) AS VARCHAR) || ' ' || CAST(SUM(id) AS VARCHAR) FROM {TABLE} WHERE id BETWEEN 90 AND 110"
    ));
    let kept: Vec<u64> = (90..=110).filter(|i| i % 7 != 0).collect();
    assert_eq!(
        between,
        format!("{} {}", kept.len(), kept.iter().sum::<u64>())
    );
}

#[test]
fn rewrites_of_a_table_with_foreign_deletes_keep_its_rows_deleted_and_compact_drops_the_delete_file()
 {
    let (lakehouse, written) = lakehouse_with_deletes();
    let rows = || lakehouse.scalar(&format!("SELECT COUNT(*) FROM {TABLE}"));
    assert_eq!(rows(), written["rows"].to_string());
    // One delete file covers both data files: a rewrite of one keeps it.
    lakehouse.ok(&["delete", TABLE, "--where", "id = 1"]);
    lakehouse.ok(&["rewrite-manifests", TABLE]);
    assert_eq!(rows(), "170");
    assert_eq!(delete_files_now(&lakehouse), 1);
    // The sweeps take no delete file a snapshot needs. Old enough to be a
    // candidate of the orphan sweep.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    sweep(&lakehouse);
    assert_eq!(rows(), "170", "the deleted rows stay deleted");
    lakehouse.ok(&["compact", TABLE]);
    assert_eq!(
        delete_files_now(&lakehouse),
        0,
        "compaction folded the deletes into both files"
    );
    assert_eq!(rows(), "170", "the deleted rows stay deleted");
    let deleted_left = lakehouse.scalar(&format!("SELECT COUNT(*) FROM {TABLE} WHERE id % 7 = 0"));
    assert_eq!(deleted_left, "0");
    sweep(&lakehouse);
    assert_eq!(rows(), "170");
    assert!(
        !parquet_files_under(lakehouse.path())
            .iter()
            .any(|f| f.ends_with("positions-deletes.parquet")),
        "expiry deleted the delete file no snapshot needs any more"
    );
    let read = pyiceberg(&["sql", lakehouse.path().to_str().unwrap()], &[]).unwrap();
    assert_eq!(read[TABLE]["rows"], 170, "{read}");
}

/// The delete files of the table's current snapshot, as `history` shows it.
fn delete_files_now(lakehouse: &Lakehouse) -> u64 {
    let history: serde_json::Value =
        serde_json::from_str(&lakehouse.ok(&["history", TABLE, "--json"])).unwrap();
    let snapshots = history.as_array().unwrap();
    let current = snapshots.iter().find(|s| s["is_current"] == true).unwrap();
    current["total_delete_files"].as_u64().unwrap()
}

/// Orphan removal at the shortest age, then expiry of every older snapshot.
fn sweep(lakehouse: &Lakehouse) {
    lakehouse.ok(&[
        "remove-orphan-files",
        TABLE,
        "--older-than",
        "1s",
        "--force-unsafe-age",
    ]);
    lakehouse.ok(&[
        "expire-snapshots",
        TABLE,
        "--older-than",
        "0s",
        "--retain-last",
        "1",
    ]);
}
