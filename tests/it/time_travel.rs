use crate::support::{Lakehouse, SCALE, pyiceberg};

fn count(lakehouse: &Lakehouse, extra: &[&str]) -> String {
    let mut args = vec!["sql", "--format", "csv"];
    args.extend_from_slice(extra);
    args.push("SELECT COUNT(*) FROM bronze.orders");
    let out = lakehouse.ok(&args);
    out.lines().nth(1).expect("a count").trim().to_string()
}

#[test]
fn earlier_snapshots_can_be_read_and_made_current_again() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let first = lakehouse.snapshots()["bronze.orders"].clone();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(20));
    lakehouse.report(&["demo", "--scale", SCALE, "--job-id", "load-2"]);
    let second = lakehouse.snapshots()["bronze.orders"].clone();
    assert_eq!(count(&lakehouse, &[]), "300000");

    // Time travel, by snapshot id and by timestamp.
    let at_first = format!("bronze.orders={first}");
    assert_eq!(count(&lakehouse, &["--snapshot", &at_first]), "150000");
    assert_eq!(count(&lakehouse, &["--as-of", &between]), "150000");
    let error = lakehouse.fails(&["sql", "--snapshot", "bronze.orders=42", "SELECT 1"]);
    assert!(
        error.contains("no snapshot 42") && error.contains("medallion history"),
        "{error}"
    );

    // Rollback makes the first load current again, for every reader.
    lakehouse.ok(&["rollback", "bronze.orders", "--to", &first]);
    assert_eq!(count(&lakehouse, &[]), "150000");
    assert_eq!(lakehouse.snapshots()["bronze.orders"], first);
    let facts = pyiceberg(&["sql", lakehouse.path().to_str().unwrap()], &[]).expect("facts");
    assert_eq!(facts["bronze.orders"]["rows"], 150_000);

    // The rolled-back snapshot is no longer in the current history.
    let error = lakehouse.fails(&["rollback", "bronze.orders", "--to", &second]);
    assert!(
        error.contains("not in the current history of bronze.orders"),
        "{error}"
    );
}
