//! Running jobs: plan with DataFusion, stream every output partition into
//! Iceberg data files, commit one snapshot per job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, execute_stream_partitioned,
};
use datafusion::prelude::SessionContext;
use medallion_catalog::{CommitOutcome, Lakehouse, ObjectStores, table_ident};
use medallion_jobs::{InputSpec, JobSpec, RunParameters, plan_job};

use crate::config::Config;
use crate::progress::{JobProgress, Progress};
use crate::report::{JobReport, JobStatus};
use crate::session::{register_table, runtime, session};
use crate::storage::{list_raw_files, raw_uri};

/// Which snapshot of each table a query reads (time travel).
#[derive(Debug, Default, Clone)]
pub struct AsOf {
    /// Exact snapshots by table name.
    pub snapshots: HashMap<String, i64>,
    /// Every other table as it was at this moment (milliseconds since the epoch).
    pub timestamp_ms: Option<i64>,
}

/// A connected engine: configuration, catalog and the shared runtime.
pub struct Engine {
    pub config: Config,
    pub lakehouse: Lakehouse,
    pub stores: Arc<ObjectStores>,
    runtime: Arc<RuntimeEnv>,
}

impl Engine {
    pub async fn open(config: Config) -> Result<Self> {
        let stores = ObjectStores::new(config.s3.clone());
        let lakehouse = Lakehouse::connect(&config.catalog, stores.clone()).await?;
        let runtime = runtime(&config, stores.clone())?;
        Ok(Self {
            config,
            lakehouse,
            stores,
            runtime,
        })
    }

    pub fn session(&self) -> SessionContext {
        session(&self.config, &self.runtime)
    }

    /// A session with every table of the catalog registered by name, each
    /// at its current snapshot or as of the given point in time.
    pub async fn session_with_all_tables(&self, as_of: &AsOf) -> Result<SessionContext> {
        let ctx = self.session();
        let tables = self.lakehouse.list_tables().await?;
        if let Some(unknown) = as_of
            .snapshots
            .keys()
            .find(|name| !tables.iter().any(|t| &t.to_string() == *name))
        {
            anyhow::bail!("there is no table {unknown} to read as of a snapshot");
        }
        for ident in tables {
            let table = self.lakehouse.load_table(&ident).await?;
            let snapshot_id = match (as_of.snapshots.get(&ident.to_string()), as_of.timestamp_ms) {
                (Some(id), _) => Some(*id),
                (None, Some(at)) => {
                    // The snapshot current at that moment; a table that did not
                    // exist yet is left out.
                    let current_then = table
                        .metadata()
                        .history()
                        .iter()
                        .filter(|entry| entry.timestamp_ms <= at)
                        .max_by_key(|entry| entry.timestamp_ms)
                        .map(|entry| entry.snapshot_id);
                    match current_then {
                        Some(id) => Some(id),
                        None => continue,
                    }
                }
                (None, None) => None,
            };
            register_table(&ctx, &table, snapshot_id).await?;
        }
        Ok(ctx)
    }

    /// Runs jobs in order and stops at the first failure; the reports of the
    /// jobs that ran come back either way.
    pub async fn run_jobs(
        &self,
        jobs: &[&JobSpec],
        run: &RunParameters,
        progress: &Progress,
    ) -> (Vec<JobReport>, Option<anyhow::Error>) {
        let mut reports = Vec::with_capacity(jobs.len());
        for job in jobs {
            let job_progress = progress.job(&job.name, &job.target.table);
            match self.run_job(job, run, &job_progress).await {
                Ok(report) => {
                    job_progress.finish(&report);
                    reports.push(report);
                }
                Err(e) => {
                    job_progress.fail();
                    reports.push(JobReport::failed(job));
                    return (reports, Some(e.context(format!("job `{}` failed; tables of the jobs before it stay committed, {} is unchanged", job.name, job.target.table))));
                }
            }
        }
        (reports, None)
    }

    pub async fn run_job(
        &self,
        job: &JobSpec,
        run: &RunParameters,
        progress: &JobProgress,
    ) -> Result<JobReport> {
        let started = Instant::now();
        let target = table_ident(&job.target.table)?;
        let write = self
            .lakehouse
            .write(target.clone(), job.target.mode)
            .job_id(run.job_id.clone())
            .snapshot_property("medallion.job", job.name.clone());
        if let Some(snapshot_id) = write.previous_commit().await? {
            return Ok(JobReport::new(
                job,
                JobStatus::AlreadyCommitted,
                Some(snapshot_id),
                None,
                started,
            ));
        }

        let ctx = self.session();
        let mut raw_files = HashMap::new();
        for input in &job.inputs {
            match input {
                InputSpec::Table { table } => {
                    let Some(loaded) = self.lakehouse.try_load_table(&table_ident(table)?).await?
                    else {
                        anyhow::bail!(
                            "job `{}` reads table {table}, which does not exist yet; run the job that writes it first",
                            job.name
                        );
                    };
                    register_table(&ctx, &loaded, None).await?;
                }
                InputSpec::Raw { name, path, format } => {
                    let uri = raw_uri(&self.config.raw_root, path);
                    let files = list_raw_files(&ctx, &uri, *format)
                        .await
                        .with_context(|| format!("job `{}` input `{name}`", job.name))?;
                    raw_files.insert(name.clone(), files);
                }
            }
        }
        let frame = plan_job(&ctx, job, &raw_files, run).await?;
        let plan = frame
            .create_physical_plan()
            .await
            .with_context(|| format!("job `{}`: cannot plan the query", job.name))?;
        // Small unions plan one partition per branch; one writer suffices.
        let plan = if plan.output_partitioning().partition_count() > self.config.target_partitions {
            Arc::new(CoalescePartitionsExec::new(plan)) as Arc<dyn ExecutionPlan>
        } else {
            plan
        };
        let schema = plan.schema();
        let partitions = execute_stream_partitioned(plan, ctx.task_ctx())
            .with_context(|| format!("job `{}`: cannot start the query", job.name))?
            .into_iter()
            .map(|stream| progress.track(stream))
            .collect();
        let outcome = write.execute(schema, partitions).await?;
        Ok(match outcome {
            CommitOutcome::Committed {
                snapshot_id, stats, ..
            } => JobReport::new(
                job,
                JobStatus::Committed,
                Some(snapshot_id),
                Some(stats),
                started,
            ),
            CommitOutcome::AlreadyCommitted { snapshot_id } => JobReport::new(
                job,
                JobStatus::AlreadyCommitted,
                Some(snapshot_id),
                None,
                started,
            ),
        })
    }
}
