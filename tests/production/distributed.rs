//! Silver and gold on two `medallion worker` processes against SeaweedFS:
//! the workers read bronze's data files from S3 with their own
//! credentials and write the tables' data files there, the coordinating
//! `medallion run` commits through the REST catalog.

use crate::backend::Backend;
use crate::support::{
    SCALE, assert_demo_tables, expected_from_raw, run_on_workers, statuses, worker_urls,
};

#[test]
fn silver_and_gold_on_two_workers_read_s3_and_commit_through_the_rest_catalog() {
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    let workers = [lakehouse.worker(), lakehouse.worker()];
    lakehouse.ok(&["generate", "--scale", SCALE]);
    let reference = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference");
    let bronze = format!("{reference}/bronze");
    lakehouse.ok(&["run", &bronze, "--job-id", "load-1"]);

    let urls = worker_urls(&[&workers[0], &workers[1]]);
    let run = run_on_workers(reference, "load-1", &urls);
    let report = lakehouse.report(&run);
    let status = statuses(&report);
    for table in [
        "silver.customers",
        "silver.orders",
        "gold.customer_metrics",
        "gold.sales_dashboard",
    ] {
        assert_eq!(status[table], "committed", "{table}: {report}");
    }
    assert_demo_tables(&lakehouse, &expected_from_raw(&lakehouse));
    for worker in &workers {
        let task = worker.tasks.try_recv().expect("each worker ran tasks");
        assert!(task.contains("running a task"), "{task}");
        let log = worker.log();
        assert!(
            log.contains("IcebergScanExec"),
            "no table scan reached a worker:\n{log}"
        );
    }
    // The data files went to S3 from the workers, with their own keys:
    // silver's merge's new rows as gold's aggregates.
    let logs: String = workers.iter().map(|w| w.log()).collect();
    for table in ["silver.orders", "gold.customer_metrics"] {
        assert!(
            logs.lines()
                .any(|l| l.contains("wrote data files") && l.contains(&format!("table={table}"))),
            "no worker wrote {table}:\n{logs}"
        );
    }

    // The same job id again: every job already committed, on the cluster too.
    let before = lakehouse.snapshots();
    let again = lakehouse.report(&run);
    assert!(
        statuses(&again).values().all(|s| s == "already_committed"),
        "{again}"
    );
    assert_eq!(lakehouse.snapshots(), before);
}
