use std::collections::HashSet;

use crate::support::{Lakehouse, SCALE, TABLES, edit, statuses};

#[test]
fn rerunning_a_job_id_changes_nothing_and_a_new_load_dedups_in_silver() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let before = lakehouse.snapshots();
    let rows_before: Vec<u64> = TABLES.iter().map(|t| lakehouse.rows(t)).collect();

    // Same job id: every job says it already committed, nothing changes.
    let again = lakehouse.report(&["demo", "--scale", SCALE]);
    for (table, status) in statuses(&again) {
        assert_eq!(status, "already_committed", "{table}");
    }
    assert_eq!(lakehouse.snapshots(), before);
    let rows_after: Vec<u64> = TABLES.iter().map(|t| lakehouse.rows(t)).collect();
    assert_eq!(rows_after, rows_before);

    // A second load of the same raw files under a new job id: bronze appends,
    // silver keeps the latest version of every key, gold is replaced.
    lakehouse.report(&["demo", "--scale", SCALE, "--job-id", "load-2"]);
    assert_eq!(lakehouse.rows("bronze.orders"), 2 * rows_before[0]);
    assert_eq!(lakehouse.rows("silver.orders"), rows_before[3]);
    assert_eq!(lakehouse.rows("gold.customer_metrics"), rows_before[5]);
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM silver.orders WHERE job_id <> 'load-2'"),
        "0",
        "silver keeps the latest load of every key"
    );
    assert_eq!(
        lakehouse.scalar("SELECT rejected_rows FROM silver.dq_report WHERE table_name = 'orders' AND check_name = 'duplicate_key'"),
        rows_before[0].to_string()
    );
    // Both loads' rows are really in bronze's files: no write overwrote another's.
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.orders WHERE job_id = 'load-2'"),
        rows_before[0].to_string()
    );
    assert_eq!(
        lakehouse.scalar(&format!(
            "SELECT COUNT(*) FROM bronze.orders WHERE job_id = 'demo-sf{SCALE}'"
        )),
        rows_before[0].to_string()
    );
    let jobs: HashSet<String> = lakehouse
        .history_of("bronze.orders", "job_id")
        .into_iter()
        .collect();
    assert_eq!(
        jobs,
        HashSet::from([format!("demo-sf{SCALE}"), "load-2".to_string()])
    );
}

#[test]
fn a_job_failing_halfway_keeps_bronze_and_leaves_later_layers_untouched() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let before = lakehouse.snapshots();
    let pipeline = lakehouse.pipeline_copy();
    let pipeline_arg = pipeline.to_str().unwrap();

    let orders_sql = pipeline.join("silver/orders.sql");
    edit(&orders_sql, "o.clerk,", "o.clerk_name,");
    let error = lakehouse.fails(&["run", pipeline_arg, "--job-id", "load-2"]);
    assert!(
        error.contains("silver_orders") && error.contains("clerk_name"),
        "{error}"
    );
    assert!(error.contains("orders.sql"), "{error}");

    let after = lakehouse.snapshots();
    assert_ne!(
        after["bronze.orders"], before["bronze.orders"],
        "bronze committed load-2"
    );
    assert_ne!(
        after["silver.customers"], before["silver.customers"],
        "silver customers ran first"
    );
    for table in [
        "silver.orders",
        "silver.dq_report",
        "gold.customer_metrics",
        "gold.sales_dashboard",
    ] {
        assert_eq!(after[table], before[table], "{table} untouched");
    }

    // Fixed and re-run with the same job id: bronze is not loaded twice.
    edit(&orders_sql, "o.clerk_name,", "o.clerk,");
    let report = lakehouse.report(&["run", pipeline_arg, "--job-id", "load-2"]);
    let status = statuses(&report);
    assert_eq!(status["bronze.orders"], "already_committed");
    assert_eq!(status["silver.customers"], "already_committed");
    assert_eq!(status["silver.orders"], "committed");
    assert_eq!(status["gold.sales_dashboard"], "committed");
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.orders WHERE job_id = 'load-2'"),
        "150000"
    );
    assert_eq!(lakehouse.rows("silver.orders"), 150_000);
}
