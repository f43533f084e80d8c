//! Expiring tokens and a failing catalog end in success after retries or
//! in a clear error, never in a half-visible table.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::backend::Backend;
use crate::proxy::{Faults, Proxy};
use crate::support::{
    Lakehouse, SCALE, TABLES, assert_demo_tables, error_line, expected_from_raw, statuses,
};
use crate::tcp_proxy::{TcpFaults, TcpProxy};

/// Runs the demo, which must succeed, and checks every table against the raw data.
async fn demo_builds_every_table(lakehouse: &Lakehouse) {
    let out = run(lakehouse, &["demo", "--scale", SCALE]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = expected_from_raw(lakehouse);
    tokio::task::block_in_place(|| assert_demo_tables(lakehouse, &expected));
}

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
    demo_builds_every_table(&lakehouse).await;
    assert!(proxy.counters.injected_503.load(Ordering::Relaxed) >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_that_keeps_failing_commits_leaves_every_table_as_it_was() {
    let backend = Backend::seaweedfs();
    // A first load, straight to the catalog.
    let lakehouse = backend.lakehouse();
    demo_builds_every_table(&lakehouse).await;
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
    assert!(!out.status.success());
    let error = error_line(&out);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_s3_that_drops_connections_is_retried_and_the_run_succeeds() {
    let backend = Backend::seaweedfs();
    let s3 = TcpProxy::start(
        &backend.s3_endpoint,
        TcpFaults {
            delay: Duration::from_millis(30),
            drop_every: Some(3),
        },
    )
    .await;
    backend.lakehouse(); // empties the catalog
    let lakehouse = Lakehouse::with(
        backend.args_via(&backend.catalog_uri, &s3.endpoint, &Backend::raw_prefix()),
        backend.env(),
    );
    demo_builds_every_table(&lakehouse).await;
    assert!(
        s3.dropped.load(Ordering::Relaxed) >= 1,
        "no connection was dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_stopping_mid_run_fails_clearly_and_no_table_is_half_visible() {
    let backend = Backend::seaweedfs();
    let lakehouse = backend.lakehouse();
    demo_builds_every_table(&lakehouse).await;
    let rows_before: Vec<u64> =
        tokio::task::block_in_place(|| TABLES.iter().map(|t| lakehouse.rows(t)).collect());

    // A second load whose S3 goes away a moment after the run starts.
    let s3 = TcpProxy::start(&backend.s3_endpoint, TcpFaults::default()).await;
    let mut env = backend.env();
    env.push(("MEDALLION_S3_RETRY_TIMEOUT_SECS".into(), "3".into()));
    let second = Lakehouse::with(
        backend.args_via(&backend.catalog_uri, &s3.endpoint, &Backend::raw_prefix()),
        env,
    );
    let run = tokio::task::spawn_blocking(move || {
        let out = second.medallion(&["demo", "--scale", SCALE, "--job-id", "load-2"]);
        (second, out)
    });
    while s3.connections.load(Ordering::Relaxed) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s3.stop_serving();
    let (_second, out) = run.await.unwrap();
    assert!(!out.status.success(), "the run should fail once S3 is gone");
    let error = error_line(&out);
    assert!(
        error.contains("s3://") || error.contains(&s3.endpoint),
        "names what it could not reach: {error}"
    );

    // Every table reads completely (no snapshot points at a missing file);
    // bronze holds the first load, or both loads whole.
    for (table, before) in TABLES.iter().zip(rows_before) {
        let rows = tokio::task::block_in_place(|| lakehouse.rows(table));
        if table.starts_with("bronze") {
            assert!(
                rows == before || rows == 2 * before,
                "{table}: {rows} rows after, {before} before"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_catalog_rejects_is_a_401_that_names_the_catalog_once() {
    let backend = Backend::seaweedfs();
    // The proxy accepts only the tokens it issued itself.
    let proxy = Proxy::start(
        &backend.catalog_uri,
        Faults {
            token_lifetime: Some(Duration::from_secs(3600)),
            ..Faults::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "not-a-token-the-catalog-issued").unwrap();
    let mut env = backend.env();
    env.retain(|(k, _)| k != "MEDALLION_CATALOG_CREDENTIAL");
    env.push((
        "MEDALLION_CATALOG_TOKEN_FILE".into(),
        token_file.display().to_string(),
    ));
    let lakehouse = Lakehouse::with(backend.args(&proxy.uri, "unused"), env);
    let out = run(&lakehouse, &["tables"]).await;
    assert!(!out.status.success());
    let error = error_line(&out);
    assert!(
        error.contains("401") && error.contains("read the configuration of the catalog"),
        "{error}"
    );
    assert_eq!(error.matches(&proxy.uri).count(), 1, "{error}");
}
