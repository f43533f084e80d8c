//! `--job-id` of the commands that commit one snapshot, and the new id
//! every command takes when none is given.

use clap::Args;

#[derive(Debug, Args)]
pub struct JobIdArg {
    /// Job id recorded with the snapshot (default: a new one).
    #[arg(long, value_parser = medallion_jobs::parse_job_id)]
    job_id: Option<String>,
}

impl JobIdArg {
    /// The given job id, or a new one.
    pub fn or_new(self) -> String {
        self.job_id.unwrap_or_else(new_job_id)
    }
}

/// A job id of its own for a run that was given none: `run-<UTC time>`.
pub fn new_job_id() -> String {
    format!("run-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
}
