//! Every metric medallion exposes: its name (`medallion_` prefix, base
//! units, `_total` for counters), type, help and labels. Label values are
//! bounded: job names, tables, layers, statuses, phases, checks; never a
//! job id, a file name or a snapshot id.

/// A counter only goes up; a gauge is set; a histogram counts
/// observations into buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Debug)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    /// A histogram's bucket bounds, ascending (`+Inf` is implied).
    pub buckets: &'static [f64],
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
        buckets: &[],
    }
}

const fn gauge(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Metric {
    Metric {
        name,
        kind: Kind::Gauge,
        help,
        labels,
        buckets: &[],
    }
}

const fn histogram(
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
) -> Metric {
    Metric {
        name,
        kind: Kind::Histogram,
        help,
        labels,
        buckets,
    }
}

/// Request latencies, from a status lookup to a multi-GiB upload.
const LATENCY_BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 120.0, 600.0];

pub static JOB_RUNS: Metric = counter(
    "medallion_job_runs_total",
    "Job runs by outcome: committed, already_committed (this job id had committed before), staged (one shard's files, waiting for the other shards) or failed.",
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
pub static ROWS_DELETED: Metric = counter(
    "medallion_rows_deleted_total",
    "Rows the position delete files of the job's snapshots delete (merge-on-read).",
    JOB,
);
pub static BYTES_WRITTEN: Metric = counter(
    "medallion_written_bytes_total",
    "Bytes of the data and delete files the job's snapshots added.",
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
pub static SHUFFLED_BYTES: Metric = counter(
    "medallion_shuffled_bytes_total",
    "Bytes a distributed job's stages sent over the network, to each other and to the job's process (Arrow IPC, compressed).",
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

// The long-running processes: `serve` and `listen`, on `/metrics`.

pub static HTTP_REQUESTS: Metric = counter(
    "medallion_http_requests_total",
    "HTTP requests answered, by route template, method and status code.",
    &["route", "method", "status"],
);
pub static HTTP_DURATION: Metric = histogram(
    "medallion_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by route template and method.",
    &["route", "method"],
    LATENCY_BUCKETS,
);
pub static UPLOADS: Metric = counter(
    "medallion_uploads_total",
    "Uploads by outcome: ingested, already_ingested (the same bytes before), refused (too large, not what its name says, bad rows of a reject_file dataset) or failed (the store failed during the ingest).",
    &["dataset", "status"],
);
pub static UPLOAD_BYTES: Metric = counter(
    "medallion_upload_received_bytes_total",
    "Bytes of uploads stored.",
    &["dataset"],
);
pub static INGESTED_ROWS: Metric = counter(
    "medallion_ingested_rows_total",
    "Rows of uploads ingested: accepted (landed as Parquet) or quarantined.",
    &["dataset", "outcome"],
);
pub static OUTBOX_EVENTS: Metric = gauge(
    "medallion_outbox_events",
    "Events in the outbox not yet acknowledged by the broker, as of the scrape.",
    &[],
);
pub static LISTEN_BATCHES: Metric = counter(
    "medallion_listen_batches_total",
    "Batches of raw-data-ready events the listener ran, by outcome: succeeded or failed (retried).",
    &["status"],
);
pub static LISTEN_EVENTS: Metric = counter(
    "medallion_listen_events_total",
    "raw-data-ready events the listener consumed, by outcome: loaded (their run succeeded) or refused (unreadable or unknown schema version).",
    &["status"],
);
pub static CONSUMER_LAG: Metric = gauge(
    "medallion_consumer_lag_messages",
    "Messages of the topic's partitions the listener's group has not committed, as of the last batch.",
    &["topic"],
);
pub static STORAGE_REQUESTS: Metric = counter(
    "medallion_storage_requests_total",
    "Object-store requests to S3 buckets through the engine's stores, by operation (get, get_ranges, put, multipart, head, list, copy, delete) and outcome (ok, not_found, error); the client's own retries are inside one request.",
    &["operation", "outcome"],
);
pub static STORAGE_DURATION: Metric = histogram(
    "medallion_storage_request_duration_seconds",
    "Time an object-store request to S3 took to answer (for a get, until its body starts), retries included.",
    &["operation"],
    LATENCY_BUCKETS,
);
