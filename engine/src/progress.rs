//! Progress of long work: a live line per job on a terminal (rows and bytes
//! as they flow), plain log lines otherwise.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{Stream, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{JobReport, JobStatus, human_bytes};

pub type TrackedStream = Pin<Box<dyn Stream<Item = Result<RecordBatch, DataFusionError>> + Send>>;

#[derive(Clone)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

impl Progress {
    /// Live bars only when stderr is a terminal and the user did not ask for quiet.
    pub fn new(live: bool) -> Self {
        let live = live && std::io::IsTerminal::is_terminal(&std::io::stderr());
        Self {
            bars: live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    pub fn job(&self, job: &str, table: &str) -> JobProgress {
        tracing::info!(job, table, "job started");
        let bar = self.bars.as_ref().map(|bars| {
            let bar = bars.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:<24} {msg} [{elapsed}]")
                    .expect("valid template"),
            );
            bar.set_prefix(table.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        JobProgress {
            job: job.to_string(),
            rows: Arc::new(AtomicU64::new(0)),
            bytes: Arc::new(AtomicU64::new(0)),
            bar,
        }
    }
}

/// The totals of one job, shared by the streams that count into them.
struct Counter {
    rows: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    bar: Option<ProgressBar>,
}

impl Counter {
    fn add(&self, rows: u64, bytes: u64) {
        let total_rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let total_bytes = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{total_rows} rows, {} in memory",
                human_bytes(total_bytes)
            ));
        }
    }
}

pub struct JobProgress {
    job: String,
    rows: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    bar: Option<ProgressBar>,
}

impl JobProgress {
    /// Counts what passes through `stream` on its way to the writers.
    pub fn track(&self, stream: SendableRecordBatchStream) -> TrackedStream {
        let counter = self.counter();
        Box::pin(stream.inspect(move |batch| {
            if let Ok(batch) = batch {
                counter.add(
                    batch.num_rows() as u64,
                    batch.get_array_memory_size() as u64,
                );
            }
        }))
    }

    /// Counts work that is no DataFusion stream (an ingest's batches).
    pub fn add(&self, rows: u64, bytes: u64) {
        self.counter().add(rows, bytes);
    }

    fn counter(&self) -> Counter {
        Counter {
            rows: self.rows.clone(),
            bytes: self.bytes.clone(),
            bar: self.bar.clone(),
        }
    }

    /// Ends the line with a summary of work that has no job report.
    pub fn done(&self, summary: &str) {
        tracing::info!(job = %self.job, "{summary}");
        if let Some(bar) = &self.bar {
            bar.finish_with_message(summary.to_string());
        }
    }

    pub fn finish(&self, report: &JobReport) {
        let summary = match report.status {
            JobStatus::Committed => format!(
                "committed snapshot {} ({} rows written{}, {})",
                report.snapshot_id.unwrap_or_default(),
                report.rows_written.unwrap_or_default(),
                report
                    .rows_deleted
                    .map(|n| format!(", {n} deleted by position"))
                    .unwrap_or_default(),
                human_bytes(report.bytes.unwrap_or_default())
            ),
            JobStatus::AlreadyCommitted => format!(
                "already committed by this job id (snapshot {}), nothing written",
                report.snapshot_id.unwrap_or_default()
            ),
            JobStatus::Staged => format!(
                "staged {} rows in {} files; the last shard to finish commits every shard's",
                report.rows_written.unwrap_or_default(),
                report.files.unwrap_or_default()
            ),
            JobStatus::Failed => "failed".to_string(),
        };
        tracing::info!(job = %self.job, seconds = report.seconds, "{summary}");
        if let Some(bar) = &self.bar {
            bar.finish_with_message(summary);
        }
    }

    pub fn fail(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon_with_message("failed");
        }
    }
}
