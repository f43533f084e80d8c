//! Which shard of a job a run is: a file-parallel job (an append of raw
//! files: bronze, ingest) split by `execution.shards`, each shard a pod of a
//! Kubernetes Indexed Job or a `medallion run --shard i/N`.

use medallion_catalog::Shard;

use crate::error::Result;
use crate::run::RunParameters;
use crate::spec::{InputSpec, JobSpec, TargetMode};

impl JobSpec {
    /// Which shard of this job the run is: `--shard` (which must agree with
    /// `execution.shards`), else the index Kubernetes gives each pod of an
    /// Indexed Job when the spec declares shards; `None`: the whole job.
    pub fn shard(&self, run: &RunParameters) -> Result<Option<Shard>> {
        let declared = self.execution.shards;
        let shard = match (run.shard, declared, run.completion_index) {
            (Some(shard), Some(count), _) if shard.count != count => {
                return Err(self.error(format!(
                    "--shard {shard} splits the job in {} shards, and `execution.shards` says {count}",
                    shard.count
                )));
            }
            (Some(shard), _, _) => shard,
            (None, Some(count), Some(index)) => Shard::new(index, count)
                .map_err(|e| self.error(format!("JOB_COMPLETION_INDEX {index}: {e}")))?,
            _ => return Ok(None),
        };
        self.check_shardable()?;
        Ok(Some(shard))
    }

    /// Only an append of raw files splits into shards: each file's rows
    /// land once whichever shard reads it. A job reading a table, or
    /// replacing or merging rows, needs every row in one plan.
    pub(crate) fn check_shardable(&self) -> Result<()> {
        let raw_only = !self.inputs.is_empty()
            && self
                .inputs
                .iter()
                .all(|i| matches!(i, InputSpec::Raw { .. }));
        if self.target.mode != TargetMode::Append || !raw_only {
            return Err(self.error(
                "only a job that appends raw files (bronze, ingest) runs in shards; this one \
                 reads tables or replaces rows, so run it whole",
            ));
        }
        if let Some(count) = self.execution.shards {
            Shard::new(0, count).map_err(|e| self.error(format!("execution.shards: {e}")))?;
        }
        Ok(())
    }
}
