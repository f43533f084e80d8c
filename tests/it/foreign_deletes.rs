//! Tables another engine updated with merge-on-read: Iceberg v2 position
//! delete files, written by PyIceberg's own writers as Spark or DuckDB
//! leave them after a DELETE (`tests/interop/position_deletes.py`), and
//! equality delete files as Flink leaves them after an upsert
//! (`tests/interop/equality_deletes.py`, checked against Spark's reading).
//! medallion reads the rows the others read, and its rewrites apply the
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
    assert_eq!(delete_files_of(&lakehouse, TABLE), 1);
    // The sweeps take no delete file a snapshot needs. Old enough to be a
    // candidate of the orphan sweep.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    sweep(&lakehouse);
    assert_eq!(rows(), "170", "the deleted rows stay deleted");
    lakehouse.ok(&["compact", TABLE]);
    assert_eq!(
        delete_files_of(&lakehouse, TABLE),
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
pub fn delete_files_of(lakehouse: &Lakehouse, table: &str) -> u64 {
    let history: serde_json::Value =
        serde_json::from_str(&lakehouse.ok(&["history", table, "--json"])).unwrap();
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

const UPSERTED: &str = "foreign.upserted";

/// A lakehouse holding a table with equality delete files
/// (`tests/interop/equality_deletes.py`), with what the spec says it holds
/// and what Spark reads of it.
fn lakehouse_with_equality_deletes() -> (Lakehouse, serde_json::Value) {
    let lakehouse = Lakehouse::new();
    lakehouse.ok(&["tables"]);
    let read = interop_script(
        "equality_deletes.py",
        &[lakehouse.path().to_str().unwrap(), UPSERTED],
        &[],
    )
    .expect("the fixture's facts as JSON");
    assert_eq!(
        read["spec"], read["spark"],
        "Spark reads what the spec says"
    );
    (lakehouse, read)
}

fn count_and_sums(lakehouse: &Lakehouse) -> serde_json::Value {
    let row = lakehouse.scalar(&format!(
        "SELECT CONCAT_WS(' ', COUNT(*), SUM(id), SUM(amount)) FROM {UPSERTED}"
    ));
    let numbers: Vec<u64> = row.split(' ').map(|n| n.parse().unwrap()).collect();
    serde_json::json!({"rows": numbers[0], "sum_id": numbers[1], "sum_amount": numbers[2]})
}

#[test]
fn rows_equal_to_an_equality_delete_are_not_read_nulls_included_and_later_rows_stay() {
    let (lakehouse, read) = lakehouse_with_equality_deletes();
    assert_eq!(count_and_sums(&lakehouse), read["spec"]);
    let some = lakehouse.scalar(&format!(
        "SELECT STRING_AGG(CAST(id AS VARCHAR), ',' ORDER BY id) FROM {UPSERTED} \
         WHERE id IN (7, 10, 11, 200, 203)"
    ));
    assert_eq!(
        some, "11,200,203",
        "7 equals a deleted id, 10 has a null tag; 200 and 203 came after the deletes"
    );
}

#[test]
fn compact_folds_equality_deletes_and_drops_them_once_no_older_data_file_is_left() {
    let (lakehouse, read) = lakehouse_with_equality_deletes();
    let table_now = || lakehouse.scalar(&format!("SELECT COUNT(*) FROM {UPSERTED}"));
    // A rewrite of one file keeps the deletes the others still need.
    lakehouse.ok(&["delete", UPSERTED, "--where", "id = 203"]);
    assert_eq!(
        table_now(),
        (read["spec"]["rows"].as_u64().unwrap() - 1).to_string()
    );
    assert_eq!(delete_files_of(&lakehouse, UPSERTED), 2);
    lakehouse.ok(&["compact", UPSERTED]);
    assert_eq!(delete_files_of(&lakehouse, UPSERTED), 0);
    assert_eq!(
        table_now(),
        (read["spec"]["rows"].as_u64().unwrap() - 1).to_string()
    );
    let deleted_left = lakehouse.scalar(&format!(
        "SELECT COUNT(*) FROM {UPSERTED} WHERE id < 200 AND (id % 7 = 0 OR tag IS NULL)"
    ));
    assert_eq!(deleted_left, "0", "compaction applied both delete files");
}
