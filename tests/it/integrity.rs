//! Data integrity when storage is damaged or swept under running writers:
//! a data file the metadata names but storage lacks fails every read that
//! needs it, and orphan sweeps never break a committed table.

use crate::support::{Lakehouse, SCALE, parquet_files_under, pyiceberg};
use std::collections::HashSet;

#[test]
fn a_data_file_missing_from_storage_fails_every_read_of_it_naming_the_table_and_the_file() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let pipeline = lakehouse.pipeline_copy();
    let files = parquet_files_under(&lakehouse.path().join("warehouse/silver/orders"));
    assert!(
        files.len() >= 2,
        "silver.orders needs two files here: {files:?}"
    );
    std::fs::remove_file(&files[0]).unwrap();
    let name = files[0].file_name().unwrap().to_str().unwrap();
    let gold = lakehouse.snapshots()["gold.sales_dashboard"].clone();

    let pipeline = pipeline.to_str().unwrap();
    let reads: [&[&str]; 6] = [
        &["sql", "SELECT COUNT(*) FROM silver.orders"],
        &[
            "sql",
            "SELECT SUM(total_price) FROM silver.orders WHERE order_key > 0",
        ],
        &[
            "run",
            pipeline,
            "--job",
            "gold_sales_dashboard",
            "--job-id",
            "after-damage",
        ],
        &["delete", "silver.orders", "--where", "order_key > 0"],
        &["compact", "silver.orders"],
        &["demo", "--scale", SCALE, "--job-id", "load-2"],
    ];
    for args in reads {
        let error = lakehouse.fails(args);
        assert!(
            error.contains("table silver.orders names data file") && error.contains(name),
            "medallion {args:?}: {error}"
        );
    }
    assert_eq!(lakehouse.snapshots()["gold.sales_dashboard"], gold);
}

/// A long write: every bronze order into 64 buckets, thousands of files.
const BUCKETED_ORDERS: &str = "\
name: bronze_orders_by_key
inputs:
  - { name: raw_orders, path: tpch/orders, format: parquet }
steps:
  - bronze:
      from: raw_orders
      columns:
        - { name: order_key, from: o_orderkey, type: int64 }
        - { name: customer_key, from: o_custkey, type: int64 }
        - { name: comment, from: o_comment, type: string }
target:
  table: bronze.orders_by_key
  mode: append
  partition_by: [\"bucket(64, order_key)\"]
";

#[test]
fn orphan_sweeps_racing_a_pipeline_and_a_long_partitioned_write_leave_every_table_readable() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let spec = lakehouse.path().join("orders_by_key.yaml");
    std::fs::write(&spec, BUCKETED_ORDERS).unwrap();
    let mut writers = [
        lakehouse.spawn(&["demo", "--scale", SCALE, "--job-id", "load-2"]),
        lakehouse.spawn(&["run", spec.to_str().unwrap(), "--job-id", "long-1"]),
    ];
    let mut tables: Vec<String> = lakehouse.snapshots().into_keys().collect();
    tables.push("bronze.orders_by_key".into());
    let mut sweeps = 0;
    let mut refusals = HashSet::new();
    while writers.iter_mut().any(|w| w.try_wait().unwrap().is_none()) {
        for table in &tables {
            let args = [
                "remove-orphan-files",
                table,
                "--older-than",
                "1s",
                "--force-unsafe-age",
            ];
            let out = lakehouse.medallion(&args);
            sweeps += 1;
            if !out.status.success() {
                refusals.insert(crate::support::error_line(&out));
            }
        }
    }
    for writer in writers {
        let out = writer.wait_with_output().unwrap();
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || error.contains("are gone from storage"),
            "a writer failed otherwise than for files swept from under it: {error}"
        );
    }
    // A sweep may only fail for a table not created yet, or one that kept changing.
    for refusal in &refusals {
        assert!(
            refusal.contains("does not exist") || refusal.contains("kept changing"),
            "{refusal}"
        );
    }
    assert!(
        sweeps > tables.len(),
        "the writers ended before a second sweep"
    );

    // Every table reads whole, in PyIceberg and in medallion, with the same rows.
    let facts = pyiceberg(&["sql", lakehouse.path().to_str().unwrap()], &[]).unwrap();
    for (table, fact) in facts.as_object().unwrap() {
        assert_eq!(
            Some(lakehouse.rows(table)),
            fact["rows"].as_u64(),
            "{table}"
        );
    }
}
