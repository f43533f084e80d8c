//! Every metric medallion exposes: its name (`medallion_` prefix, base
//! units, `_total` for counters), type, help and labels. Label values are
//! bounded: job names, tables, layers, statuses, phases, checks; never a
//! job id, a file name or a snapshot id.

/// A counter only goes up; a gauge is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
}

const JOB: &[&str] = &["job", "table", "layer"];

const fn counter(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        help,
        labels,
    }
}

const fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        help,
        labels,
    }
}

pub static JOB_RUNS: Metric = counter(
    "medallion_job_runs_total",
    "Job runs by outcome: committed, already_committed (this job id had committed before) or failed.",
    &["job", "table", "layer", "status"],
);
pub static JOB_DURATION: Metric = gauge(
    "medallion_job_duration_seconds",
    "Wall time of the job's last run.",
    JOB,
);
pub static PHASE_DURATION: Metric = gauge(
    "medallion_job_phase_duration_seconds",
    "Wall time of each phase of the job's last run: plan (inputs and query), write (data files), commit (the snapshot, retries included).",
    &["job", "table", "layer", "phase"],
);
pub static LAST_SUCCESS: Metric = gauge(
    "medallion_last_success_timestamp_seconds",
    "Unix time the job last committed new rows to its table.",
    JOB,
);
pub static ROWS_WRITTEN: Metric = counter(
    "medallion_rows_written_total",
    "Rows in the data files the job's snapshots added.",
    JOB,
);
pub static BYTES_WRITTEN: Metric = counter(
    "medallion_written_bytes_total",
    "Bytes of the data files the job's snapshots added.",
    JOB,
);
pub static FILES_WRITTEN: Metric = counter(
    "medallion_files_written_total",
    "Data files the job's snapshots added.",
    JOB,
);
pub static ROWS_READ: Metric = counter(
    "medallion_rows_read_total",
    "Rows the job's scans of raw files and tables produced.",
    JOB,
);
pub static BYTES_READ: Metric = counter(
    "medallion_read_bytes_total",
    "Bytes the job's Parquet scans read from storage.",
    JOB,
);
pub static SPILLED_BYTES: Metric = counter(
    "medallion_spilled_bytes_total",
    "Bytes the job's operators spilled to disk beyond the memory pool.",
    JOB,
);
pub static POOL_PEAK: Metric = gauge(
    "medallion_memory_pool_peak_bytes",
    "Largest reservation of the DataFusion memory pool during the job's last run.",
    JOB,
);
pub static TABLE_ROWS: Metric = gauge(
    "medallion_table_rows",
    "Rows in the table as of the job's snapshot.",
    JOB,
);
pub static COMMIT_ATTEMPTS: Metric = counter(
    "medallion_commit_attempts_total",
    "Commit attempts sent to the catalog by how they ended: committed, conflict (retried on the new head), conflict_gave_up (no retry left) or failed.",
    &["job", "table", "layer", "status"],
);
pub static DQ_REJECTED: Metric = gauge(
    "medallion_dq_rejected_rows",
    "Rows a data-quality check rejected, as the dq_report table the job wrote says (table is the report's table_name).",
    &["job", "table", "check"],
);
