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

/// A job id of its own for a run that was given none: `run-<UTC time>-`
/// and 8 random hex digits. The time alone is not enough: two commands
/// started in the same millisecond got the same id, and the second found
/// its jobs "already committed" and loaded nothing.
pub fn new_job_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!(
        "run-{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        &random[..8]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_job_ids_made_at_once_differ_and_are_valid_job_ids() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_job_id()).collect();
        assert_eq!(
            ids.len(),
            1000,
            "no two ids alike, even within one millisecond"
        );
        for id in ids.iter().take(3) {
            assert_eq!(
                medallion_jobs::parse_job_id(id).as_deref(),
                Ok(id.as_str()),
                "{id}"
            );
        }
    }
}
