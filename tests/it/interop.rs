//! PyIceberg, a second Iceberg implementation, opens medallion's SQLite
//! catalog and reads the tables. A table only medallion can read is not an
//! Iceberg table.

use std::process::Command;

use crate::support::{Lakehouse, SCALE, cents, expected_from_raw};

#[test]
fn pyiceberg_reads_every_table_medallion_wrote() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let expected = expected_from_raw(&lakehouse);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/read_tables.py"
    );
    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(script)
        .arg(lakehouse.path())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "PyIceberg could not read the tables (pip install -r tests/requirements.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(facts["silver.orders"]["rows"], expected.orders);
    assert_eq!(facts["bronze.orders"]["rows"], expected.orders);
    assert_eq!(
        facts["gold.customer_metrics"]["rows"],
        expected.customers_with_orders
    );
    assert_eq!(
        facts["gold.sales_dashboard"]["rows"],
        expected.month_segments
    );
    assert_eq!(facts["silver.dq_report"]["rows"], 5);
    assert_eq!(
        cents(
            facts["gold.customer_metrics"]["total_spend"]
                .as_str()
                .unwrap()
        ),
        expected.revenue_cents
    );
    assert_eq!(
        cents(facts["silver.orders"]["total_price"].as_str().unwrap()),
        expected.revenue_cents
    );
    assert_eq!(
        facts["gold.customer_metrics"]["order_count"],
        expected.orders
    );
}
