//! What a job's write did when the job may run in shards: a commit (of the
//! whole job, or of one shard's own under `commit: per-shard`), or one
//! shard's files staged for the last shard of a `commit: single` job.

use std::time::Instant;

use iceberg::table::Table;
use medallion_catalog::{
    CommitOutcome, Shard, ShardCommit, ShardOutcome, WriteStats, snapshot_of_job, snapshot_of_shard,
};
use medallion_jobs::{JobSpec, RunParameters};

use crate::report::{JobReport, JobStatus};

/// The snapshot that already holds this run of the job: under
/// `commit: per-shard`, the shard's own (or the whole job's).
pub fn committed_before(
    table: &Table,
    job: &JobSpec,
    run: &RunParameters,
    shard: Option<Shard>,
) -> Option<i64> {
    match shard {
        Some(shard) if job.execution.commit == ShardCommit::PerShard => {
            snapshot_of_shard(table, &run.job_id, shard)
        }
        _ => snapshot_of_job(table, &run.job_id),
    }
}

pub enum Written {
    Committed(CommitOutcome),
    /// This shard's files wait for the shards named.
    Staged {
        stats: WriteStats,
        waiting_for: Vec<u32>,
    },
}

impl Written {
    pub fn of_shard(outcome: ShardOutcome) -> Self {
        match outcome {
            ShardOutcome::Staged { stats, waiting_for } => Self::Staged { stats, waiting_for },
            ShardOutcome::Finished(outcome) => Self::Committed(outcome),
        }
    }

    /// The snapshot holding the write; none while a shard's files wait.
    pub fn snapshot_id(&self) -> Option<i64> {
        match self {
            Self::Committed(outcome) => Some(outcome.snapshot_id()),
            Self::Staged { .. } => None,
        }
    }

    pub fn report(self, job: &JobSpec, shard: Option<Shard>, started: Instant) -> JobReport {
        let mut report = match self {
            Self::Committed(CommitOutcome::Committed {
                snapshot_id, stats, ..
            }) => JobReport::new(
                job,
                JobStatus::Committed,
                Some(snapshot_id),
                Some(stats),
                started,
            ),
            Self::Committed(CommitOutcome::AlreadyCommitted { snapshot_id }) => JobReport::new(
                job,
                JobStatus::AlreadyCommitted,
                Some(snapshot_id),
                None,
                started,
            ),
            Self::Staged { stats, waiting_for } => {
                let mut report = JobReport::new(job, JobStatus::Staged, None, Some(stats), started);
                report.waiting_for = Some(waiting_for);
                report
            }
        };
        report.shard = shard.map(|s| s.to_string());
        report
    }
}
