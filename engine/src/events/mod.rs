//! The events medallion publishes and consumes, and the one trait that
//! publishes them. Topics and payloads are a versioned contract (see the
//! README, "Events"): a consumer checks `schema_version` and refuses a
//! version it does not know instead of guessing.
//!
//! - `file-uploaded`: `medallion serve` stored an upload (before ingesting it).
//! - `raw-data-ready`: `medallion ingest` wrote validated Parquet objects to
//!   the raw bucket; `medallion listen` runs the pipeline for them.
//!
//! The message key is the upload id, so every event of one upload goes to
//! one partition, in order.

pub mod kafka;
pub mod listen;
pub mod outbox;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::Config;

pub const FILE_UPLOADED: &str = "file-uploaded";
pub const RAW_DATA_READY: &str = "raw-data-ready";

/// The payload version this build writes and the only one it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// An upload stored by the upload API. The first five fields are the ones
/// the FastAPI service medallion replaces published, unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileUploaded {
    pub schema_version: u32,
    pub filename: String,
    /// Bytes received.
    pub size: u64,
    pub content_type: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
    pub upload_id: String,
    pub dataset: String,
    /// The stored upload, as a URI (`s3://raw/_received/<dataset>/<upload_id>/<filename>`).
    pub object_key: String,
    /// Hex SHA-256 of the bytes received.
    pub sha256: String,
}

/// Validated raw data, written as Parquet objects under the dataset's
/// landing prefix, ready for the bronze job that reads the dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawDataReady {
    pub schema_version: u32,
    pub dataset: String,
    /// Derived from the content hash of the source: the same bytes give the same id.
    pub upload_id: String,
    /// The Parquet objects written, as URIs, in order.
    pub object_keys: Vec<String>,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    /// Hex SHA-256 of the source bytes as read (before decompression).
    pub sha256: String,
    /// Where the data came from (a path, URL or URI; never with credentials).
    pub source: String,
    /// RFC 3339, UTC.
    pub timestamp: String,
}

/// Publishes one event. Implementations: the Kafka producer, the durable
/// outbox in front of it (an event that cannot be sent now is kept and
/// sent later), and an in-memory sink in tests.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Returns once the event is durable: acknowledged by the broker, or
    /// written to the outbox.
    async fn publish(&self, topic: &str, key: &str, payload: &[u8]) -> anyhow::Result<()>;
}

/// The sink commands publish through: the durable outbox in front of the
/// Kafka producer, or `None` when no brokers are configured (events off).
/// Starts the outbox's drainer, so it needs a Tokio runtime.
pub fn sink(config: &Config) -> anyhow::Result<Option<Arc<dyn EventSink>>> {
    let Some(brokers) = &config.events.brokers else {
        return Ok(None);
    };
    let producer = Arc::new(kafka::KafkaProducer::new(brokers)?);
    let outbox = outbox::Outbox::open(&config.events.outbox, producer)?;
    Ok(Some(Arc::new(outbox)))
}
