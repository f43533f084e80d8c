//! The routes, and what every request passes through: the request count
//! and latency by route template (never the path itself: an upload id in
//! a label would grow without bound).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::Server;
use super::upload::{status, upload};
use crate::metrics::names::{HTTP_DURATION, HTTP_REQUESTS, OUTBOX_EVENTS};

const OPENAPI: &str = include_str!("openapi.json");
/// How long readiness waits for the store or the broker.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        // The upload's own limit applies, as it streams; axum's 2 MB
        // default would refuse a multipart form before it.
        .route(
            "/api/v1/upload",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/uploads/{id}", get(status))
        .route("/api/v1/health", get(health))
        .route("/api/v1/ready", get(ready))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(server.clone(), observed))
        .with_state(server)
}

async fn observed(State(server): State<Arc<Server>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("route", route.as_str()), ("method", method.as_str())];
    let seconds = started.elapsed().as_secs_f64();
    server.metrics.observe(&HTTP_DURATION, &labels, seconds);
    let labels = [labels[0], labels[1], ("status", status.as_str())];
    server.metrics.add(&HTTP_REQUESTS, &labels, 1.0);
    response
}

/// The process answers: for a liveness probe.
async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The raw store and the broker answer: for a readiness probe.
async fn ready(State(server): State<Arc<Server>>) -> (StatusCode, Json<Value>) {
    let storage = probe(async {
        let root = &server.root;
        root.store()
            .list_with_delimiter(Some(&root.path("_status")))
            .await?;
        Ok(())
    })
    .await;
    let broker = match &server.engine.config.events.brokers {
        Some(brokers) => {
            probe(crate::events::kafka::reachable(
                brokers.clone(),
                PROBE_TIMEOUT,
            ))
            .await
        }
        None => Ok("not configured".into()),
    };
    let ok = storage.is_ok() && broker.is_ok();
    let shown = |r: Result<String, String>| r.unwrap_or_else(|e| e);
    let body = json!({
        "status": if ok { "ready" } else { "not_ready" },
        "storage": shown(storage),
        "broker": shown(broker),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn probe(check: impl Future<Output = anyhow::Result<()>>) -> Result<String, String> {
    match tokio::time::timeout(PROBE_TIMEOUT, check).await {
        Ok(Ok(())) => Ok("ok".into()),
        Ok(Err(e)) => Err(crate::errors::one_line(&e)),
        Err(_) => Err(format!("no answer within {PROBE_TIMEOUT:?}")),
    }
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn metrics(State(server): State<Arc<Server>>) -> impl IntoResponse {
    // The outbox is there only in front of brokers.
    let events = &server.engine.config.events;
    if events.brokers.is_some() {
        let waiting = crate::events::outbox::waiting(&events.outbox);
        server.metrics.set(&OUTBOX_EVENTS, &[], waiting as f64);
    }
    let text = server.metrics.render() + &server.engine.storage_metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
