use std::path::PathBuf;

use crate::support::{Lakehouse, SCALE, edit};

/// A lakehouse after one demo run, and an editable copy of its pipeline.
fn prepared() -> (Lakehouse, PathBuf) {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let pipeline = lakehouse.pipeline_copy();
    (lakehouse, pipeline)
}

/// Runs one job of the pipeline, which must fail; returns the error line.
fn run_job_fails(lakehouse: &Lakehouse, pipeline: &std::path::Path, job: &str) -> String {
    lakehouse.fails(&[
        "run",
        pipeline.to_str().unwrap(),
        "--job",
        job,
        "--job-id",
        "x",
    ])
}

#[test]
fn a_missing_raw_path_is_named_and_changes_nothing() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    edit(
        &pipeline.join("bronze/orders.yaml"),
        "path: tpch/orders",
        "path: tpch/no_such_orders",
    );
    let error = run_job_fails(&lakehouse, &pipeline, "bronze_orders");
    assert!(
        error.contains("no .parquet files at") && error.contains("tpch/no_such_orders"),
        "{error}"
    );
    assert_eq!(lakehouse.snapshots(), before);
}

#[test]
fn a_corrupt_parquet_file_is_named_and_changes_nothing() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    let corrupt = lakehouse.raw_dir("orders").join("part-9.parquet");
    std::fs::write(&corrupt, b"PAR1 this is not parquet at all").unwrap();
    let error = run_job_fails(&lakehouse, &pipeline, "bronze_orders");
    assert!(
        error.contains("part-9.parquet") && error.contains("bronze_orders"),
        "{error}"
    );
    assert_eq!(lakehouse.snapshots(), before);
    assert_eq!(lakehouse.rows("bronze.orders"), 150_000);
}

#[test]
fn an_unknown_column_in_a_spec_is_named_and_changes_nothing() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    edit(
        &pipeline.join("bronze/customers.yaml"),
        "from: c_phone,",
        "from: c_phone_number,",
    );
    let error = run_job_fails(&lakehouse, &pipeline, "bronze_customers");
    assert!(
        error.contains("c_phone_number") && error.contains("customers.yaml"),
        "{error}"
    );
    assert!(
        error.contains("c_phone,"),
        "the error lists the columns there are: {error}"
    );
    assert_eq!(lakehouse.snapshots(), before);
}

#[test]
fn a_value_that_does_not_cast_fails_the_job_without_a_commit() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    // Order status letters ('F', 'O', 'P') are not integers; a new table
    // would take the typed rows.
    let spec = pipeline.join("bronze/orders.yaml");
    edit(
        &spec,
        "from: o_orderstatus,   type: string",
        "from: o_orderstatus,   type: int32",
    );
    edit(&spec, "table: bronze.orders", "table: bronze.orders_typed");
    let error = run_job_fails(&lakehouse, &pipeline, "bronze_orders");
    assert!(
        error.contains("bronze_orders") && error.to_lowercase().contains("cast"),
        "{error}"
    );
    assert_eq!(
        lakehouse.snapshots(),
        before,
        "no table appeared or changed"
    );
    // The failed write left no data files behind.
    let data = lakehouse.path().join("warehouse/bronze/orders_typed/data");
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
