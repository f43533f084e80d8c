//! What every job of one run shares: the job id and the load time.

/// What every job of one run shares.
#[derive(Debug, Clone)]
pub struct RunParameters {
    pub job_id: String,
    /// Taken once when the run starts (UTC, microseconds since the epoch).
    pub loaded_at_micros: i64,
}
