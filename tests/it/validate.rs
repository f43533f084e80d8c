use crate::support::{Lakehouse, edit};

#[test]
fn the_reference_pipeline_validates_without_data() {
    let lakehouse = Lakehouse::new();
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference");
    let out = lakehouse.ok(&["validate", reference]);
    assert!(out.contains("7 jobs valid"), "{out}");
    assert!(
        out.contains("gold_sales_dashboard") && out.contains("gold.sales_dashboard (5 columns)"),
        "{out}"
    );
    // Validation wrote nothing.
    assert!(lakehouse.ok(&["tables"]).contains("no tables yet"));
}

#[test]
fn validation_points_at_the_file_and_line() {
    let lakehouse = Lakehouse::new();
    let pipeline = lakehouse.pipeline_copy();
    let spec = pipeline.join("gold/sales_dashboard.yaml");
    let text = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(
        &spec,
        text.replace(
            "  mode: overwrite",
            "  mode: overwrite\n  partitioned: [order_month]",
        ),
    )
    .unwrap();
    let error = lakehouse.fails(&["validate", pipeline.to_str().unwrap()]);
    assert!(error.contains("sales_dashboard.yaml: line"), "{error}");
    assert!(error.contains("partitioned"), "{error}");

    edit(&spec, "\n  partitioned: [order_month]", "");
    edit(
        &pipeline.join("gold/customer_metrics.sql"),
        "MIN(order_date)",
        "MIN(order_day)",
    );
    let error = lakehouse.fails(&["validate", pipeline.to_str().unwrap()]);
    assert!(
        error.contains("customer_metrics.sql") && error.contains("order_day"),
        "{error}"
    );
}

/// A job whose output has a long, a date and a double, partitioned by `field`.
fn partitioned_job(field: &str) -> String {
    format!(
        "name: gold_x\n\
         steps:\n  - sql: SELECT 1 AS order_key, DATE '2024-01-01' AS order_date, 1.5 AS price\n\
         target:\n  table: gold.x\n  mode: overwrite\n  partition_by: [\"{field}\"]\n"
    )
}

#[test]
fn validate_names_a_missing_partition_column_and_the_columns_there_are() {
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec("x.yaml", &partitioned_job("day(order_day)"));
    let error = lakehouse.fails(&["validate", spec.to_str().unwrap()]);
    assert!(
        error.contains("x.yaml")
            && error.contains("gold_x")
            && error.contains("day(order_day)")
            && error.contains("order_key, order_date, price"),
        "{error}"
    );
}

#[test]
fn validate_refuses_a_partition_transform_that_does_not_fit_the_column_type() {
    let lakehouse = Lakehouse::new();
    for (field, column_type) in [
        ("month(order_key)", "long"),
        ("truncate(4, order_date)", "date"),
        ("bucket(8, price)", "double"),
    ] {
        let spec = lakehouse.spec("x.yaml", &partitioned_job(field));
        let error = lakehouse.fails(&["validate", spec.to_str().unwrap()]);
        assert!(
            error.contains("gold_x") && error.contains(field) && error.contains(column_type),
            "{field}: {error}"
        );
    }
}

#[test]
fn run_refuses_a_partition_transform_with_the_message_validate_gives() {
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec("x.yaml", &partitioned_job("month(order_key)"));
    let spec = spec.to_str().unwrap();
    let validated = lakehouse.fails(&["validate", spec]);
    let ran = lakehouse.fails(&["run", spec, "--job-id", "p-1"]);
    let reason = validated.trim_start_matches("error: ");
    assert!(ran.contains(reason), "run: {ran}\nvalidate: {validated}");
    assert!(lakehouse.ok(&["tables"]).contains("no tables yet"));
}

#[test]
fn check_json_is_json_and_names_the_step_that_fails() {
    let lakehouse = Lakehouse::new();
    let report: serde_json::Value =
        serde_json::from_str(&lakehouse.ok(&["--json", "check"])).expect("check --json is JSON");
    assert_eq!(report["ok"], true, "{report}");
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["catalog", "credentials", "raw storage"], "{report}");

    // Raw data under a plain file cannot be written: the report still is JSON.
    let blocker = lakehouse.path().join("not-a-folder");
    std::fs::write(&blocker, "").unwrap();
    let raw = blocker.join("raw");
    let out = lakehouse.medallion(&["--json", "--raw", raw.to_str().unwrap(), "check"]);
    assert!(!out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on failure");
    assert_eq!(report["ok"], false, "{report}");
    let failed: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ok"] == false)
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["raw storage"], "{report}");
}

#[test]
fn validate_says_which_readers_a_v3_table_needs_and_refuses_format_version_1() {
    let lakehouse = Lakehouse::new();
    let job = |version: u8| {
        format!(
            "name: gold_x\nsteps:\n  - sql: SELECT 1 AS id\n\
             target: {{ table: gold.x, mode: overwrite, format_version: {version} }}\n"
        )
    };
    let v3 = lakehouse.spec("v3.yaml", &job(3));
    let out = lakehouse.ok(&["validate", v3.to_str().unwrap()]);
    assert!(
        out.contains("note: target.format_version 3") && out.contains("PyIceberg 0.11"),
        "{out}"
    );
    let v2 = lakehouse.spec("v2.yaml", &job(2));
    let out = lakehouse.ok(&["validate", v2.to_str().unwrap()]);
    assert!(!out.contains("note:"), "{out}");
    let v1 = lakehouse.spec("v1.yaml", &job(1));
    let error = lakehouse.fails(&["validate", v1.to_str().unwrap()]);
    assert!(
        error.contains("`target.format_version: 1` cannot be written"),
        "{error}"
    );
}
