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

/// One job, `gold_x`, writing one row (x = 1) to gold.x without raw data.
const SMALL_JOB: &str =
    "name: gold_x\nsteps:\n  - sql: SELECT 1 AS x\ntarget: { table: gold.x, mode: overwrite }\n";

/// A lakehouse holding gold.x, and the spec that wrote it.
fn small_table() -> (Lakehouse, String) {
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec("x.yaml", SMALL_JOB);
    let spec = spec.to_str().unwrap().to_string();
    lakehouse.ok(&["run", &spec, "--job-id", "x-1"]);
    (lakehouse, spec)
}

#[test]
fn sql_refuses_statements_that_are_not_queries_and_names_the_command_to_use() {
    let (lakehouse, _) = small_table();
    let copied = lakehouse.path().join("copied.csv");
    let copy = format!("COPY (SELECT 1 AS x) TO '{}'", copied.display());
    for (statement, says) in [
        ("DROP TABLE gold.x", "no drop command"),
        ("DELETE FROM gold.x WHERE x = 1", "medallion delete"),
        ("INSERT INTO gold.x VALUES (2)", "medallion run"),
        ("CREATE TABLE y AS SELECT 1 AS x", "medallion run"),
        (copy.as_str(), "medallion run"),
        ("SET datafusion.execution.batch_size = 1", "queries only"),
    ] {
        let error = lakehouse.fails(&["sql", statement]);
        let first_word = statement.split(' ').next().unwrap();
        assert!(
            error.contains(first_word) && error.contains(says),
            "{statement}: {error}"
        );
    }
    assert!(!copied.exists(), "COPY wrote {}", copied.display());
    assert_eq!(lakehouse.rows("gold.x"), 1);
}

#[test]
fn sql_still_answers_queries_explain_and_describe() {
    let (lakehouse, _) = small_table();
    for query in [
        "SELECT x FROM gold.x",
        "WITH t AS (SELECT x FROM gold.x) SELECT * FROM t",
        "VALUES (1), (2)",
        "EXPLAIN SELECT x FROM gold.x",
        "DESCRIBE gold.x",
        "SHOW TABLES",
    ] {
        lakehouse.ok(&["sql", query]);
    }
}

#[test]
fn a_job_step_that_copies_is_refused_and_writes_nothing() {
    let lakehouse = Lakehouse::new();
    let copied = lakehouse.path().join("copied.csv");
    let spec = lakehouse.spec(
        "copy.yaml",
        &format!(
            "name: gold_copy\nsteps:\n  - sql: \"COPY (SELECT 1 AS x) TO '{}'\"\ntarget: {{ table: gold.copy, mode: overwrite }}\n",
            copied.display()
        ),
    );
    let spec = spec.to_str().unwrap();
    for command in [&["validate", spec][..], &["run", spec, "--job-id", "c-1"]] {
        let error = lakehouse.fails(command);
        assert!(
            error.contains("gold_copy") && error.contains("COPY") && error.contains("not a query"),
            "{command:?}: {error}"
        );
    }
    assert!(!copied.exists(), "the step wrote {}", copied.display());
    assert!(lakehouse.ok(&["tables"]).contains("no tables yet"));
}

#[test]
fn job_ids_are_checked_on_every_command_that_takes_one() {
    let (lakehouse, spec) = small_table();
    let too_long = "x".repeat(129);
    let commands: [&[&str]; 5] = [
        &["run", &spec],
        &["demo", "--scale", "0.001"],
        &["delete", "gold.x", "--where", "x = 2"],
        &["compact", "gold.x"],
        &["rewrite-manifests", "gold.x"],
    ];
    for command in commands {
        for bad in ["", "load 2", "a/b", too_long.as_str()] {
            let mut args = command.to_vec();
            args.extend(["--job-id", bad]);
            let error = lakehouse.fails(&args);
            assert!(
                error.contains("--job-id") && error.contains("A-Za-z0-9._:-"),
                "{args:?}: {error}"
            );
        }
    }
    let longest = "y".repeat(128);
    for good in [
        "2026-11-29T12:00:00Z",
        "load-2",
        "demo-sf0.1",
        longest.as_str(),
    ] {
        lakehouse.ok(&["run", &spec, "--job-id", good]);
    }
    assert_eq!(lakehouse.rows("gold.x"), 1);
}
