//! Which jobs run on a cluster of workers: those whose query reads only
//! tables (silver, gold). A job that reads raw files plans medallion's own
//! raw scans, which do not travel to workers; it scales out by shards
//! instead (`execution.shards`, one pod per shard).

use crate::error::Result;
use crate::run::RunParameters;
use crate::spec::{ExecutionMode, InputSpec, JobSpec, TargetMode};

impl JobSpec {
    /// Whether this run of the job runs its query on the workers: as
    /// `run --execution` says for a job that can, else as its spec says.
    pub fn runs_distributed(&self, run: &RunParameters) -> bool {
        match run.execution {
            Some(mode) => mode == ExecutionMode::Distributed && self.check_distributable().is_ok(),
            None => self.execution.mode == ExecutionMode::Distributed,
        }
    }

    /// Only a job that reads tables and no raw files runs distributed.
    pub(crate) fn check_distributable(&self) -> Result<()> {
        if self.target.mode == TargetMode::Maintain {
            return Err(self
                .error("`execution.mode: distributed` does not apply to maintenance; remove it"));
        }
        let reads_raw = self
            .inputs
            .iter()
            .any(|input| matches!(input, InputSpec::Raw { .. }));
        if reads_raw {
            return Err(self.error(
                "a job that reads raw files cannot run distributed; split it among pods with \
                 `execution.shards` instead",
            ));
        }
        if self.execution.shards.is_some() {
            return Err(self
                .error("`execution.shards` and `execution.mode: distributed` exclude each other"));
        }
        Ok(())
    }
}
