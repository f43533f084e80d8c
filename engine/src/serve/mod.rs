//! `medallion serve`: the upload API (the Datasource API of the stack
//! medallion replaces). One process: an upload is streamed into the raw
//! store, announced as `file-uploaded`, ingested with the code of
//! `medallion ingest` (which announces `raw-data-ready`), and answered
//! with its upload id, objects and row counts. `/metrics` serves the
//! process's Prometheus series.
//!
//! - `auth.rs`: bearer JWTs against the identity provider's JWKS.
//! - `receive.rs` and `sniff.rs`: the body into the store, checked.
//! - `upload.rs`: the upload and status handlers.
//! - `routes.rs`: the router, health, readiness, OpenAPI, metrics.
//! - `answer.rs`: errors as JSON answers with the right status.

mod answer;
mod auth;
mod receive;
mod routes;
mod sniff;
mod upload;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use medallion_jobs::Pipeline;

pub use self::auth::Authenticator;
use crate::engine::Engine;
use crate::events::EventSink;
use crate::ingest::RawRoot;
use crate::metrics::Registry;

/// How the server is reached and guarded.
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// `None` accepts every request: only for a laptop.
    pub auth: Option<Authenticator>,
    pub max_upload_bytes: u64,
}

/// What every request shares.
pub struct Server {
    engine: Engine,
    pipeline: Pipeline,
    root: RawRoot,
    auth: Option<Authenticator>,
    max_upload_bytes: u64,
    events: Option<Arc<dyn EventSink>>,
    metrics: Registry,
}

/// Serves until SIGTERM or SIGINT, then lets requests in flight finish.
/// `listening` hears the bound address (port 0 picks one).
pub async fn serve(
    engine: Engine,
    pipeline: Pipeline,
    options: ServeOptions,
    listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    let root = RawRoot::open(&engine.session(), &engine.config.raw_root)?;
    let events = crate::events::sink(&engine.config)?;
    let server = Arc::new(Server {
        engine,
        pipeline,
        root,
        auth: options.auth,
        max_upload_bytes: options.max_upload_bytes,
        events,
        metrics: Registry::default(),
    });
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}; is the port taken?", options.listen))?;
    listening(listener.local_addr()?);
    axum::serve(listener, routes::router(server))
        .with_graceful_shutdown(stopped())
        .await
        .context("the server stopped")
}

/// Completes on SIGTERM or SIGINT: the end of a long-running process.
pub(crate) async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("stopping: requests in flight finish first");
}
