//! Tables DuckDB 1.5 updated in place through the REST catalog (its
//! iceberg extension writes position delete files for DELETE and UPDATE;
//! `tests/interop/duckdb_deletes.py`): medallion reads the rows DuckDB
//! reads, deletes beside DuckDB's, and compacts the table, and DuckDB
//! reads every step back.

use serde_json::Value;

use crate::backend::Backend;
use crate::support::{Lakehouse, interop_script, without_delete_files};

const TABLE: &str = "duck_made.updated";

/// What DuckDB reads of the table, after `command` (`write` or `read`).
fn duckdb(backend: &Backend, command: &str) -> Value {
    let args = [
        command,
        &backend.catalog_uri,
        &backend.s3_endpoint,
        &backend.warehouse,
        TABLE,
    ];
    interop_script("duckdb_deletes.py", &args, &backend.env()).expect("DuckDB's facts as JSON")
}

/// The facts `duckdb_deletes.py` reads, as medallion reads them.
fn medallion_reads(lakehouse: &Lakehouse) -> Value {
    let row = lakehouse.scalar(&format!(
        "SELECT CONCAT_WS(' ', COUNT(*), SUM(id), SUM(amount), \
           COUNT(*) FILTER (WHERE note = 'updated')) FROM {TABLE}"
    ));
    let numbers: Vec<u64> = row.split(' ').map(|n| n.parse().unwrap()).collect();
    serde_json::json!({
        "rows": numbers[0], "sum_id": numbers[1], "sum_amount": numbers[2], "updated": numbers[3],
    })
}

#[test]
fn a_table_duckdb_updated_in_place_reads_as_duckdb_reads_it_and_compacts_without_its_deletes() {
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let written = duckdb(&backend, "write");
    assert!(
        written["delete_files"]["PARQUET"].as_u64().unwrap() > 0,
        "DuckDB wrote position delete files: {written}"
    );
    assert_eq!(medallion_reads(&lakehouse), without_delete_files(&written));

    // medallion deletes by position beside DuckDB's deletes; DuckDB reads both.
    let matched = lakehouse.scalar(&format!("SELECT COUNT(*) FROM {TABLE} WHERE id % 10 = 1"));
    lakehouse.ok(&[
        "delete",
        TABLE,
        "--where",
        "id % 10 = 1",
        "--write-mode",
        "merge-on-read",
    ]);
    let after_delete = duckdb(&backend, "read");
    assert_eq!(
        after_delete["rows"].as_u64().unwrap(),
        written["rows"].as_u64().unwrap() - matched.parse::<u64>().unwrap()
    );
    assert_eq!(
        medallion_reads(&lakehouse),
        without_delete_files(&after_delete)
    );

    lakehouse.ok(&["compact", TABLE]);
    let compacted = duckdb(&backend, "read");
    assert_eq!(
        compacted["delete_files"],
        serde_json::json!({}),
        "{compacted}"
    );
    assert_eq!(
        without_delete_files(&compacted),
        without_delete_files(&after_delete)
    );
    assert_eq!(
        medallion_reads(&lakehouse),
        without_delete_files(&compacted)
    );
}
