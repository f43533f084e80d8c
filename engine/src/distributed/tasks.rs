//! How many tasks a stage that scans a table gets: as for DataFusion's own
//! file scans, one per `files_per_task` of its files (or byte ranges of
//! them), each task reading its share.

use std::sync::Arc;

use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::FileGroup;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DistributedConfig, PartitionIsolatorExec, TaskEstimation, TaskEstimator,
};

use super::iceberg_scan::IcebergScanExec;

#[derive(Debug)]
pub struct IcebergScanTasks;

impl TaskEstimator for IcebergScanTasks {
    fn task_estimation(
        &self,
        plan: &Arc<dyn ExecutionPlan>,
        cfg: &ConfigOptions,
    ) -> Option<TaskEstimation> {
        let scan = plan.as_any().downcast_ref::<IcebergScanExec>()?;
        let per_task = cfg.extensions.get::<DistributedConfig>()?.files_per_task;
        let files: usize = scan.config().file_groups.iter().map(FileGroup::len).sum();
        Some(TaskEstimation::desired(files.div_ceil(per_task.max(1))))
    }

    /// Each group of files split in `task_count`; task i reads the i-th
    /// share of every group.
    fn scale_up_leaf_node(
        &self,
        plan: &Arc<dyn ExecutionPlan>,
        task_count: usize,
        _cfg: &ConfigOptions,
    ) -> Option<Arc<dyn ExecutionPlan>> {
        let scan = plan.as_any().downcast_ref::<IcebergScanExec>()?;
        if task_count <= 1 {
            return Some(plan.clone());
        }
        let mut config = scan.config().clone();
        config.file_groups = std::mem::take(&mut config.file_groups)
            .into_iter()
            .flat_map(|group| group.split_files(task_count))
            .collect();
        let scan: Arc<dyn ExecutionPlan> = Arc::new(scan.with_config(config));
        Some(Arc::new(PartitionIsolatorExec::new(scan, task_count)))
    }
}
