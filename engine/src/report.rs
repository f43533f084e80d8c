//! What a run did, for people (a table) and machines (`--json`).

use std::time::Instant;

use medallion_catalog::{CompactReport, ExpireReport, ManifestsReport, OrphanReport, WriteStats};
use medallion_jobs::JobSpec;
use serde::Serialize;

use crate::storage::some_of;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Committed,
    /// This job id had committed to the table before; nothing was written.
    AlreadyCommitted,
    /// One shard of a `commit: single` job: its files are written and wait
    /// for the other shards; the last to finish commits them all.
    Staged,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub job: String,
    pub table: String,
    pub status: JobStatus,
    pub snapshot_id: Option<i64>,
    /// Rows in the data files this job's snapshot added (a merge rewrites
    /// only the files it touches, so this can be far below the table's).
    pub rows_written: Option<u64>,
    /// Rows the job's position delete files delete (a merge-on-read merge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows_deleted: Option<u64>,
    /// Rows in the table as of the job's snapshot (its `total-records`).
    pub table_rows: Option<u64>,
    pub bytes: Option<u64>,
    pub files: Option<usize>,
    pub seconds: f64,
    /// Maintenance jobs: what each task did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance: Option<MaintenanceOutcome>,
    /// Objects in the job's raw inputs that were not loaded: not of the
    /// input's format, or in a subfolder.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_files: Vec<String>,
    /// The shard of the job this run loaded (`2/4`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// A distributed job: the bytes its stages sent each other and this
    /// process over the network (Arrow IPC, compressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_shuffled: Option<u64>,
    /// Staged: the shards whose files the commit still waits for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<Vec<u32>>,
    /// What the job's query read and used, for the metrics.
    #[serde(skip)]
    pub measures: JobMeasures,
}

/// What a job's run measured besides its commit: its phases, what its
/// scans read, what spilled, the memory pool's peak. `None`: not measured
/// (the job failed first, or it planned no query).
#[derive(Debug, Clone, Default)]
pub struct JobMeasures {
    pub plan_seconds: Option<f64>,
    /// Streaming the data files and committing them.
    pub write_seconds: Option<f64>,
    pub rows_read: Option<u64>,
    pub bytes_read: Option<u64>,
    pub spilled_bytes: Option<u64>,
    pub pool_peak_bytes: Option<u64>,
    /// Over the network between stages; `None`: the job ran in one process.
    pub bytes_shuffled: Option<u64>,
}

impl JobReport {
    pub fn new(
        job: &JobSpec,
        status: JobStatus,
        snapshot_id: Option<i64>,
        stats: Option<WriteStats>,
        started: Instant,
    ) -> Self {
        Self {
            job: job.name.clone(),
            table: job.target.table.clone(),
            status,
            snapshot_id,
            rows_written: stats.as_ref().map(|s| s.rows),
            rows_deleted: stats.as_ref().map(|s| s.deleted_rows).filter(|n| *n > 0),
            table_rows: None,
            bytes: stats.as_ref().map(|s| s.bytes),
            files: stats.as_ref().map(|s| s.files),
            seconds: started.elapsed().as_secs_f64(),
            maintenance: None,
            skipped_files: Vec::new(),
            shard: None,
            waiting_for: None,
            bytes_shuffled: None,
            measures: JobMeasures::default(),
        }
    }

    pub fn failed(job: &JobSpec) -> Self {
        Self::command(&job.name, &job.target.table, JobStatus::Failed)
    }

    /// A command on one table that is not a job of a pipeline (`compact`),
    /// reported under the command's name; nothing written yet.
    pub fn command(job: &str, table: &str, status: JobStatus) -> Self {
        Self {
            job: job.to_string(),
            table: table.to_string(),
            status,
            snapshot_id: None,
            rows_written: None,
            rows_deleted: None,
            table_rows: None,
            bytes: None,
            files: None,
            seconds: 0.0,
            maintenance: None,
            skipped_files: Vec::new(),
            shard: None,
            waiting_for: None,
            bytes_shuffled: None,
            measures: JobMeasures::default(),
        }
    }
}

/// What each maintenance task of a job did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MaintenanceOutcome {
    pub compact: Option<CompactReport>,
    pub rewrite_manifests: Option<ManifestsReport>,
    pub expire_snapshots: Option<ExpireReport>,
    pub remove_orphan_files: Option<OrphanReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub job_id: String,
    /// Random per command, in every log line of the run.
    pub trace_id: String,
    pub jobs: Vec<JobReport>,
    pub seconds: f64,
    pub error: Option<String>,
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

impl RunReport {
    /// The summary table printed at the end of a run.
    pub fn render(&self) -> String {
        let header = [
            "table",
            "status",
            "snapshot id",
            "rows written",
            "rows in table",
            "bytes",
            "files",
            "time",
        ];
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_else(|| "-".into());
        let rows: Vec<[String; 8]> = self
            .jobs
            .iter()
            .map(|j| {
                [
                    j.table.clone(),
                    match j.status {
                        JobStatus::Committed => "committed".into(),
                        JobStatus::AlreadyCommitted => "already committed".into(),
                        JobStatus::Staged => "staged".into(),
                        JobStatus::Failed => "FAILED".into(),
                    },
                    j.snapshot_id
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "-".into()),
                    match j.rows_deleted {
                        Some(deleted) => format!("{} ({deleted} deleted)", number(j.rows_written)),
                        None => number(j.rows_written),
                    },
                    number(j.table_rows),
                    j.bytes.map(human_bytes).unwrap_or_else(|| "-".into()),
                    j.files.map(|f| f.to_string()).unwrap_or_else(|| "-".into()),
                    format!("{:.2}s", j.seconds),
                ]
            })
            .collect();
        let mut out = format!("job id {}\n", self.job_id);
        out.push_str(&render_table(&header, &rows));
        for job in &self.jobs {
            out.push_str(&shard_line(job));
        }
        for job in self.jobs.iter().filter(|j| !j.skipped_files.is_empty()) {
            out.push_str(&format!(
                "warning: job `{}` did not load {} objects of its raw input (not of its format, or in a subfolder): {}\n",
                job.job,
                job.skipped_files.len(),
                some_of(&job.skipped_files)
            ));
        }
        out.push_str(&format!(
            "total {:.2}s, trace id {}\n",
            self.seconds, self.trace_id
        ));
        out
    }
}

/// What a shard of a job did, under the summary table; empty for a whole job.
fn shard_line(job: &JobReport) -> String {
    let Some(shard) = &job.shard else {
        return String::new();
    };
    match (&job.waiting_for, job.status) {
        (Some(waiting), _) => format!(
            "{}: shard {shard} staged its files; they are committed, with every shard's, in one snapshot once shards {} have written theirs\n",
            job.table,
            waiting
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, JobStatus::Failed) => String::new(),
        (None, _) => format!("{}: shard {shard}\n", job.table),
    }
}

/// A plain aligned text table; numbers right-aligned.
pub fn render_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let numeric = |i: usize| {
        rows.iter().all(|r| {
            r[i] == "-"
                || r[i]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || c == '-')
        })
    };
    let line = |cells: Vec<String>| -> String {
        let mut parts = Vec::new();
        for (i, cell) in cells.iter().enumerate() {
            if numeric(i) && !rows.is_empty() {
                parts.push(format!("{cell:>w$}", w = widths[i]));
            } else {
                parts.push(format!("{cell:<w$}", w = widths[i]));
            }
        }
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.to_vec()));
    }
    out
}
