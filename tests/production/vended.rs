//! Medallion as the README's production setup runs it: its own S3 keys
//! work on the `raw` bucket only, and every table's files are read and
//! written with the credentials the catalog vends for that table (real STS
//! credentials from SeaweedFS, scoped to the table's location). And a
//! catalog whose authorization refuses one table: only what reads that
//! table fails.

use std::sync::atomic::Ordering;

use crate::backend::Backend;
use crate::proxy::{Faults, Proxy};
use crate::support::{
    Lakehouse, SCALE, TABLES, assert_demo_tables, error_line, expected_from_raw, statuses,
};
use crate::vending::Sts;

/// Runs the CLI off the async runtime that serves the proxy.
async fn run(lakehouse: &Lakehouse, args: &[&str]) -> std::process::Output {
    tokio::task::block_in_place(|| lakehouse.medallion(args))
}

async fn ok(lakehouse: &Lakehouse, args: &[&str]) -> String {
    let out = run(lakehouse, args).await;
    assert!(
        out.status.success(),
        "medallion {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

async fn fails(lakehouse: &Lakehouse, args: &[&str]) -> String {
    let out = run(lakehouse, args).await;
    assert!(
        !out.status.success(),
        "medallion {args:?} should fail: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    error_line(&out)
}

/// A lakehouse whose S3 keys (`keys`: access key and secret) are the only
/// ones it has, asking the catalog at `catalog_uri` to vend credentials.
fn lakehouse_with_keys(
    backend: &Backend,
    catalog_uri: &str,
    keys: Option<(String, String)>,
    config_dir: &tempfile::TempDir,
) -> Lakehouse {
    let config = config_dir.path().join("medallion.yaml");
    std::fs::write(
        &config,
        format!("catalog:\n  type: rest\n  uri: {catalog_uri}\n  vended_credentials: true\n"),
    )
    .unwrap();
    let mut env = backend.env();
    env.retain(|(k, _)| k != "AWS_ACCESS_KEY_ID" && k != "AWS_SECRET_ACCESS_KEY");
    // Empty values also hide keys this test process may have inherited.
    let (key, secret) = keys.unwrap_or_default();
    env.push(("AWS_ACCESS_KEY_ID".into(), key));
    env.push(("AWS_SECRET_ACCESS_KEY".into(), secret));
    let mut args = vec!["--config".to_string(), config.display().to_string()];
    args.extend(backend.args(catalog_uri, &Backend::raw_prefix()));
    Lakehouse::with(args, env)
}

fn raw_only_keys() -> Option<(String, String)> {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    Some((
        var("MEDALLION_TEST_S3_RAW_ACCESS_KEY"),
        var("MEDALLION_TEST_S3_RAW_SECRET_KEY"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_keys_for_raw_only_every_command_reads_and_writes_tables_with_vended_credentials() {
    let backend = Backend::seaweedfs();
    let proxy = Proxy::start(
        &backend.catalog_uri,
        Faults {
            vend: Some(Sts::seaweedfs()),
            ..Faults::default()
        },
    )
    .await;
    backend.lakehouse(); // an empty catalog
    let config = tempfile::tempdir().unwrap();
    let lakehouse = lakehouse_with_keys(&backend, &proxy.uri, raw_only_keys(), &config);

    let out = ok(&lakehouse, &["demo", "--scale", SCALE, "--json"]).await;
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let status = statuses(&report);
    for table in TABLES {
        assert_eq!(status[table], "committed", "{table}: {report}");
    }
    let expected = expected_from_raw(&lakehouse);
    tokio::task::block_in_place(|| assert_demo_tables(&lakehouse, &expected));

    let odd = tokio::task::block_in_place(|| {
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.orders WHERE order_key % 2 <> 0")
    });
    let deleted = ok(
        &lakehouse,
        &["delete", "bronze.orders", "--where", "order_key % 2 = 0"],
    )
    .await;
    assert!(deleted.contains("deleted"), "{deleted}");
    let compacted = ok(&lakehouse, &["compact", "bronze.orders"]).await;
    assert!(!compacted.is_empty());
    ok(
        &lakehouse,
        &["expire-snapshots", "bronze.orders", "--older-than", "0s"],
    )
    .await;
    let left = tokio::task::block_in_place(|| lakehouse.rows("bronze.orders"));
    assert_eq!(left.to_string(), odd);
    assert!(proxy.counters.vended.load(Ordering::Relaxed) >= TABLES.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_vended_the_error_names_the_bucket_without_credentials() {
    let backend = Backend::seaweedfs();
    // No vending: the raw-only keys are refused on the warehouse.
    let proxy = Proxy::start(&backend.catalog_uri, Faults::default()).await;
    backend.lakehouse();
    let config = tempfile::tempdir().unwrap();
    let raw_only = lakehouse_with_keys(&backend, &proxy.uri, raw_only_keys(), &config);
    let error = fails(&raw_only, &["demo", "--scale", SCALE]).await;
    assert!(
        error.contains("s3://warehouse/") && error.contains("403"),
        "{error}"
    );

    // No keys at all: a clear sentence, not the EC2 instance-metadata address.
    let no_keys = lakehouse_with_keys(&backend, &proxy.uri, None, &config);
    let error = fails(&no_keys, &["demo", "--scale", SCALE]).await;
    assert!(
        error.contains("no S3 credentials for bucket `raw`")
            && error.contains("AWS_ACCESS_KEY_ID")
            && error.contains("vended_credentials")
            && error.contains("s3.instance_metadata")
            && !error.contains("169.254.169.254"),
        "{error}"
    );
    assert_eq!(proxy.counters.vended.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_the_catalog_refuses_fails_only_what_reads_it() {
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let before = lakehouse.snapshots();
    let proxy = Proxy::start(
        &backend.catalog_uri,
        Faults {
            refuse_table: Some("bronze.customers".into()),
            ..Faults::default()
        },
    )
    .await;
    let refusing = Lakehouse::with(
        backend.args(&proxy.uri, &Backend::raw_prefix()),
        backend.env(),
    );

    let count = ok(
        &refusing,
        &[
            "sql",
            "--format",
            "csv",
            "SELECT COUNT(*) AS n FROM silver.orders",
        ],
    )
    .await;
    assert!(count.starts_with("n\n"), "{count}");
    let error = fails(&refusing, &["sql", "SELECT COUNT(*) FROM bronze.customers"]).await;
    assert!(
        error.contains("refused to let this client load table bronze.customers (403"),
        "{error}"
    );

    let pipeline = lakehouse.pipeline_copy();
    let pipeline = pipeline.to_str().unwrap();
    let error = fails(
        &refusing,
        &[
            "run",
            pipeline,
            "--job",
            "silver_customers",
            "--job-id",
            "refused",
        ],
    )
    .await;
    assert!(
        error.contains("silver_customers") && error.contains("load table bronze.customers (403"),
        "{error}"
    );
    assert!(proxy.counters.refused_403.load(Ordering::Relaxed) >= 2);
    assert_eq!(lakehouse.snapshots(), before, "nothing was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vended_credentials_about_to_expire_are_renewed_before_they_are_used() {
    let backend = Backend::seaweedfs();
    let sts = Sts {
        first_keys_about_to_expire: true,
        ..Sts::seaweedfs()
    };
    let about_to_expire = sts.about_to_expire.clone();
    let proxy = Proxy::start(
        &backend.catalog_uri,
        Faults {
            vend: Some(sts),
            ..Faults::default()
        },
    )
    .await;
    backend.lakehouse();
    let config = tempfile::tempdir().unwrap();
    let lakehouse = lakehouse_with_keys(&backend, &proxy.uri, raw_only_keys(), &config);
    let out = ok(&lakehouse, &["demo", "--scale", SCALE, "--json"]).await;
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        statuses(&report).values().all(|s| s == "committed"),
        "{report}"
    );
    assert!(
        about_to_expire.load(Ordering::Relaxed) >= TABLES.len() as u64,
        "every table's first keys were about to expire"
    );
}
