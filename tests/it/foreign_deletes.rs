//! Tables another engine updated with merge-on-read: Iceberg v2 position
//! delete files, written by PyIceberg's own writers as Spark or DuckDB
//! leave them after a DELETE (`tests/interop/position_deletes.py`).
//! medallion reads the rows PyIceberg reads, and refuses to rewrite such a
//! table instead of resurrecting its deleted rows.

use crate::support::{Lakehouse, interop_script};

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
fn a_table_with_delete_files_is_not_rewritten_and_maintenance_keeps_its_deletes() {
    let (lakehouse, _) = lakehouse_with_deletes();
    let rows = || lakehouse.scalar(&format!("SELECT COUNT(*) FROM {TABLE}"));
    for rewrite in [
        &["delete", TABLE, "--where", "id = 1"][..],
        &["compact", TABLE][..],
        &["rewrite-manifests", TABLE][..],
    ] {
        let error = lakehouse.fails(rewrite);
        assert!(
            error.contains("delete files") && error.contains("cannot rewrite"),
            "{rewrite:?}: {error}"
        );
    }
    assert_eq!(rows(), "171", "nothing changed");
    // The delete file is referenced: neither sweep takes it. Old enough
    // to be a candidate of the orphan sweep.
    std::thread::sleep(std::time::Duration::from_millis(1500));
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
    assert_eq!(rows(), "171", "the deleted rows stay deleted");
}
