//! The session of a job that runs distributed: DataFusion plans it here,
//! datafusion-distributed cuts the physical plan into stages at its
//! shuffles and sends each stage's tasks to the configured workers, and the
//! last stage's rows stream back to this process, which writes and commits.

use std::sync::Arc;

use anyhow::{Result, bail};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use datafusion_distributed::{DistributedExt, DistributedPhysicalOptimizerRule, WorkerResolver};
use url::Url;

use super::codec::IcebergScanCodec;
use super::tasks::IcebergScanTasks;
use crate::config::Config;
use crate::session::session_config;

/// A session whose queries run on `config.workers`.
pub fn distributed_session(config: &Config, runtime: &Arc<RuntimeEnv>) -> Result<SessionContext> {
    if config.workers.is_empty() {
        bail!(
            "no workers to run a distributed job on; start `medallion worker` processes and \
             name them with --workers http://host:port,... (MEDALLION_WORKERS), or run it \
             with --execution local"
        );
    }
    let state = SessionStateBuilder::new()
        .with_config(session_config(config))
        .with_runtime_env(runtime.clone())
        .with_default_features()
        .with_distributed_worker_resolver(Workers(config.workers.clone()))
        .with_distributed_user_codec(IcebergScanCodec)
        .with_distributed_task_estimator(IcebergScanTasks)
        // A job declared distributed uses the cluster: each data file (or
        // byte range of one) may be a task, up to one task per worker.
        .with_distributed_files_per_task(1)?
        // The session's single-partition hash joins (a dimension-sized build
        // side) are built once per task from a broadcast, not gathered to
        // one task.
        .with_distributed_broadcast_joins(true)?
        .with_physical_optimizer_rule(Arc::new(DistributedPhysicalOptimizerRule))
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// The workers as configured: every task of a stage goes to one of them.
#[derive(Clone)]
struct Workers(Vec<Url>);

impl WorkerResolver for Workers {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(self.0.clone())
    }
}
