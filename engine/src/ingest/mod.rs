//! `medallion ingest`: uploads of a dataset, streamed from their sources
//! through per-row checks into one Parquet object under the raw root, bad
//! rows quarantined, recorded once per upload id, announced as
//! `raw-data-ready`. The upload API calls [`ingest`] too.
//!
//! Reading and checking run on a blocking thread (`read.rs`), a batch at a
//! time; writing runs here, so memory is bounded by the batch size.

mod csv;
mod csv_quotes;
pub mod format;
mod json;
mod land;
mod options;
mod parquet;
mod publish;
mod quarantine;
mod read;
mod row;
mod source;
mod store;
mod validate;

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::{SecondsFormat, Utc};
use medallion_jobs::Dataset;
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

pub use self::land::RawRoot;
use self::land::Staged;
pub use self::options::{CsvOptions, IngestOptions};
use self::read::{Piece, ReadSummary, read_sources};
use crate::engine::Engine;
use crate::events::{EventSink, RawDataReady, SCHEMA_VERSION};
use crate::progress::{JobProgress, Progress};

/// What one ingest did.
#[derive(Debug, Serialize)]
pub struct IngestReport {
    pub dataset: String,
    pub upload_id: String,
    pub sources: Vec<String>,
    pub rows_in: u64,
    pub rows_accepted: u64,
    pub rows_quarantined: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The Parquet objects landed, as URIs.
    pub object_keys: Vec<String>,
    /// The bad rows, one JSON object per line.
    pub quarantine: Option<String>,
    /// The record of the ingest under `_uploads/`.
    pub marker: String,
    /// The same upload id was ingested before: nothing was written now.
    pub already_ingested: bool,
    /// Whether `event` reached the configured sink (none: no broker).
    pub event_published: bool,
    pub event: RawDataReady,
    pub seconds: f64,
}

