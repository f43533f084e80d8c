//! Silver and gold on a real datafusion-distributed cluster: two `medallion
//! worker` processes on 127.0.0.1 run the stages of the jobs' queries; the
//! `medallion run` that coordinates writes and commits.

use std::time::Duration;

use crate::support::{
    Lakehouse, SCALE, assert_demo_tables, edit, error_line, expected_from_raw, run_on_workers,
    statuses, worker_urls,
};

const SILVER_AND_GOLD: [&str; 5] = [
    "silver.customers",
    "silver.orders",
    "silver.dq_report",
    "gold.customer_metrics",
    "gold.sales_dashboard",
];

fn reference() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference").to_string()
}

/// Two worker addresses where nothing listens.
fn nobody() -> String {
    let urls: Vec<String> = (0..2)
        .map(|_| format!("http://127.0.0.1:{}", crate::support::free_port()))
        .collect();
    urls.join(",")
}

/// A table's rows as CSV in a fixed order, without the columns a run
/// stamps on silver's rows (its load time, job id and the raw file's path).
fn contents(lakehouse: &Lakehouse, table: &str) -> String {
    let stamped = ["silver.customers", "silver.orders"].contains(&table);
    let columns = if stamped {
        "* EXCEPT (loaded_at, source_file, job_id)"
    } else {
        "*"
    };
    lakehouse.ok(&[
        "sql",
        "--format",
        "csv",
        &format!("SELECT {columns} FROM {table} ORDER BY 1, 2, 3"),
    ])
}

#[test]
fn silver_and_gold_on_two_workers_hold_exactly_what_a_local_run_holds() {
    let local = Lakehouse::new();
    local.ok(&["demo", "--scale", SCALE]);

    let cluster = Lakehouse::new();
    let workers = [cluster.worker(), cluster.worker()];
    cluster.ok(&["generate", "--scale", SCALE]);
    let urls = worker_urls(&[&workers[0], &workers[1]]);
    let metrics = cluster.path().join("medallion.prom");
    let reference = reference();
    let mut run = run_on_workers(&reference, "distributed-1", &urls);
    run.extend(["--metrics-file", metrics.to_str().unwrap()]);
    let report = cluster.report(&run);
    for (table, status) in statuses(&report) {
        assert_eq!(status, "committed", "{table} in {report}");
    }
    assert_demo_tables(&cluster, &expected_from_raw(&cluster));
    // The report says what each job sent over the network; bronze ran here.
    for job in report["jobs"].as_array().unwrap() {
        let shuffled = job["bytes_shuffled"].as_u64();
        if job["table"].as_str().unwrap().starts_with("gold.") {
            assert!(shuffled.is_some_and(|bytes| bytes > 0), "{job}");
        } else if job["table"].as_str().unwrap().starts_with("bronze.") {
            assert_eq!(shuffled, None, "{job}");
        }
    }
    // And so do the metrics an operator watches.
    let text = std::fs::read_to_string(&metrics).unwrap();
    let shuffled = text
        .lines()
        .find(|l| l.starts_with("medallion_shuffled_bytes_total{job=\"gold_sales_dashboard\""))
        .unwrap_or_else(|| panic!("no shuffle metric of gold_sales_dashboard:\n{text}"));
    let bytes: f64 = shuffled.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(bytes > 0.0, "{shuffled}");
    for table in SILVER_AND_GOLD {
        assert_eq!(
            contents(&cluster, table),
            contents(&local, table),
            "{table}"
        );
    }

    // The workers wrote the data files themselves, silver's merges too.
    let logs: String = workers.iter().map(|w| w.log()).collect();
    let wrote = |table: &str| {
        logs.lines()
            .any(|l| l.contains("wrote data files") && l.contains(&format!("table={table}")))
    };
    for table in SILVER_AND_GOLD {
        assert!(wrote(table), "no worker wrote {table}:\n{logs}");
    }

    // Both workers ran tasks, and the tables travelled to them as Iceberg
    // scans (deletes, field ids and all), not as bare Parquet scans.
    for worker in &workers {
        let log = worker.log();
        assert!(
            log.contains("running a task"),
            "a worker ran nothing:\n{log}"
        );
        assert!(
            log.contains("IcebergScanExec"),
            "no table scan reached a worker:\n{log}"
        );
        assert!(
            !log.contains("DataSourceExec,") && !log.ends_with("DataSourceExec"),
            "{log}"
        );
    }
}

