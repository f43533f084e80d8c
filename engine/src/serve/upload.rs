//! `POST /api/v1/upload?dataset=…` and `GET /api/v1/uploads/{id}`.
//!
//! An upload is stored first (so the bytes are never lost to a failing
//! ingest), announced as `file-uploaded`, then ingested under the upload
//! id of its bytes: the same file uploaded twice is ingested once, and
//! the second answer says so.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures::{Stream, StreamExt};
use medallion_jobs::{Dataset, SourceFormat};
use serde::{Deserialize, Serialize};

use super::Server;
use super::answer::Failure;
use super::auth::{Denied, upload_scope};
use super::receive::{Received, Refused, Upload, receive, safe_filename};
use crate::events::{FILE_UPLOADED, FileUploaded, SCHEMA_VERSION};
use crate::ingest::format::parse_format;
use crate::ingest::{IngestOptions, check_upload_id, ingest};
use crate::metrics::names::{INGESTED_ROWS, UPLOAD_BYTES, UPLOADS};
use crate::progress::Progress;
use crate::upload_status::{self, State as UploadState, UploadStatus};

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    dataset: Option<String>,
    /// The file's name for a raw body (a multipart part names its own).
    filename: Option<String>,
    /// csv, json, ndjson or parquet, when the name does not say it.
    format: Option<String>,
}

/// The answer to an upload: its status, and whether it was new.
#[derive(Debug, Serialize)]
pub struct UploadAnswer {
    #[serde(flatten)]
    status: UploadStatus,
    already_ingested: bool,
    /// Where `GET` finds this upload's status later.
    status_url: String,
}

