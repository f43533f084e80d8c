//! What every job of one run shares: the job id, the load time, and the
//! files that replace raw inputs' paths.

use std::collections::BTreeMap;

use medallion_catalog::Shard;

use crate::spec::ExecutionMode;

/// What every job of one run shares.
#[derive(Debug, Clone, Default)]
pub struct RunParameters {
    pub job_id: String,
    /// Taken once when the run starts (UTC, microseconds since the epoch).
    pub loaded_at_micros: i64,
    /// Raw inputs read from exactly these files instead of their spec's
    /// path (`run --input NAME=URI,...`), by input name; each a full URI
    /// or relative to the raw root.
    pub raw_inputs: BTreeMap<String, Vec<String>>,
    /// `run --shard i/N`: only this shard of the raw files.
    pub shard: Option<Shard>,
    /// `JOB_COMPLETION_INDEX`, which Kubernetes sets in each pod of an
    /// Indexed Job: the shard of a job whose spec declares
    /// `execution.shards`.
    pub completion_index: Option<u32>,
    /// `run --execution`: where the jobs that read only tables run,
    /// whatever their spec says.
    pub execution: Option<ExecutionMode>,
}