#[test]
fn rows_deleted_by_position_deletes_stay_deleted_on_the_workers() {
    let lakehouse = Lakehouse::new();
    lakehouse.ok(&["demo", "--scale", SCALE]);
    // Merge-on-read: silver.orders keeps its data files and gains position
    // deletes, which a worker must apply as this process does.
    lakehouse.ok(&[
        "delete",
        "silver.orders",
        "--where",
        "order_key % 7 = 0",
        "--write-mode",
        "merge-on-read",
    ]);
    let left = lakehouse.rows("silver.orders");
    let gold = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference/gold");
    lakehouse.ok(&["run", gold, "--job-id", "local-after-delete"]);
    let local = [
        contents(&lakehouse, "gold.customer_metrics"),
        contents(&lakehouse, "gold.sales_dashboard"),
    ];

    let workers = [lakehouse.worker(), lakehouse.worker()];
    let urls = worker_urls(&[&workers[0], &workers[1]]);
    lakehouse.ok(&run_on_workers(gold, "distributed-after-delete", &urls));
    assert_eq!(
        lakehouse.scalar("SELECT SUM(order_count) FROM gold.customer_metrics"),
        left.to_string()
    );
    assert_eq!(contents(&lakehouse, "gold.customer_metrics"), local[0]);
    assert_eq!(contents(&lakehouse, "gold.sales_dashboard"), local[1]);
}

#[test]
fn a_worker_killed_mid_job_commits_nothing_and_the_same_job_id_then_loads_exactly() {
    let lakehouse = Lakehouse::new();
    lakehouse.ok(&["generate", "--scale", SCALE]);
    let bronze = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference/bronze");
    lakehouse.ok(&["run", bronze, "--job-id", "load-1"]);
    let before = lakehouse.snapshots();

    let mut doomed = lakehouse.worker();
    let healthy = lakehouse.worker();
    let urls = worker_urls(&[&doomed, &healthy]);
    let reference = reference();
    let mut run = run_on_workers(&reference, "load-1", &urls);
    run.push("--json");
    let coordinator = lakehouse.spawn(&run);
    // The first task it is sent: the job is under way.
    doomed
        .tasks
        .recv_timeout(Duration::from_secs(120))
        .expect("the worker was sent a task");
    doomed.kill();
    let out = coordinator.wait_with_output().unwrap();

    if out.status.success() {
        // The engine ran the lost tasks elsewhere: the run is whole.
        assert_demo_tables(&lakehouse, &expected_from_raw(&lakehouse));
    } else {
        let error = error_line(&out);
        assert!(error.contains("ran distributed, on the workers"), "{error}");
        assert!(error.contains("same job id"), "{error}");
        // The job that failed committed nothing; those before it stay.
        let after = lakehouse.snapshots();
        for (table, snapshot) in &before {
            assert_eq!(after.get(table), Some(snapshot), "{table}");
        }
    }
    let replacement = lakehouse.worker();
    let urls = worker_urls(&[&healthy, &replacement]);
    lakehouse.ok(&run_on_workers(&reference, "load-1", &urls));
    assert_demo_tables(&lakehouse, &expected_from_raw(&lakehouse));
}

#[test]
fn a_distributed_job_without_workers_says_how_to_name_them_and_commits_nothing() {
    let lakehouse = Lakehouse::new();
    lakehouse.ok(&["demo", "--scale", SCALE]);
    let before = lakehouse.snapshots();
    let gold = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference/gold");
    let error = lakehouse.fails(&["run", gold, "--job-id", "g-2", "--execution", "distributed"]);
    assert!(error.contains("--workers"), "{error}");
    // Workers that are not there: the job fails naming one, commits nothing.
    let nobody = nobody();
    let error = lakehouse.fails(&run_on_workers(gold, "g-2", &nobody));
    assert!(
        error.contains("Error connecting to Distributed DataFusion worker"),
        "{error}"
    );
    assert!(error.contains("re-run it with the same job id"), "{error}");
    assert_eq!(lakehouse.snapshots(), before);
}

