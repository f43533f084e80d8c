//! Jobs on a cluster: datafusion-distributed runs the stages of a job's
//! query on `medallion worker` processes; the process that runs the job
//! plans it, writes its output and commits, as a local run does.

mod cluster;
mod codec;
mod iceberg_scan;
mod tasks;
mod worker;

use datafusion::catalog::Session;
use datafusion_distributed::DistributedConfig;

pub use cluster::distributed_session;
pub use codec::IcebergScanCodec;
pub use iceberg_scan::IcebergScanExec;
pub use worker::serve_worker;

/// Whether `state` runs its plans on workers, so scans must travel whole.
pub fn travels_to_workers(state: &dyn Session) -> bool {
    state
        .config_options()
        .extensions
        .get::<DistributedConfig>()
        .is_some()
}
