//! The session of a job that runs distributed: DataFusion plans it here,
//! datafusion-distributed cuts the physical plan into stages at its
//! shuffles and sends each stage's tasks to the configured workers. The
//! last stage writes the job's data files (see `write.rs`), or streams its
//! rows back to this process, which writes them; this process commits.

use std::sync::Arc;

use anyhow::{Result, bail};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_distributed::{DistributedExt, DistributedPhysicalOptimizerRule, WorkerResolver};
use medallion_catalog::ObjectStores;
use url::Url;

use super::codec::IcebergCodec;
use super::tasks::IcebergScanTasks;
use crate::config::Config;
use crate::session::session_config;

/// A session whose queries run on `config.workers`.
pub fn distributed_session(
    config: &Config,
    runtime: &Arc<RuntimeEnv>,
    stores: &Arc<ObjectStores>,
) -> Result<SessionContext> {
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
        .with_distributed_user_codec(IcebergCodec {
            file_io: stores.file_io(),
        })
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

/// `logical` planned as `ctx` plans it, but not yet cut into stages, so a
/// job's plan can gain its writers first; [`distribute`] cuts it then.
pub async fn plan_uncut(
    ctx: &SessionContext,
    logical: &LogicalPlan,
) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
    let state = ctx.state();
    let rules = state
        .physical_optimizers()
        .iter()
        .filter(|rule| rule.name() != DistributedPhysicalOptimizerRule.name())
        .cloned()
        .collect();
    let state = SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rules(rules)
        .build();
    state.create_physical_plan(logical).await
}

/// `plan` cut into stages for the workers, as the session's last optimizer
/// rule cuts the plans it makes.
pub fn distribute(
    plan: Arc<dyn ExecutionPlan>,
    ctx: &SessionContext,
) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
    DistributedPhysicalOptimizerRule.optimize(plan, ctx.state().config_options())
}

/// The workers as configured: every task of a stage goes to one of them.
#[derive(Clone)]
struct Workers(Vec<Url>);

impl WorkerResolver for Workers {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        Ok(self.0.clone())
    }
}