/// Ingests `sources` (files, folders, http(s) URLs, `s3://` prefixes) as
/// one upload of `dataset`, and publishes `raw-data-ready` to `sink`.
pub async fn ingest(
    engine: &Engine,
    dataset: &Dataset,
    sources: &[String],
    options: &IngestOptions,
    sink: Option<Arc<dyn EventSink>>,
    progress: &Progress,
) -> Result<IngestReport> {
    let started = Instant::now();
    let ctx = engine.session();
    let root = RawRoot::open(&ctx, &engine.config.raw_root)?;
    if let Some(id) = &options.upload_id {
        check_upload_id(id)?;
        // A given id can be looked up before anything is read.
        if let Some(done) = root.marker(id).await? {
            return Ok(already(done, &root, None, started));
        }
    }
    let resolved = source::resolve(&ctx, sources).await?;
    let names: Vec<String> = resolved.iter().map(source::Source::name).collect();
    let job = progress.job("ingest", &dataset.dataset);
    let mut staged = Staged::new(&root, dataset.schema())?;
    let read = match stage(resolved, dataset, options, &root, &mut staged, &job).await {
        Ok(read) => read,
        Err(e) => {
            job.fail();
            staged.discard(&root).await;
            return Err(e);
        }
    };
    let upload_id = options
        .upload_id
        .clone()
        .unwrap_or_else(|| upload_id(&read.sha256));
    if let Some(done) = root.marker(&upload_id).await? {
        staged.discard(&root).await;
        job.done(&format!(
            "already ingested as upload {upload_id}; nothing written"
        ));
        return Ok(already(done, &root, Some(&read), started));
    }
    let rows_accepted = staged.rows;
    let landed = staged
        .land(
            &root,
            &dataset.landing_key(&upload_id, Utc::now().date_naive()),
            &format!("_quarantine/{}/{upload_id}.ndjson", dataset.dataset),
        )
        .await?;
    let event = RawDataReady {
        schema_version: SCHEMA_VERSION,
        dataset: dataset.dataset.clone(),
        upload_id: upload_id.clone(),
        object_keys: landed.object_keys.clone(),
        rows_accepted,
        rows_quarantined: landed.rows_quarantined,
        sha256: read.sha256.clone(),
        source: names.join(", "),
        timestamp: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    // Written last: an ingest that stops before here left no record, and
    // the same bytes ingest again.
    let marker = root.write_marker(&event).await?;
    let event_published = publish::publish(sink.as_deref(), &event).await?;
    job.done(&format!(
        "upload {upload_id}: {rows_accepted} rows accepted, {} quarantined",
        landed.rows_quarantined
    ));
    Ok(IngestReport {
        dataset: dataset.dataset.clone(),
        upload_id,
        sources: names,
        rows_in: read.rows_in,
        rows_accepted,
        rows_quarantined: landed.rows_quarantined,
        bytes_read: read.bytes_read,
        bytes_written: landed.bytes_written,
        object_keys: landed.object_keys,
        quarantine: landed.quarantine,
        marker,
        already_ingested: false,
        event_published,
        event,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads the sources on a blocking thread while their rows and bad rows
/// are written to the staging objects here.
async fn stage(
    sources: Vec<source::Source>,
    dataset: &Dataset,
    options: &IngestOptions,
    root: &RawRoot,
    staged: &mut Staged,
    job: &JobProgress,
) -> Result<ReadSummary> {
    // A few batches in flight: the reader parses the next while one is encoded.
    let (sender, mut receiver) = mpsc::channel(4);
    let reader = {
        let (dataset, options, runtime) = (dataset.clone(), options.clone(), Handle::current());
        tokio::task::spawn_blocking(move || {
            read_sources(&sources, &dataset, &options, &runtime, &sender)
        })
    };
    let mut written = Ok(());
    while let Some(piece) = receiver.recv().await {
        written = match piece {
            Piece::Rows(batch) => {
                job.add(
                    batch.num_rows() as u64,
                    batch.get_array_memory_size() as u64,
                );
                staged.write_rows(&batch).await
            }
            Piece::Bad(row) => staged.write_bad(root, &row).await,
        };
        if written.is_err() {
            break;
        }
    }
    // Dropping the receiver stops a reader still sending.
    drop(receiver);
    let read = reader.await.context("the reader of the sources stopped")?;
    // A failed write makes the reader fail too; the write's error is the cause.
    written?;
    read
}

/// The upload id of bytes whose SHA-256 is `sha256` (hex): the same
/// bytes, ingested from a file or uploaded to the API, get the same id.
pub fn upload_id(sha256: &str) -> String {
    format!("u-{}", &sha256[..24])
}

/// The report of an upload id ingested before.
fn already(
    done: RawDataReady,
    root: &RawRoot,
    read: Option<&ReadSummary>,
    started: Instant,
) -> IngestReport {
    IngestReport {
        dataset: done.dataset.clone(),
        upload_id: done.upload_id.clone(),
        sources: vec![done.source.clone()],
        rows_in: read.map_or(0, |r| r.rows_in),
        rows_accepted: done.rows_accepted,
        rows_quarantined: done.rows_quarantined,
        bytes_read: read.map_or(0, |r| r.bytes_read),
        bytes_written: 0,
        object_keys: done.object_keys.clone(),
        quarantine: None,
        marker: root.marker_uri(&done.upload_id),
        already_ingested: true,
        event_published: false,
        event: done,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// An upload id becomes an object key: letters, digits, `-`, `_`, `.`.
pub fn check_upload_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!(
            "--upload-id `{id}`: use up to 128 letters, digits, `-`, `_` or `.`, not starting with `.`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::publish::tests::MemorySink;
    use super::*;
    use crate::config::{Config, Overrides};
    use crate::events::RAW_DATA_READY;

    #[tokio::test(flavor = "multi_thread")]
    async fn an_ingest_publishes_the_event_it_records_once_per_upload() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::resolve(&Overrides {
            lakehouse: Some(dir.path().to_path_buf()),
            ..Overrides::default()
        })
        .unwrap();
        let engine = Engine::open(config).await.unwrap();
        let pipeline =
            medallion_jobs::reference_pipeline_dir(&dir.path().join("pipeline")).unwrap();
        let pipeline = medallion_jobs::Pipeline::load(&pipeline).unwrap();
        let source = dir.path().join("customer.csv");
        std::fs::write(&source, "c_custkey,c_name\n1,Ann\n,nobody\n2,Bo\n").unwrap();
        let sources = [source.to_str().unwrap().to_string()];
        let sink = Arc::new(MemorySink::default());
        let dataset = pipeline.dataset("customer").unwrap();
        let options = IngestOptions::default();
        let progress = Progress::new(false);

        let report = ingest(
            &engine,
            dataset,
            &sources,
            &options,
            Some(sink.clone()),
            &progress,
        )
        .await
        .unwrap();
        assert!(report.event_published);
        assert_eq!((report.rows_accepted, report.rows_quarantined), (2, 1));
        let again = ingest(
            &engine,
            dataset,
            &sources,
            &options,
            Some(sink.clone()),
            &progress,
        )
        .await
        .unwrap();
        assert!(again.already_ingested && !again.event_published);

        let sent = sink.sent.lock().unwrap();
        assert_eq!(sent.len(), 1, "the same bytes are announced once");
        let (topic, key, payload) = &sent[0];
        assert_eq!(
            (topic.as_str(), key.as_str()),
            (RAW_DATA_READY, report.upload_id.as_str())
        );
        let published: RawDataReady = serde_json::from_slice(payload).unwrap();
        let marker = dir
            .path()
            .join(format!("raw/_uploads/{}.json", report.upload_id));
        let recorded: RawDataReady =
            serde_json::from_slice(&std::fs::read(marker).unwrap()).unwrap();
        assert_eq!(published, recorded, "the marker is the event");
        assert_eq!(published, report.event);
    }
}
