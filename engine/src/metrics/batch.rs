//! A batch command's reports turned into series: per job, what it wrote and
//! read, how long each phase took, how its commits went and whether it
//! succeeded.

use super::commits::CommitCounts;
use super::names::*;
use super::registry::Registry;
use crate::report::{JobReport, JobStatus, RunReport};

/// Records every job of a pipeline run.
pub fn record_run(registry: &Registry, report: &RunReport, commits: &CommitCounts) {
    for job in &report.jobs {
        record_job(registry, job, commits);
    }
}

/// Records one job (of a run, or a maintenance command under the
/// command's name).
pub fn record_job(registry: &Registry, job: &JobReport, commits: &CommitCounts) {
    let layer = layer_of(&job.table);
    let labels = [
        ("job", job.job.as_str()),
        ("table", job.table.as_str()),
        ("layer", layer),
    ];
    let status = match job.status {
        JobStatus::Committed => "committed",
        JobStatus::AlreadyCommitted => "already_committed",
        JobStatus::Staged => "staged",
        JobStatus::Failed => "failed",
    };
    let [job_label, table, layer_label] = labels;
    registry.add(
        &JOB_RUNS,
        &[job_label, table, layer_label, ("status", status)],
        1.0,
    );
    registry.set(&JOB_DURATION, &labels, job.seconds);
    record_written(registry, job, &labels);
    record_measures(registry, job, &labels);
    record_commits(registry, job, &labels, commits);
}

/// Rows, bytes and files written; the table's rows; the time of a load.
fn record_written(registry: &Registry, job: &JobReport, labels: &[(&'static str, &str); 3]) {
    let counters = [
        (&ROWS_WRITTEN, job.rows_written),
        (&ROWS_DELETED, job.rows_deleted),
        (&BYTES_WRITTEN, job.bytes),
        (&FILES_WRITTEN, job.files.map(|f| f as u64)),
    ];
    for (metric, value) in counters {
        // A failed or skipped job wrote nothing: zero, so the series exists.
        registry.add(metric, labels, value.unwrap_or(0) as f64);
    }
    if let Some(rows) = job.table_rows {
        registry.set(&TABLE_ROWS, labels, rows as f64);
    }
    // Maintenance loads no rows; an already committed job id loaded earlier.
    if job.status == JobStatus::Committed && job.maintenance.is_none() {
        registry.set(&LAST_SUCCESS, labels, now_seconds());
    }
}

fn record_measures(registry: &Registry, job: &JobReport, labels: &[(&'static str, &str); 3]) {
    let measures = &job.measures;
    let counters = [
        (&ROWS_READ, measures.rows_read),
        (&BYTES_READ, measures.bytes_read),
        (&SPILLED_BYTES, measures.spilled_bytes),
        (&SHUFFLED_BYTES, measures.bytes_shuffled),
    ];
    for (metric, value) in counters {
        if let Some(value) = value {
            registry.add(metric, labels, value as f64);
        }
    }
    if let Some(peak) = measures.pool_peak_bytes {
        registry.set(&POOL_PEAK, labels, peak as f64);
    }
    if let Some(plan) = measures.plan_seconds {
        registry.set(&PHASE_DURATION, &with(labels, "phase", "plan"), plan);
    }
}

/// Attempts by outcome, and the write and commit phases: the write phase
/// streams data files and then commits, so the commit's time is taken out.
fn record_commits(
    registry: &Registry,
    job: &JobReport,
    labels: &[(&'static str, &str); 3],
    commits: &CommitCounts,
) {
    let table = commits.of(&job.table);
    for (status, attempts) in &table.attempts {
        registry.add(
            &COMMIT_ATTEMPTS,
            &with(labels, "status", status),
            *attempts as f64,
        );
    }
    if let Some(write) = job.measures.write_seconds {
        let streaming = (write - table.seconds).max(0.0);
        registry.set(&PHASE_DURATION, &with(labels, "phase", "write"), streaming);
        registry.set(
            &PHASE_DURATION,
            &with(labels, "phase", "commit"),
            table.seconds,
        );
    }
}

fn with<'a>(
    labels: &[(&'static str, &'a str); 3],
    name: &'static str,
    value: &'a str,
) -> [(&'static str, &'a str); 4] {
    [labels[0], labels[1], labels[2], (name, value)]
}

/// `bronze` of `bronze.orders`; a table outside a namespace has none.
pub fn layer_of(table: &str) -> &str {
    table.split_once('.').map_or("", |(layer, _)| layer)
}

fn now_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