pub async fn upload(
    State(server): State<Arc<Server>>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Result<(StatusCode, Json<UploadAnswer>), Failure> {
    let name = query.dataset.as_deref().ok_or_else(|| {
        Failure::bad_request("name the dataset: POST /api/v1/upload?dataset=orders")
    })?;
    let dataset = server.authorize(request.headers(), name).await?;
    let forced = query
        .format
        .as_deref()
        .map(parse_format)
        .transpose()
        .map_err(Failure::bad_request)?;
    if let Some(length) = content_length(request.headers())
        && length > server.max_upload_bytes
    {
        server.count(name, "refused");
        return Err(too_large(server.max_upload_bytes));
    }
    let received = receive_body(&server, dataset, &query, forced, request).await;
    let received = received.inspect_err(|_| server.count(name, "refused"))?;
    server
        .metrics
        .add(&UPLOAD_BYTES, &[("dataset", name)], received.size as f64);
    if let Some(done) = server
        .root
        .marker(&received.upload_id)
        .await
        .map_err(|e| Failure::internal(&e))?
    {
        server.count(name, "already_ingested");
        let status = upload_status::read(&server.root, &done.upload_id)
            .await
            .map_err(|e| Failure::internal(&e))?
            .unwrap_or_else(|| UploadStatus::ingested(&done));
        return Ok((StatusCode::OK, Json(answer(status, true))));
    }
    let status = server.note_received(dataset, &received).await?;
    let status = server.ingest(dataset, &received, status).await?;
    Ok((StatusCode::CREATED, Json(answer(status, false))))
}

pub async fn status(
    State(server): State<Arc<Server>>,
    Path(upload_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<UploadStatus>, Failure> {
    if check_upload_id(&upload_id).is_err() {
        return Err(Failure::bad_request(format!(
            "`{upload_id}` is not an upload id"
        )));
    }
    let claims = server.authenticate(&headers).await?;
    let found = upload_status::read(&server.root, &upload_id)
        .await
        .map_err(|e| Failure::internal(&e))?;
    let status = found.ok_or_else(|| Failure::not_found(format!("no upload {upload_id}")))?;
    if let Some(claims) = claims
        && !claims.grants(&upload_scope(&status.dataset))
    {
        return Err(forbidden(&status.dataset).into());
    }
    Ok(Json(status))
}

fn answer(status: UploadStatus, already_ingested: bool) -> UploadAnswer {
    let status_url = format!("/api/v1/uploads/{}", status.upload_id);
    UploadAnswer {
        status,
        already_ingested,
        status_url,
    }
}

impl Server {
    /// The claims of the request's token; `None` when auth is off.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<super::auth::Claims>, Failure> {
        let Some(auth) = &self.auth else {
            return Ok(None);
        };
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        Ok(Some(auth.authenticate(authorization).await?))
    }

    /// The dataset, if the request's token may upload to it.
    async fn authorize(&self, headers: &HeaderMap, name: &str) -> Result<&Dataset, Failure> {
        let claims = self.authenticate(headers).await?;
        // Not the pipeline's error: that names a folder of this server.
        let dataset = self.pipeline.dataset(name).map_err(|_| {
            let known: Vec<&str> = self
                .pipeline
                .datasets
                .iter()
                .map(|d| d.dataset.as_str())
                .collect();
            Failure::not_found(format!(
                "no dataset named `{name}`; datasets: {}",
                known.join(", ")
            ))
        })?;
        match claims {
            Some(claims) if !claims.grants(&upload_scope(name)) => Err(forbidden(name).into()),
            _ => Ok(dataset),
        }
    }

    fn count(&self, dataset: &str, status: &str) {
        let labels = [("dataset", dataset), ("status", status)];
        self.metrics.add(&UPLOADS, &labels, 1.0);
    }

    /// Records the upload as received and announces it.
    async fn note_received(
        &self,
        dataset: &Dataset,
        received: &Received,
    ) -> Result<UploadStatus, Failure> {
        let status = UploadStatus {
            upload_id: received.upload_id.clone(),
            dataset: dataset.dataset.clone(),
            state: UploadState::Received,
            reason: None,
            filename: Some(received.filename.clone()),
            size: Some(received.size),
            sha256: received.sha256.clone(),
            received_object: Some(received.uri.clone()),
            object_keys: Vec::new(),
            rows_accepted: 0,
            rows_quarantined: 0,
            updated_at: upload_status::now(),
            loaded: Vec::new(),
        };
        upload_status::write(&self.root, &status)
            .await
            .map_err(|e| Failure::internal(&e))?;
        if let Some(events) = &self.events {
            let event = FileUploaded {
                schema_version: SCHEMA_VERSION,
                filename: received.filename.clone(),
                size: received.size,
                content_type: received.content_type.clone(),
                timestamp: status.updated_at.clone(),
                upload_id: received.upload_id.clone(),
                dataset: dataset.dataset.clone(),
                object_key: received.uri.clone(),
                sha256: received.sha256.clone(),
            };
            let payload = serde_json::to_vec(&event).map_err(|e| Failure::internal(&e.into()))?;
            // The outbox keeps it when the broker is down: this waits on disk, not Kafka.
            events
                .publish(FILE_UPLOADED, &event.upload_id, &payload)
                .await
                .map_err(|e| Failure::internal(&e))?;
        }
        Ok(status)
    }

    /// Ingests the stored upload, as `medallion ingest` would the object.
    async fn ingest(
        &self,
        dataset: &Dataset,
        received: &Received,
        status: UploadStatus,
    ) -> Result<UploadStatus, Failure> {
        let options = IngestOptions {
            format: Some(received.format),
            upload_id: Some(received.upload_id.clone()),
            ..IngestOptions::default()
        };
        let sources = [received.uri.clone()];
        let quiet = Progress::new(false);
        let name = dataset.dataset.as_str();
        let ingested = ingest(
            &self.engine,
            dataset,
            &sources,
            &options,
            self.events.clone(),
            &quiet,
        )
        .await;
        let (status, failure) = match ingested {
            Ok(report) => {
                let rows = [
                    ("accepted", report.rows_accepted),
                    ("quarantined", report.rows_quarantined),
                ];
                for (outcome, count) in rows {
                    let labels = [("dataset", name), ("outcome", outcome)];
                    self.metrics.add(&INGESTED_ROWS, &labels, count as f64);
                }
                self.count(name, "ingested");
                (status.now_ingested(&report.event), None)
            }
            Err(e) => {
                let reason = crate::errors::one_line(&e);
                // The store failing is the server's problem, and worth a retry;
                // anything else is what the file holds.
                let storage = e
                    .chain()
                    .any(|c| c.downcast_ref::<object_store::Error>().is_some());
                let (code, outcome, error) = if storage {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "failed",
                        "storage_unavailable",
                    )
                } else {
                    (StatusCode::UNPROCESSABLE_ENTITY, "refused", "ingest_failed")
                };
                self.count(name, outcome);
                let detail = format!(
                    "upload {} was stored but not ingested: {reason}",
                    received.upload_id
                );
                (
                    status.now_failed(reason),
                    Some(Failure::new(code, error, detail)),
                )
            }
        };
        upload_status::write(&self.root, &status)
            .await
            .map_err(|e| Failure::internal(&e))?;
        match failure {
            Some(failure) => Err(failure),
            None => Ok(status),
        }
    }
}

/// The body, raw or the file part of a multipart form, into the store.
async fn receive_body(
    server: &Server,
    dataset: &Dataset,
    query: &UploadQuery,
    forced: Option<SourceFormat>,
    request: Request,
) -> Result<Received, Failure> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let named = |filename: Option<&str>, content_type: String| {
        let filename = safe_filename(filename.unwrap_or("upload"));
        (filename, content_type)
    };
    if !content_type.starts_with("multipart/form-data") {
        let (filename, content_type) = named(query.filename.as_deref(), content_type);
        let body = boxed(request.into_body().into_data_stream());
        return store(server, dataset, &filename, content_type, forced, body).await;
    }
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| Failure::bad_request(format!("not a multipart form: {e}")))?;
    loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| Failure::bad_request(format!("the multipart form broke off: {e}")))?
            .ok_or_else(|| Failure::bad_request("the multipart form has no file part"))?;
        if field.file_name().is_none() && field.name() != Some("file") {
            continue;
        }
        let filename = field
            .file_name()
            .map(str::to_string)
            .or_else(|| query.filename.clone());
        let part_type = field
            .content_type()
            .unwrap_or("application/octet-stream")
            .to_string();
        let (filename, content_type) = named(filename.as_deref(), part_type);
        return store(
            server,
            dataset,
            &filename,
            content_type,
            forced,
            boxed(field),
        )
        .await;
    }
}

