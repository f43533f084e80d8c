//! Expiring tokens and a failing catalog end in success after retries or
//! in a clear error, never in a half-visible table.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::backend::Backend;
use crate::proxy::{Faults, Proxy};
use crate::support::{Lakehouse, SCALE, assert_demo_tables, expected_from_raw, statuses};

/// Runs the CLI off the async runtime that serves the proxy.
async fn run(lakehouse: &Lakehouse, args: &[&str]) -> std::process::Output {
    tokio::task::block_in_place(|| lakehouse.medallion(args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_during_the_run_is_refreshed_and_the_run_succeeds() {
    let backend = Backend::seaweedfs();
    let proxy = Proxy::start(
        &backend.catalog_uri,
        Faults {
            token_lifetime: Some(Duration::from_millis(700)),
            ..Faults::default()
        },
    )
    .await;
    let lakehouse = backend.lakehouse_via(&proxy.uri);
    let out = run(&lakehouse, &["demo", "--scale", SCALE, "--json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        statuses(&report).values().all(|s| s == "committed"),
        "{report}"
    );
    let refreshed = proxy.counters.tokens_issued.load(Ordering::Relaxed);
    let rejected = proxy.counters.rejected_401.load(Ordering::Relaxed);
    assert!(
        refreshed >= 2 && rejected >= 1,
        "tokens issued {refreshed}, 401s {rejected}: the run never needed a new token"
    );
    let expected = expected_from_raw(&lakehouse);
    tokio::task::block_in_place(|| assert_demo_tables(&lakehouse, &expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_errors_5xx_are_retried_and_the_run_succeeds() {
    let backend = Backend::seaweedfs();
    let proxy = Proxy::start(
        &backend.catalog_uri,
        Faults {
            fail_every: Some(4),
            ..Faults::default()
        },
    )
    .await;
    let lakehouse = backend.lakehouse_via(&proxy.uri);
    let out = run(&lakehouse, &["demo", "--scale", SCALE]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(proxy.counters.injected_503.load(Ordering::Relaxed) >= 5);
    let expected = expected_from_raw(&lakehouse);
    tokio::task::block_in_place(|| assert_demo_tables(&lakehouse, &expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_that_keeps_failing_commits_leaves_every_table_as_it_was() {
    let backend = Backend::seaweedfs();
    // A first load, straight to the catalog.
    let lakehouse = backend.lakehouse();
    assert!(
        run(&lakehouse, &["demo", "--scale", SCALE])
            .await
            .status
            .success()
    );
    let before = tokio::task::block_in_place(|| lakehouse.snapshots());

    // A second load through a catalog that fails every commit.
    let proxy = Proxy::start(
        &backend.catalog_uri,
        Faults {
            fail_commits: true,
            ..Faults::default()
        },
    )
    .await;
    let failing = Lakehouse::with(backend.args(&proxy.uri, "second-load"), backend.env());
    let out = run(&failing, &["demo", "--scale", SCALE, "--job-id", "load-2"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        error.contains("503") && error.contains("commit to bronze."),
        "{error}"
    );
    assert!(
        proxy.counters.injected_503.load(Ordering::Relaxed) >= 2,
        "commits were retried"
    );
    // Readers still see the first load everywhere.
    assert_eq!(
        tokio::task::block_in_place(|| lakehouse.snapshots()),
        before
    );
}
