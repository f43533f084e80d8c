//! PyIceberg reading medallion's tables back, as another engine would.

use std::process::Command;

use serde_json::Value;

use super::{Expected, cents};

/// Runs `tests/interop/read_tables.py` (PyIceberg) and returns its JSON.
pub fn pyiceberg(args: &[&str], env: &[(String, String)]) -> Option<Value> {
    interop_script("read_tables.py", args, env)
}

/// Runs the PyIceberg script `tests/interop/<name>` and returns its JSON.
pub fn interop_script(name: &str, args: &[&str], env: &[(String, String)]) -> Option<Value> {
    let script = format!("{}/../tests/interop/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "PyIceberg failed (pip install -r tests/requirements.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).ok()
}

/// An interop script's facts of a table without its `delete_files` (how
/// many delete files of each format the other engine wrote), which is what
/// medallion's reading is compared with.
pub fn without_delete_files(facts: &Value) -> Value {
    let mut facts = facts.clone();
    facts.as_object_mut().unwrap().remove("delete_files");
    facts
}

/// What PyIceberg read must match the raw data.
pub fn assert_pyiceberg_read(facts: &Value, expected: &Expected) {
    assert_eq!(facts["bronze.orders"]["rows"], expected.orders, "{facts}");
    assert_eq!(
        facts["bronze.customers"]["rows"], expected.customers,
        "{facts}"
    );
    assert_eq!(facts["silver.orders"]["rows"], expected.orders, "{facts}");
    assert_eq!(
        facts["silver.customers"]["rows"], expected.customers,
        "{facts}"
    );
    assert_eq!(facts["silver.dq_report"]["rows"], 5, "{facts}");
    assert_eq!(
        facts["gold.customer_metrics"]["rows"], expected.customers_with_orders,
        "{facts}"
    );
    assert_eq!(
        facts["gold.sales_dashboard"]["rows"], expected.month_segments,
        "{facts}"
    );
    assert_eq!(
        cents(
            facts["gold.customer_metrics"]["total_spend"]
                .as_str()
                .unwrap()
        ),
        expected.revenue_cents
    );
    assert_eq!(
        cents(facts["gold.sales_dashboard"]["revenue"].as_str().unwrap()),
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
