//! Jobs on a cluster: datafusion-distributed runs the stages of a job's
//! query on `medallion worker` processes; the process that runs the job
//! plans it, writes its output and commits, as a local run does.

mod cluster;
mod codec;
mod iceberg_scan;
mod tasks;
mod worker;
mod write;

use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DistributedConfig, DistributedExec, DistributedMetricsFormat,
    rewrite_distributed_plan_with_metrics,
};

pub use cluster::{distribute, distributed_session, plan_uncut};
pub use codec::IcebergCodec;
pub use iceberg_scan::IcebergScanExec;
pub use worker::serve_worker;
pub use write::{DataFileWriteExec, writing};

/// Whether `state` runs its plans on workers, so scans must travel whole.
pub fn travels_to_workers(state: &dyn Session) -> bool {
    state
        .config_options()
        .extensions
        .get::<DistributedConfig>()
        .is_some()
}

/// The planner keeps a plan whose every stage is one task whole: then the
/// job's own process runs it, which an operator should hear of.
pub fn log_if_whole(job: &str, plan: &Arc<dyn ExecutionPlan>) {
    if !plan.as_any().is::<DistributedExec>() {
        tracing::info!(
            job,
            "too small to split among the workers (one task per stage): it runs in this process"
        );
    }
}

/// The metric of the bytes a network boundary received from the stage below.
pub const NETWORK_BYTES: &str = "bytes_transferred";

/// An executed plan with what its stages measured on the workers, each
/// metric summed over the tasks: a local plan as it is.
pub fn with_worker_metrics(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    let measured = plan.clone().transform_down(|node| {
        if !node.as_any().is::<DistributedExec>() {
            return Ok(Transformed::no(node));
        }
        let measured =
            rewrite_distributed_plan_with_metrics(node, DistributedMetricsFormat::Aggregated)?;
        Ok(Transformed::new(measured, true, TreeNodeRecursion::Jump))
    });
    match measured {
        Ok(measured) => measured.data,
        Err(e) => {
            tracing::warn!("the workers' metrics of a finished plan are not there: {e}");
            plan
        }
    }
}
