//! Where an upload lands, atomically: Parquet and quarantine are written
//! under `_staging/` while the sources are read (the upload id is known
//! only at the end), then renamed to their final keys; the marker under
//! `_uploads/`, written last, says the upload is complete.

use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::AsyncArrowWriter;
use parquet::arrow::async_writer::ParquetObjectWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::quarantine::{BadRow, QuarantineWriter};
use super::store::store_of;
use crate::events::RawDataReady;

/// The raw root as a store and the prefix of its keys.
pub struct RawRoot {
    store: Arc<dyn ObjectStore>,
    base: String,
    uri: String,
}

impl RawRoot {
    /// The store of `raw_root` (`file:///…/raw`, `s3://raw`), with the
    /// credentials the engine reads raw files with.
    pub fn open(ctx: &SessionContext, raw_root: &str) -> Result<Self> {
        let (store, _, url) = store_of(ctx, raw_root).context("the raw root")?;
        Ok(Self {
            store,
            base: url.path().trim_matches('/').to_string(),
            uri: raw_root.trim_end_matches('/').to_string(),
        })
    }

    /// The full URI of a key under the root.
    pub fn uri(&self, key: &str) -> String {
        format!("{}/{key}", self.uri)
    }

    /// The store and the location of a key under the root.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn path(&self, key: &str) -> Path {
        if self.base.is_empty() {
            Path::from(key)
        } else {
            Path::from(format!("{}/{key}", self.base))
        }
    }

    /// The JSON record at `key`, if there is one.
    pub async fn read_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.store.get(&self.path(key)).await {
            Ok(found) => {
                let bytes = found.bytes().await?;
                let record = serde_json::from_slice(&bytes).with_context(|| {
                    format!("{} is not a record medallion wrote", self.uri(key))
                })?;
                Ok(Some(record))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.uri(key))),
        }
    }

    /// Writes a JSON record at `key` in one put: readers see all or nothing.
    pub async fn write_json<T: Serialize>(&self, key: &str, record: &T) -> Result<String> {
        let payload = PutPayload::from(serde_json::to_vec_pretty(record)?);
        self.store
            .put(&self.path(key), payload)
            .await
            .with_context(|| format!("cannot write {}", self.uri(key)))?;
        Ok(self.uri(key))
    }

    /// The completed ingest of this upload id, if there is one.
    pub async fn marker(&self, upload_id: &str) -> Result<Option<RawDataReady>> {
        self.read_json(&marker_key(upload_id)).await
    }

    pub fn marker_uri(&self, upload_id: &str) -> String {
        self.uri(&marker_key(upload_id))
    }

    /// Records the ingest: from now on its upload id is taken.
    pub async fn write_marker(&self, event: &RawDataReady) -> Result<String> {
        self.write_json(&marker_key(&event.upload_id), event).await
    }
}

fn marker_key(upload_id: &str) -> String {
    format!("_uploads/{upload_id}.json")
}

/// An upload on its way: Parquet and quarantine under staging keys.
pub struct Staged {
    parquet: AsyncArrowWriter<ParquetObjectWriter>,
    parquet_key: String,
    quarantine: Option<QuarantineWriter>,
    quarantine_key: String,
    pub rows: u64,
}

/// Where a landed upload is, and its size.
pub struct Landed {
    pub object_keys: Vec<String>,
    pub quarantine: Option<String>,
    pub rows_quarantined: u64,
    pub bytes_written: u64,
}

impl Staged {
    pub fn new(root: &RawRoot, schema: SchemaRef) -> Result<Self> {
        let staging = format!("_staging/{}", uuid::Uuid::new_v4());
        let parquet_key = format!("{staging}.parquet");
        // The writer holds a row group in memory until it is full: 128Ki
        // rows keeps that to a few batches, not a million rows.
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(128 * 1024))
            .build();
        let writer = ParquetObjectWriter::new(root.store.clone(), root.path(&parquet_key));
        Ok(Self {
            parquet: AsyncArrowWriter::try_new(writer, schema, Some(properties))?,
            parquet_key,
            quarantine: None,
            quarantine_key: format!("{staging}.quarantine.ndjson"),
            rows: 0,
        })
    }

    pub async fn write_rows(&mut self, batch: &RecordBatch) -> Result<()> {
        self.parquet
            .write(batch)
            .await
            .context("cannot write the Parquet object")?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    pub async fn write_bad(&mut self, root: &RawRoot, row: &BadRow) -> Result<()> {
        let key = &self.quarantine_key;
        self.quarantine
            .get_or_insert_with(|| QuarantineWriter::new(root.store.clone(), root.path(key)))
            .write(row)
            .await
    }

    /// Completes both objects and moves them to their final keys (an
    /// upload without a good row lands no Parquet).
    pub async fn land(self, root: &RawRoot, landing: &str, quarantine: &str) -> Result<Landed> {
        self.parquet
            .close()
            .await
            .context("cannot complete the Parquet object")?;
        let mut landed = Landed {
            object_keys: Vec::new(),
            quarantine: None,
            rows_quarantined: 0,
            bytes_written: 0,
        };
        if self.rows > 0 {
            landed.bytes_written += rename(root, &self.parquet_key, landing).await?;
            landed.object_keys.push(root.uri(landing));
        } else {
            delete(root, &self.parquet_key).await;
        }
        if let Some(writer) = self.quarantine {
            let (rows, _) = writer.finish().await?;
            landed.bytes_written += rename(root, &self.quarantine_key, quarantine).await?;
            landed.quarantine = Some(root.uri(quarantine));
            landed.rows_quarantined = rows;
        }
        Ok(landed)
    }

    /// Leaves nothing behind: the staging objects are completed, then
    /// deleted (an incomplete multipart upload would linger unseen).
    pub async fn discard(self, root: &RawRoot) {
        let _ = self.parquet.close().await;
        delete(root, &self.parquet_key).await;
        if let Some(writer) = self.quarantine {
            let _ = writer.finish().await;
            delete(root, &self.quarantine_key).await;
        }
    }
}

/// Moves a staging object to its final key (a rename on a local disk, a
/// copy and a delete on S3); returns its size.
async fn rename(root: &RawRoot, from: &str, to: &str) -> Result<u64> {
    let (from, to_path) = (root.path(from), root.path(to));
    root.store
        .rename(&from, &to_path)
        .await
        .with_context(|| format!("cannot move the staged upload to {}", root.uri(to)))?;
    Ok(root.store.head(&to_path).await?.size)
}

async fn delete(root: &RawRoot, key: &str) {
    if let Err(e) = root.store.delete(&root.path(key)).await
        && !matches!(e, object_store::Error::NotFound { .. })
    {
        tracing::warn!("cannot delete the staging object {}: {e}", root.uri(key));
    }
}
