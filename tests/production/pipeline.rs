use crate::backend::Backend;
use crate::support::{
    SCALE, TABLES, assert_demo_tables, assert_pyiceberg_read, expected_from_raw, pyiceberg,
    statuses,
};

fn reference_pipeline_on(backend: &Backend) {
    let lakehouse = backend.lakehouse();
    let report = lakehouse.report(&["demo", "--scale", SCALE]);
    let status = statuses(&report);
    for table in TABLES {
        assert_eq!(
            status[table], "committed",
            "{table} on {}: {report}",
            backend.name
        );
    }
    // The raw files were generated in the local folder, then published to S3.
    let expected = expected_from_raw(&lakehouse);
    assert_demo_tables(&lakehouse, &expected);
    let source = lakehouse.scalar("SELECT MIN(source_file) FROM bronze.orders");
    assert!(
        source.starts_with("s3://raw/test-") && source.ends_with(".parquet"),
        "{source}"
    );

    // Another engine reads every table through the same catalog.
    let facts = pyiceberg(&["rest"], &backend.env()).expect("facts as JSON");
    assert_pyiceberg_read(&facts, &expected);

    // Same job id again: nothing changes.
    let before = lakehouse.snapshots();
    let again = lakehouse.report(&["demo", "--scale", SCALE]);
    assert!(
        statuses(&again).values().all(|s| s == "already_committed"),
        "{again}"
    );
    assert_eq!(lakehouse.snapshots(), before);
}

#[test]
fn the_reference_pipeline_runs_on_s3_through_the_rest_catalog_seaweedfs() {
    reference_pipeline_on(&Backend::seaweedfs());
}

#[test]
fn the_reference_pipeline_runs_on_s3_through_the_rest_catalog_lakekeeper() {
    if let Some(backend) = Backend::lakekeeper() {
        reference_pipeline_on(&backend);
    }
}
