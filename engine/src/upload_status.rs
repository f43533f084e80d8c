//! Where an upload is on its way to bronze, as `GET /api/v1/uploads/{id}`
//! answers it: received by the API, ingested (rows accepted and
//! quarantined), failed with its reason, and the bronze snapshots that
//! loaded it. Kept as one JSON record per upload under the raw root
//! (`_status/<upload_id>.json`), so any replica of the API and the
//! listener that loaded it see the same; an upload ingested by
//! `medallion ingest` has no record, and its ingest marker stands in.

use anyhow::Result;
use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::events::RawDataReady;
use crate::ingest::RawRoot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Stored under `_received/`, not ingested (yet).
    Received,
    /// Checked and landed as Parquet under the dataset's landing prefix.
    Ingested,
    /// Refused by the ingest; `reason` says why. Nothing was landed.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadStatus {
    pub upload_id: String,
    pub dataset: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The name it was uploaded under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// Bytes received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    pub sha256: String,
    /// The bytes as received, as a URI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received_object: Option<String>,
    /// The Parquet objects the ingest landed, as URIs.
    #[serde(default)]
    pub object_keys: Vec<String>,
    #[serde(default)]
    pub rows_accepted: u64,
    #[serde(default)]
    pub rows_quarantined: u64,
    /// RFC 3339, UTC: the last change of this record.
    pub updated_at: String,
    /// Each bronze snapshot that loaded the upload's objects.
    #[serde(default)]
    pub loaded: Vec<Loaded>,
}

/// A snapshot of a bronze table holding an upload's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loaded {
    pub table: String,
    pub snapshot_id: i64,
    pub job_id: String,
}

fn key(upload_id: &str) -> String {
    format!("_status/{upload_id}.json")
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl UploadStatus {
    /// The status an ingest's record says: ingested.
    pub fn ingested(event: &RawDataReady) -> Self {
        Self {
            upload_id: event.upload_id.clone(),
            dataset: event.dataset.clone(),
            state: State::Ingested,
            reason: None,
            filename: None,
            size: None,
            sha256: event.sha256.clone(),
            received_object: None,
            object_keys: event.object_keys.clone(),
            rows_accepted: event.rows_accepted,
            rows_quarantined: event.rows_quarantined,
            updated_at: now(),
            loaded: Vec::new(),
        }
    }

    /// This status, now ingested as `event` says.
    pub fn now_ingested(self, event: &RawDataReady) -> Self {
        Self {
            filename: self.filename,
            size: self.size,
            received_object: self.received_object,
            loaded: self.loaded,
            ..Self::ingested(event)
        }
    }

    pub fn now_failed(mut self, reason: String) -> Self {
        self.state = State::Failed;
        self.reason = Some(reason);
        self.updated_at = now();
        self
    }
}

/// The status of `upload_id`: its record, else its ingest marker.
pub async fn read(root: &RawRoot, upload_id: &str) -> Result<Option<UploadStatus>> {
    if let Some(status) = root.read_json(&key(upload_id)).await? {
        return Ok(Some(status));
    }
    Ok(root
        .marker(upload_id)
        .await?
        .map(|event| UploadStatus::ingested(&event)))
}

pub async fn write(root: &RawRoot, status: &UploadStatus) -> Result<()> {
    root.write_json(&key(&status.upload_id), status).await?;
    Ok(())
}

/// Notes that `loaded` holds the rows of the upload `event` announced.
/// Loading the same snapshot again (a redelivered batch) notes nothing new.
pub async fn record_loaded(root: &RawRoot, event: &RawDataReady, loaded: Loaded) -> Result<()> {
    let mut status = match read(root, &event.upload_id).await? {
        Some(status) => status,
        None => UploadStatus::ingested(event),
    };
    if status.loaded.contains(&loaded) {
        return Ok(());
    }
    status.loaded.push(loaded);
    status.updated_at = now();
    write(root, &status).await
}
