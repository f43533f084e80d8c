use crate::support::{Lakehouse, SCALE, TABLES, assert_demo_tables, expected_from_raw, statuses};

#[test]
fn demo_builds_every_layer_with_exact_rows_and_aggregates() {
    let lakehouse = Lakehouse::new();
    let report = lakehouse.report(&["demo", "--scale", SCALE]);
    let status = statuses(&report);
    for table in TABLES {
        assert_eq!(status[table], "committed", "{table} in {report}");
    }
    for job in report["jobs"].as_array().unwrap() {
        assert!(job["snapshot_id"].as_i64().is_some(), "{job}");
        assert!(job["bytes"].as_u64().unwrap() > 0, "{job}");
    }

    let expected = expected_from_raw(&lakehouse);
    assert_eq!(expected.orders, 150_000);
    assert_eq!(expected.customers, 15_000);
    assert_demo_tables(&lakehouse, &expected);

    // Report rows agree with what the tables hold: a first load wrote them all.
    for job in report["jobs"].as_array().unwrap() {
        let table = job["table"].as_str().unwrap();
        let rows = lakehouse.rows(table);
        assert_eq!(job["table_rows"].as_u64(), Some(rows), "{table}");
        assert_eq!(job["rows_written"].as_u64(), Some(rows), "{table}");
    }

    assert_eq!(
        lakehouse.scalar("SELECT SUM(distinct_customers) >= COUNT(DISTINCT market_segment) FROM gold.sales_dashboard"),
        "true"
    );

    // Bronze carries the run's metadata on every row.
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT loaded_at) || '/' || COUNT(DISTINCT job_id) || '/' || MIN(job_id) FROM bronze.orders"),
        format!("1/1/demo-sf{SCALE}")
    );
    let source = lakehouse.scalar("SELECT MIN(source_file) FROM bronze.orders");
    assert!(
        source.starts_with("file:///") && source.contains("/raw/tpch/orders/part-"),
        "{source}"
    );
    // Strings are trimmed and keys typed as specified.
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.customers WHERE name <> trim(name)"),
        "0"
    );
    assert_eq!(
        lakehouse.scalar("SELECT arrow_typeof(nation_key) || ' ' || arrow_typeof(account_balance) FROM bronze.customers LIMIT 1"),
        "Int32 Decimal128(15, 2)"
    );
}
