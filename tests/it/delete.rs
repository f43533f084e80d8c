use crate::support::{Lakehouse, SCALE, pyiceberg};

#[test]
fn delete_rewrites_only_the_files_holding_matching_rows() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    lakehouse.report(&["demo", "--scale", SCALE, "--job-id", "load-2"]);
    let before = lakehouse.snapshots();
    let total: u64 = 300_000;
    let tables: serde_json::Value =
        serde_json::from_str(&lakehouse.ok(&["tables", "--json"])).unwrap();
    let data_files: u64 = tables
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "bronze.orders")
        .and_then(|t| t["files"].as_str())
        .and_then(|f| f.parse().ok())
        .unwrap();
    assert!(data_files >= 2, "the test needs a table of several files");

    // A narrow predicate rewrites the files of one load, not the table.
    let report: serde_json::Value = serde_json::from_str(&lakehouse.ok(&[
        "delete",
        "bronze.orders",
        "--where",
        "job_id = 'load-2' AND order_key <= 10",
        "--json",
    ]))
    .unwrap();
    let deleted = report["rows_deleted"].as_u64().unwrap();
    assert!(deleted > 0 && deleted <= 10, "{report}");
    let rewritten = report["files_rewritten"].as_u64().unwrap();
    assert!(
        rewritten >= 1 && rewritten < data_files,
        "{report}, {data_files} files in all"
    );
    assert_eq!(lakehouse.rows("bronze.orders"), total - deleted);
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.orders WHERE order_key <= 10"),
        deleted.to_string(),
        "the first load keeps its rows"
    );

    // A wide one: exactly the matching rows go, nothing else changes.
    let even: u64 = lakehouse
        .scalar("SELECT COUNT(*) FROM bronze.orders WHERE order_key % 2 = 0")
        .parse()
        .unwrap();
    lakehouse.ok(&["delete", "bronze.orders", "--where", "order_key % 2 = 0"]);
    assert_eq!(lakehouse.rows("bronze.orders"), total - deleted - even);
    let after = lakehouse.snapshots();
    assert_ne!(after["bronze.orders"], before["bronze.orders"]);
    assert_eq!(after["silver.orders"], before["silver.orders"]);
    let facts = pyiceberg(&["sql", lakehouse.path().to_str().unwrap()], &[]).expect("facts");
    assert_eq!(facts["bronze.orders"]["rows"], total - deleted - even);

    // Nothing matching: nothing committed. A bad predicate: a clear error.
    assert!(
        lakehouse
            .ok(&["delete", "bronze.orders", "--where", "order_key < 0"])
            .contains("nothing changed")
    );
    assert_eq!(lakehouse.snapshots(), after);
    let error = lakehouse.fails(&["delete", "bronze.orders", "--where", "order_id = 1"]);
    assert!(
        error.contains("order_id") && error.contains("bronze.orders"),
        "{error}"
    );
    assert_eq!(lakehouse.snapshots(), after);

    // The history says what happened, and rollback undoes it.
    let operations = lakehouse.history_of("bronze.orders", "operation");
    assert_eq!(operations, ["append", "append", "overwrite", "overwrite"]);
    lakehouse.ok(&[
        "rollback",
        "bronze.orders",
        "--to",
        &before["bronze.orders"],
    ]);
    assert_eq!(lakehouse.rows("bronze.orders"), total);
}
