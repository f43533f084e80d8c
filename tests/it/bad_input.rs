use crate::support::{Lakehouse, SCALE};

fn prepared() -> (Lakehouse, std::path::PathBuf) {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let pipeline = lakehouse.pipeline_copy();
    (lakehouse, pipeline)
}

#[test]
fn a_missing_raw_path_is_named_and_changes_nothing() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    let spec = pipeline.join("bronze/orders.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text.replace("path: tpch/orders", "path: tpch/no_such_orders"),
    )
    .unwrap();
    let error = lakehouse.fails(&[
        "run",
        pipeline.to_str().unwrap(),
        "--job",
        "bronze_orders",
        "--job-id",
        "x",
    ]);
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
    let error = lakehouse.fails(&[
        "run",
        pipeline.to_str().unwrap(),
        "--job",
        "bronze_orders",
        "--job-id",
        "x",
    ]);
    assert!(error.contains("part-9.parquet"), "{error}");
    assert!(error.contains("bronze_orders"), "{error}");
    assert_eq!(lakehouse.snapshots(), before);
    let rows = lakehouse.rows("bronze.orders");
    assert_eq!(rows, 150_000);
}

#[test]
fn an_unknown_column_in_a_spec_is_named_and_changes_nothing() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    let spec = pipeline.join("bronze/customers.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, text.replace("from: c_phone", "from: c_phone_number")).unwrap();
    let error = lakehouse.fails(&["run", pipeline.to_str().unwrap(), "--job-id", "x"]);
    assert!(
        error.contains("c_phone_number") && error.contains("customers.yaml"),
        "{error}"
    );
    assert!(
        error.contains("c_phone,"),
        "the error lists the columns there are: {error}"
    );
    // bronze_customers runs first in file order, so nothing at all changed.
    assert_eq!(lakehouse.snapshots(), before);
}

#[test]
fn a_value_that_does_not_cast_fails_the_job_without_a_commit() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    let spec = pipeline.join("bronze/orders.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    // Order status letters ('F', 'O', 'P') are not integers; a new table
    // takes the typed rows.
    let text = text
        .replace(
            "from: o_orderstatus,   type: string",
            "from: o_orderstatus,   type: int32",
        )
        .replace("table: bronze.orders", "table: bronze.orders_typed");
    std::fs::write(&spec, text).unwrap();
    let error = lakehouse.fails(&[
        "run",
        pipeline.to_str().unwrap(),
        "--job",
        "bronze_orders",
        "--job-id",
        "x",
    ]);
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
