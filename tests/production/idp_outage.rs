//! A run whose identity provider (a real OpenID Connect server) goes down:
//! for a few seconds across a token refresh the run goes on with the token
//! it has; for longer than a token lives it fails with a sentence naming
//! the endpoint, the client and how long it tried, and a re-run with the
//! same job id completes what it left.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::backend::Backend;
use crate::introspection::Introspection;
use crate::oidc::{self, Oidc};
use crate::proxy::{Faults, Proxy};
use crate::support::{
    Lakehouse, SCALE, TABLES, assert_demo_tables, error_line, expected_from_raw, statuses,
};

const REFERENCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../jobs/reference");

/// A lakehouse whose catalog (through the proxy) accepts only tokens of `idp`.
async fn lakehouse_behind(backend: &Backend, idp: &Oidc) -> (Arc<Lakehouse>, Arc<Introspection>) {
    let introspection = Arc::new(
        Introspection::new(
            idp.introspection_endpoint(),
            oidc::CATALOG_ID,
            oidc::CATALOG_SECRET,
            &backend.catalog_uri,
            (&backend.client_id, &backend.client_secret),
        )
        .await,
    );
    let proxy = Proxy::start(
        &backend.catalog_uri,
        Faults {
            introspect: Some(introspection.clone()),
            // About 100 catalog requests: a run of ten seconds or more.
            latency: Some(Duration::from_millis(120)),
            ..Faults::default()
        },
    )
    .await;
    tokio::task::block_in_place(|| backend.drop_all_tables());
    let mut args = backend.args(&proxy.uri, &Backend::raw_prefix());
    args.extend(["--catalog-oauth2-server-uri".into(), idp.token_endpoint()]);
    let mut env = backend.env();
    env.retain(|(k, _)| k != "MEDALLION_CATALOG_CREDENTIAL");
    env.push((
        "MEDALLION_CATALOG_CREDENTIAL".into(),
        format!("{}:{}", oidc::CLIENT_ID, oidc::CLIENT_SECRET),
    ));
    let lakehouse = Arc::new(Lakehouse::with(args, env));
    tokio::task::block_in_place(|| lakehouse.ok(&["generate", "--scale", SCALE]));
    // The proxy lives as long as the runtime; the test holds what it needs.
    std::mem::forget(proxy);
    (lakehouse, introspection)
}

/// Starts `run <reference> --job-id <job_id>` off the runtime.
fn start_run(
    lakehouse: &Arc<Lakehouse>,
    job_id: &'static str,
) -> tokio::task::JoinHandle<std::process::Output> {
    let lakehouse = lakehouse.clone();
    tokio::task::spawn_blocking(move || {
        lakehouse.medallion(&["run", REFERENCE, "--job-id", job_id])
    })
}

/// Waits until the run's first token reached the catalog.
async fn first_token(introspection: &Introspection) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(seen) = introspection.first_seen() {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "the run never reached the catalog"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_provider_down_for_seconds_across_a_refresh_does_not_fail_the_run() {
    let life = Duration::from_secs(6);
    let Some(mut idp) = Oidc::start(0, life) else {
        return;
    };
    let backend = Backend::seaweedfs();
    let (lakehouse, introspection) = lakehouse_behind(&backend, &idp).await;
    let started = Instant::now();
    let run = start_run(&lakehouse, "idp-short");

    // Down from 3.5 s to 6 s of the first token's life: across the refresh
    // due at 4.8 s, back just before the token expires.
    let issued = first_token(&introspection).await;
    tokio::time::sleep_until((issued + Duration::from_millis(3500)).into()).await;
    idp.stop();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    idp.resume();
    let down = stopped.elapsed();

    let out = run.await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprintln!(
        "run of {:.1} s survived an outage of {:.1} s; tokens seen {}",
        started.elapsed().as_secs_f64(),
        down.as_secs_f64(),
        introspection.tokens_seen.load(Ordering::Relaxed)
    );
    assert!(
        stderr.contains("the current one stays in use until it expires"),
        "the outage never met a refresh (the run was too short?): {stderr}"
    );
    assert!(
        introspection.tokens_seen.load(Ordering::Relaxed) >= 2,
        "a new token after the outage"
    );
    assert!(!stderr.contains(oidc::CLIENT_SECRET), "the secret leaked");
    let expected = expected_from_raw(&lakehouse);
    tokio::task::block_in_place(|| assert_demo_tables(&lakehouse, &expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_provider_down_longer_than_a_token_lives_fails_the_run_cleanly_and_a_rerun_completes()
 {
    let life = Duration::from_secs(4);
    let Some(mut idp) = Oidc::start(1, life) else {
        return;
    };
    let backend = Backend::seaweedfs();
    let (lakehouse, introspection) = lakehouse_behind(&backend, &idp).await;
    let run = start_run(&lakehouse, "idp-long");

    // Down from 2.5 s of the first token's life until the run has ended.
    let issued = first_token(&introspection).await;
    tokio::time::sleep_until((issued + Duration::from_millis(2500)).into()).await;
    idp.stop();
    let stopped = Instant::now();
    let out = run.await.unwrap();
    let failed_after = stopped.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the run outlived the token: {stderr}"
    );
    let error = error_line(&out);
    eprintln!(
        "failed {:.1} s into the outage: {error}",
        failed_after.as_secs_f64()
    );
    assert!(
        error.contains("cannot get a catalog token")
            && error.contains(&idp.token_endpoint())
            && error.contains(&format!("client `{}`", oidc::CLIENT_ID))
            && error.contains(" s ("),
        "{error}"
    );
    assert!(!stderr.contains(oidc::CLIENT_SECRET), "the secret leaked");
    // It held on past the token's life, then gave up.
    assert!(
        failed_after > Duration::from_millis(1500),
        "{failed_after:?}"
    );

    idp.resume();
    let rerun = tokio::task::block_in_place(|| {
        lakehouse.report(&["run", REFERENCE, "--job-id", "idp-long"])
    });
    let statuses = statuses(&rerun);
    assert_eq!(statuses.len(), TABLES.len(), "{rerun}");
    assert!(
        statuses
            .values()
            .all(|s| s == "committed" || s == "already_committed"),
        "{rerun}"
    );
    // What the failed run committed is whole: with the rest, every table
    // holds exactly what the raw data gives.
    let expected = expected_from_raw(&lakehouse);
    tokio::task::block_in_place(|| assert_demo_tables(&lakehouse, &expected));
}