async fn store(
    server: &Server,
    dataset: &Dataset,
    filename: &str,
    content_type: String,
    forced: Option<SourceFormat>,
    body: Chunks<'_>,
) -> Result<Received, Failure> {
    let upload = Upload {
        dataset: &dataset.dataset,
        filename,
        content_type,
        forced,
        limit: server.max_upload_bytes,
    };
    receive(&server.root, upload, body).await.map_err(refusal)
}

type Chunks<'a> = std::pin::Pin<Box<dyn Stream<Item = Result<bytes::Bytes, String>> + Send + 'a>>;

fn boxed<'a, E: std::fmt::Display>(
    body: impl Stream<Item = Result<bytes::Bytes, E>> + Send + 'a,
) -> Chunks<'a> {
    body.map(|chunk| chunk.map_err(|e| e.to_string())).boxed()
}

fn refusal(refused: Refused) -> Failure {
    match refused {
        Refused::TooLarge(limit) => too_large(limit),
        Refused::NotWhatItSays(reason) => Failure::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_content",
            reason,
        ),
        Refused::Body(reason) => Failure::bad_request(format!("the upload broke off: {reason}")),
        Refused::Storage(e) => Failure::internal(&e.context("cannot store the upload")),
    }
}

fn too_large(limit: u64) -> Failure {
    Failure::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the upload is over the limit of {}; split it, or raise --max-upload-size",
            crate::report::human_bytes(limit)
        ),
    )
}

fn forbidden(dataset: &str) -> Denied {
    Denied::Forbidden(format!(
        "the token does not grant `{}` (as a scope or a role)",
        upload_scope(dataset)
    ))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
