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