#[test]
fn only_jobs_that_read_tables_run_distributed_and_validate_says_where_they_do() {
    let lakehouse = Lakehouse::new();
    let pipeline = lakehouse.pipeline_copy();
    let distributed = "execution: { mode: distributed }\ntarget:";
    let bronze = pipeline.join("bronze/orders.yaml");
    edit(&bronze, "\ntarget:", &format!("\n{distributed}"));
    let error = lakehouse.fails(&["validate", bronze.to_str().unwrap()]);
    assert!(
        error.contains("reads raw files") && error.contains("execution.shards"),
        "{error}"
    );

    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../jobs/reference/bronze/orders.yaml"
        ),
        &bronze,
    )
    .unwrap();
    let gold = pipeline.join("gold/sales_dashboard.yaml");
    edit(&gold, "\ntarget:", &format!("\n{distributed}"));
    let validated = lakehouse.ok(&["validate", pipeline.to_str().unwrap()]);
    assert!(
        validated.contains("runs its query on the workers"),
        "{validated}"
    );

    // Declared in the spec, the job needs workers even without --execution.
    lakehouse.ok(&["demo", "--scale", SCALE]);
    let error = lakehouse.fails(&["run", gold.to_str().unwrap(), "--job-id", "g-2"]);
    assert!(error.contains("no workers"), "{error}");
    // `--execution local` wins over the spec.
    let report = lakehouse.report(&[
        "run",
        gold.to_str().unwrap(),
        "--job-id",
        "g-2",
        "--execution",
        "local",
    ]);
    assert_eq!(
        statuses(&report)["gold.sales_dashboard"],
        "committed",
        "{report}"
    );
}

#[test]
fn explain_distributed_shows_stages_tasks_shuffles_and_where_files_are_written() {
    let lakehouse = Lakehouse::new();
    lakehouse.ok(&["demo", "--scale", SCALE]);
    let gold = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference/gold");
    let nobody = nobody();
    let only = ["--job", "gold_sales_dashboard"];
    let plan = lakehouse.ok(&[
        &["explain", gold, "--distributed", "--workers", &nobody][..],
        &only[..],
    ]
    .concat());
    assert!(plan.contains("on the workers"), "{plan}");
    assert!(plan.contains("Stage"), "{plan}");
    assert!(plan.contains("NetworkShuffleExec"), "{plan}");
    assert!(
        plan.contains("IcebergScanExec: table=silver.orders"),
        "{plan}"
    );
    assert!(
        plan.contains("write the data files of gold.sales_dashboard"),
        "{plan}"
    );
    // Silver's merges have read every bronze row: nothing new to split.
    let silver = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference/silver");
    let merge = lakehouse.ok(&[
        "explain",
        silver,
        "--distributed",
        "--workers",
        &nobody,
        "--job",
        "silver_orders",
    ]);
    assert!(
        merge.contains("Too small to split among the workers"),
        "{merge}"
    );
    // Before silver.orders' first run it reads all of bronze.orders, and
    // the workers write the merge's new rows. Its dedup looks up repeated
    // keys while it is planned: on workers.
    let first = Lakehouse::new();
    first.ok(&["generate", "--scale", SCALE]);
    let bronze = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference/bronze");
    first.ok(&["run", bronze, "--job-id", "load-1"]);
    first.ok(&[
        "run",
        silver,
        "--job-id",
        "load-1",
        "--job",
        "silver_customers",
    ]);
    let workers = [first.worker(), first.worker()];
    let urls = worker_urls(&[&workers[0], &workers[1]]);
    let merge = first.ok(&[
        "explain",
        silver,
        "--distributed",
        "--workers",
        &urls,
        "--job",
        "silver_orders",
    ]);
    assert!(
        merge.contains("write the data files of silver.orders"),
        "{merge}"
    );

    let local = lakehouse.ok(&[&["explain", gold][..], &only[..]].concat());
    assert!(local.contains("in this process"), "{local}");
    assert!(
        !local.contains("Stage") && !local.contains("IcebergScanExec"),
        "{local}"
    );
    assert!(local.contains("AggregateExec"), "{local}");
}
