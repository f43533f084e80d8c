//! Bad rows, kept with why they were refused: one JSON object per line,
//! `{"line", "reason", "source", "record"}`, streamed to a staging object.

use std::sync::Arc;

use anyhow::{Context, Result};
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

/// A row that broke a declared column, or could not be read.
#[derive(Debug, Serialize)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
    pub source: String,
    /// The row as written: its CSV text, its JSON, or a Parquet row as JSON.
    pub record: String,
}

/// The quarantine of one upload, written as the bad rows arrive.
pub struct QuarantineWriter {
    writer: BufWriter,
    pub rows: u64,
    pub bytes: u64,
}

impl QuarantineWriter {
    pub fn new(store: Arc<dyn ObjectStore>, path: Path) -> Self {
        Self {
            writer: BufWriter::new(store, path),
            rows: 0,
            bytes: 0,
        }
    }

    pub async fn write(&mut self, row: &BadRow) -> Result<()> {
        let mut line = serde_json::to_vec(row)?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .await
            .context("cannot write the quarantine")?;
        self.rows += 1;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// Completes the object; until then nothing is stored.
    pub async fn finish(mut self) -> Result<(u64, u64)> {
        self.writer
            .shutdown()
            .await
            .context("cannot store the quarantine")?;
        Ok((self.rows, self.bytes))
    }
}
