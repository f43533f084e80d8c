//! Batch metrics through a real Pushgateway and a real Prometheus: a demo
//! run pushes what each job wrote, Prometheus scrapes it, and its query
//! API answers with the run report's numbers; a failed run sets the
//! failure series and keeps the last success.

use std::collections::HashMap;

use crate::support::{Lakehouse, Sample, edit, prometheus_scraping, pushgateway, query_until};

/// The scale of these runs: the numbers matter, not their size.
const SCALE: &str = "0.01";

/// `table -> value` of samples with one series per table.
fn by_table(samples: &[Sample]) -> HashMap<String, f64> {
    samples
        .iter()
        .map(|s| (s.label("table").to_string(), s.value))
        .collect()
}

#[test]
fn a_demo_run_pushes_the_rows_each_table_got_and_prometheus_reports_them_as_the_run_did() {
    let gateway = pushgateway();
    let prometheus = prometheus_scraping(&gateway);
    let lakehouse = Lakehouse::new();
    let report = lakehouse.report(&["demo", "--scale", SCALE, "--metrics-push-url", &gateway.url]);
    let jobs = report["jobs"].as_array().unwrap();
    let expected: HashMap<String, f64> = jobs
        .iter()
        .map(|j| {
            let table = j["table"].as_str().unwrap().to_string();
            (table, j["rows_written"].as_u64().unwrap() as f64)
        })
        .collect();
    assert_eq!(expected.len(), 7, "{report}");

    let written = query_until(&prometheus, "medallion_rows_written_total", |s| {
        s.len() == expected.len()
    });
    assert_eq!(by_table(&written), expected);
    for sample in &written {
        // The group is the job, so the job label survives the Pushgateway.
        let job = jobs
            .iter()
            .find(|j| j["table"] == sample.label("table"))
            .unwrap();
        assert_eq!(sample.label("job"), job["job"].as_str().unwrap());
        assert_eq!(sample.label("instance"), "reference");
        assert_eq!(
            sample.label("layer"),
            sample.label("table").split('.').next().unwrap()
        );
    }
    let committed = query_until(
        &prometheus,
        "medallion_job_runs_total{status=\"committed\"}",
        |s| s.len() == 7,
    );
    assert!(committed.iter().all(|s| s.value == 1.0), "{committed:#?}");
    let dq = query_until(&prometheus, "medallion_dq_rejected_rows", |s| !s.is_empty());
    assert!(
        dq.iter()
            .all(|s| s.label("job") == "silver_dq_report" && !s.label("check").is_empty()),
        "{dq:#?}"
    );
}

#[test]
fn a_failed_run_sets_the_failure_series_and_keeps_the_last_success_of_its_job() {
    let gateway = pushgateway();
    let prometheus = prometheus_scraping(&gateway);
    let lakehouse = Lakehouse::new();
    let push = ["--metrics-push-url", gateway.url.as_str()];
    lakehouse.report(&[&["demo", "--scale", SCALE][..], &push].concat());
    let success = "medallion_last_success_timestamp_seconds{job=\"gold_sales_dashboard\"}";
    let before = query_until(&prometheus, success, |s| s.len() == 1)[0].value;

    // Named as the demo's pipeline, so the run pushes to the same group.
    let pipeline = lakehouse.path().join("copy/reference");
    std::fs::create_dir(lakehouse.path().join("copy")).unwrap();
    std::fs::rename(lakehouse.pipeline_copy(), &pipeline).unwrap();
    edit(
        &pipeline.join("gold/sales_dashboard.sql"),
        "SELECT ",
        "SELECT no_such_column, ",
    );
    let path = pipeline.to_str().unwrap();
    let args = [&["run", path, "--job", "gold_sales_dashboard"][..], &push].concat();
    let error = lakehouse.fails(&args);
    assert!(error.contains("no_such_column"), "{error}");

    let failed = query_until(
        &prometheus,
        "medallion_job_runs_total{job=\"gold_sales_dashboard\",status=\"failed\"}",
        |s| s.len() == 1,
    );
    assert_eq!(failed[0].value, 1.0);
    assert_eq!(failed[0].label("instance"), "reference");
    // The push replaced the job's runs: no stale `committed` series stays.
    let runs = query_until(
        &prometheus,
        "medallion_job_runs_total{job=\"gold_sales_dashboard\"}",
        |s| s.len() == 1,
    );
    assert_eq!(runs[0].label("status"), "failed");
    // The failed run did not send a last success: the demo's stays.
    let after = query_until(&prometheus, success, |s| !s.is_empty());
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!(after[0].value, before);
}
