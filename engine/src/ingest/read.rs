//! Reading an upload's sources on a blocking thread: each source hashed
//! as its bytes arrive (before decompression: the upload id is the hash of
//! what was sent), parsed, checked row by row, and handed on in batches.

use std::io::{Read, Seek};

use anyhow::{Context, Result, anyhow, bail};
use arrow::array::RecordBatch;
use medallion_jobs::{Dataset, OnBadRow, SourceFormat};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;
use tokio::sync::mpsc;

use super::csv::read_csv;
use super::format::{decompress, detect};
use super::json::{read_json_array, read_ndjson};
use super::options::IngestOptions;
use super::parquet::read_parquet;
use super::quarantine::BadRow;
use super::row::Row;
use super::source::Source;
use super::validate::RowBuilder;

/// What the reader hands the writers.
pub enum Piece {
    Rows(RecordBatch),
    Bad(BadRow),
}

/// What reading every source found.
pub struct ReadSummary {
    /// Hex SHA-256 of every source's bytes, in order.
    pub sha256: String,
    pub bytes_read: u64,
    pub rows_in: u64,
}

/// Reads every source in order; stops at the first error (an unreadable
/// file, or a bad row of a `reject_file` dataset).
pub fn read_sources(
    sources: &[Source],
    dataset: &Dataset,
    options: &IngestOptions,
    runtime: &Handle,
    pieces: &mpsc::Sender<Piece>,
) -> Result<ReadSummary> {
    let mut hasher = Sha256::new();
    let mut bytes_read = 0;
    let mut rows = RowBuilder::new(dataset);
    let mut rows_in = 0;
    for source in sources {
        let name = source.name();
        let (format, compression) = detect(&source.file_name(), options.format)?;
        if !dataset.formats.contains(&format) {
            let names = |f: &SourceFormat| format!("{f:?}").to_lowercase();
            bail!(
                "{name}: dataset `{}` does not accept {} sources; it accepts {}",
                dataset.dataset,
                names(&format),
                dataset
                    .formats
                    .iter()
                    .map(names)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let mut hashing = Hashing {
            inner: source.open(runtime)?,
            hasher: &mut hasher,
            bytes: &mut bytes_read,
        };
        let mut emit = |row: Row<'_>| -> Result<()> {
            rows_in += 1;
            let problem = match &row.values {
                Ok(values) => rows.push(values).err(),
                Err(reason) => Some(reason.clone()),
            };
            if let Some(reason) = problem {
                if dataset.on_bad_row == OnBadRow::RejectFile {
                    bail!(
                        "{name}:{}: {reason}; dataset `{}` rejects a file with a bad row \
                         (on_bad_row: reject_file), so nothing was written",
                        row.line,
                        dataset.dataset
                    );
                }
                let record = (row.raw)();
                send(
                    pieces,
                    Piece::Bad(BadRow {
                        line: row.line,
                        reason,
                        source: name.clone(),
                        record,
                    }),
                )?;
            }
            if rows.len() >= options.batch_rows {
                send(pieces, Piece::Rows(rows.finish()))?;
            }
            Ok(())
        };
        let columns = &dataset.columns;
        match format {
            SourceFormat::Parquet => {
                let file = seekable(&mut hashing, source)?;
                read_parquet(file, &name, columns, options.batch_rows, &mut emit)?
            }
            SourceFormat::Csv => {
                let reader = decompress(&mut hashing, compression)?;
                read_csv(reader, &name, columns, options.csv, &mut emit)?
            }
            SourceFormat::Ndjson => read_ndjson(
                decompress(&mut hashing, compression)?,
                &name,
                columns,
                &mut emit,
            )?,
            SourceFormat::Json => read_json_array(
                decompress(&mut hashing, compression)?,
                &name,
                columns,
                &mut emit,
            )?,
        }
        // Bytes after the last row (a trailer, trailing space) are part of
        // what was sent, so of its hash too.
        std::io::copy(&mut hashing, &mut std::io::sink())
            .with_context(|| format!("cannot read {name}"))?;
    }
    if rows.len() > 0 {
        send(pieces, Piece::Rows(rows.finish()))?;
    }
    Ok(ReadSummary {
        sha256: format!("{:x}", hasher.finalize()),
        bytes_read,
        rows_in,
    })
}

fn send(pieces: &mpsc::Sender<Piece>, piece: Piece) -> Result<()> {
    // The writer ended early; its own error says why.
    pieces
        .blocking_send(piece)
        .map_err(|_| anyhow!("the upload's writer stopped"))
}

/// A Parquet source as a file (its footer comes first): a local file as
/// it is, hashed on the way; a remote one spooled to a temporary file.
fn seekable(hashing: &mut impl Read, source: &Source) -> Result<std::fs::File> {
    let name = source.name();
    if let Some(path) = source.local_path() {
        std::io::copy(hashing, &mut std::io::sink())
            .with_context(|| format!("cannot read {name}"))?;
        return std::fs::File::open(path).with_context(|| format!("cannot open {name}"));
    }
    let mut spool = tempfile::tempfile().context("cannot create a temporary file")?;
    std::io::copy(hashing, &mut spool).with_context(|| format!("cannot download {name}"))?;
    spool.rewind()?;
    Ok(spool)
}

/// Hashes and counts the bytes read through it.
struct Hashing<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
    bytes: &'a mut u64,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        *self.bytes += n as u64;
        Ok(n)
    }
}
