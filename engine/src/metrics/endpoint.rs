//! `/metrics` of a process that serves nothing else (`listen`): the
//! registry's series on a port of its own, for a Prometheus scrape.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::http::header;
use axum::routing::get;

use super::Registry;

/// Serves the `registries` (their names do not overlap) on `address` from
/// a task of its own; returns the bound address (port 0 picks one).
pub async fn serve_metrics(
    address: SocketAddr,
    registries: Vec<Arc<Registry>>,
) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot serve /metrics on {address}; is the port taken?"))?;
    let bound = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let text: String = registries.iter().map(|r| r.render()).collect();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("/metrics on {bound} stopped: {e}");
        }
    });
    Ok(bound)
}
