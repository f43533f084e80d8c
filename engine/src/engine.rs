//! A connected engine: configuration, the catalog, storage and the shared
//! DataFusion runtime, opened once per command.

use std::sync::Arc;

use anyhow::{Context, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;
use medallion_catalog::{Lakehouse, ObjectStores};
use medallion_jobs::{JobSpec, RunParameters};

use crate::config::Config;
use crate::distributed::distributed_session;
use crate::metrics::{CommitCounts, Registry};
pub use crate::query_tables::AsOf;
use crate::query_tables::register_query_tables;
use crate::session::{Pool, runtime, session};

/// A connected engine: configuration, catalog and the shared runtime.
pub struct Engine {
    pub config: Config,
    pub lakehouse: Lakehouse,
    pub stores: Arc<ObjectStores>,
    /// Every commit attempt of this engine's lakehouse, for the metrics.
    pub commits: Arc<CommitCounts>,
    /// The memory pool, whose peak each job reports.
    pub pool: Arc<Pool>,
    /// Requests to S3 through the engine's stores; the servers serve them.
    pub storage_metrics: Arc<Registry>,
    runtime: Arc<RuntimeEnv>,
}

impl Engine {
    pub async fn open(config: Config) -> Result<Self> {
        let stores = ObjectStores::new(config.s3.clone());
        let commits = Arc::new(CommitCounts::default());
        let lakehouse = Lakehouse::connect(&config.catalog, stores.clone())
            .await?
            .with_commit_observer(commits.clone());
        let storage_metrics = Arc::new(Registry::default());
        let (runtime, pool) = runtime(&config, stores.clone(), storage_metrics.clone())?;
        Ok(Self {
            config,
            lakehouse,
            stores,
            commits,
            pool,
            storage_metrics,
            runtime,
        })
    }

    pub fn session(&self) -> SessionContext {
        session(&self.config, &self.runtime)
    }

    /// The session of one run of `job`: on the workers when it runs
    /// distributed, else local.
    pub fn session_for(&self, job: &JobSpec, run: &RunParameters) -> Result<SessionContext> {
        if !job.runs_distributed(run) {
            return Ok(self.session());
        }
        distributed_session(&self.config, &self.runtime, &self.stores)
            .with_context(|| format!("job `{}` runs distributed", job.name))
    }

    /// A session for the query `sql`, in which the tables it names load
    /// from the catalog as DataFusion plans it, each at its current
    /// snapshot or as of the given point in time.
    pub async fn session_for_query(&self, sql: &str, as_of: &AsOf) -> Result<SessionContext> {
        let ctx = self.session();
        register_query_tables(&ctx, &self.lakehouse, sql, as_of).await?;
        Ok(ctx)
    }
}
