//! Running jobs: plan with DataFusion, stream every output partition into
//! Iceberg data files, commit one snapshot per job.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::physical_plan::Partitioning;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, execute_stream_partitioned,
};
use datafusion::prelude::{DataFrame, SessionContext, ident, lit};
use datafusion_distributed::DistributedExec;
use iceberg::table::Table;
use medallion_catalog::{
    CommitProperties, FilterOverwrite, Shard, ShardCommit, WriteOptions, input_read, table_ident,
    table_rows,
};
use medallion_jobs::{InputSpec, JobSpec, RawFile, RunParameters, TableRead, TargetMode, plan_job};
use tracing::Instrument;
use url::Url;

use crate::delete::{files_matching, rows_not_matching};
use crate::distributed::{NETWORK_BYTES, log_if_whole, with_worker_metrics};
use crate::engine::Engine;
use crate::maintain::run_maintenance;
use crate::progress::{JobProgress, Progress, TrackedStream};
use crate::replan::on_new_heads;
use crate::report::{JobMeasures, JobReport, JobStatus};
use crate::session::{register_provider, register_table};
use crate::sharded::{Written, committed_before};
use crate::storage::{RawListing, list_raw_files, raw_uri};
use crate::tables::appended_since;

impl Engine {
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
            // Every log line of the job carries these (`--log-format json`);
            // at error level, so no filter that keeps a line drops them.
            let span = tracing::error_span!("job", job = %job.name, table = %job.target.table, job_id = %run.job_id);
            let job_progress = span.in_scope(|| progress.job(&job.name, &job.target.table));
            self.pool.take_peak();
            let started = Instant::now();
            let result = self
                .run_job(job, run, &job_progress)
                .instrument(span.clone())
                .await;
            match result.map(|report| self.with_pool_peak(report)) {
                Ok(report) => {
                    span.in_scope(|| job_progress.finish(&report));
                    reports.push(report);
                }
                Err(e) => {
                    job_progress.fail();
                    let mut failed = JobReport::failed(job);
                    failed.seconds = started.elapsed().as_secs_f64();
                    reports.push(self.with_pool_peak(failed));
                    return (reports, Some(e.context(format!("job `{}` failed; tables of the jobs before it stay committed, {} is unchanged", job.name, job.target.table))));
                }
            }
        }
        (reports, None)
    }

    /// Runs one job: its inputs registered, its query planned and streamed
    /// into data files (with the rows `replace_where` keeps), one commit.
    pub async fn run_job(
        &self,
        job: &JobSpec,
        run: &RunParameters,
        progress: &JobProgress,
    ) -> Result<JobReport> {
        if job.target.mode == TargetMode::Maintain {
            let tasks = job.maintenance.clone().unwrap_or_default();
            return run_maintenance(self, job, &tasks, run).await;
        }
        let started = Instant::now();
        let result = on_new_heads(&format!("job `{}`", job.name), || {
            self.run_job_on_head(job, run, progress, started)
        })
        .await;
        if job.runs_distributed(run) && !self.config.workers.is_empty() {
            // datafusion-distributed re-runs no task: a worker lost mid-job
            // fails the job, before anything of it is committed.
            return result.with_context(|| {
                format!(
                    "it ran distributed, on the workers {}; nothing of it was committed: once \
                     every worker is up, re-run it with the same job id",
                    self.config
                        .workers
                        .iter()
                        .map(Url::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        result
    }

    /// Runs one (non-maintenance) job against the target's current head.
    async fn run_job_on_head(
        &self,
        job: &JobSpec,
        run: &RunParameters,
        progress: &JobProgress,
        started: Instant,
    ) -> Result<JobReport> {
        let shard = job.shard(run)?;
        let target = table_ident(&job.target.table)?;
        let target_table = self.lakehouse.try_load_table(&target).await?;
        if let Some(table) = &target_table
            && let Some(snapshot_id) = committed_before(table, job, run, shard)
        {
            let mut report = JobReport::new(
                job,
                JobStatus::AlreadyCommitted,
                Some(snapshot_id),
                None,
                started,
            );
            report.table_rows = table_rows(table, snapshot_id);
            report.shard = shard.map(|s| s.to_string());
            return Ok(report);
        }
        let ctx = self.session_for(job, run)?;
        let inputs = self
            .register_inputs(&ctx, job, run, shard, target_table.as_ref())
            .await?;
        let Wrote {
            written,
            plan,
            planned,
        } = if self.writes_on_workers(job, run, shard) {
            self.write_on_workers(&ctx, job, run, &inputs).await?
        } else {
            self.write_here(&ctx, job, run, &inputs, target_table.as_ref(), progress)
                .await?
        };
        let snapshot_id = written.snapshot_id();
        let mut report = written.report(job, shard, started);
        report.measures = JobMeasures {
            plan_seconds: Some((planned - started).as_secs_f64()),
            write_seconds: Some(planned.elapsed().as_secs_f64()),
            ..plan_measures(with_worker_metrics(plan).as_ref())
        };
        report.bytes_shuffled = report.measures.bytes_shuffled;
        report.skipped_files = inputs.skipped_files;
        // The commit's answer does not carry the new snapshot's summary; the
        // table as committed does.
        if let Some(snapshot_id) = snapshot_id {
            let committed = self.lakehouse.load_table(&target).await?;
            report.table_rows = table_rows(&committed, snapshot_id);
        }
        Ok(report)
    }

    /// Plans the job's query here and streams its rows (with the rows
    /// `replace_where` keeps) into data files that this process writes and
    /// commits.
    async fn write_here(
        &self,
        ctx: &SessionContext,
        job: &JobSpec,
        run: &RunParameters,
        inputs: &Inputs,
        target_table: Option<&Table>,
        progress: &JobProgress,
    ) -> Result<Wrote> {
        let mut output = self
            .plan_output(ctx, job, &inputs.raw_files, run, progress)
            .await?;
        let plan = output.plan.clone();
        let planned = Instant::now();
        let replaced = match (&job.target.replace_where, target_table) {
            (Some(predicate), Some(table)) => {
                let replaced = rows_replaced(ctx, job, table, predicate, &output, progress).await?;
                output.partitions.extend(replaced.staying);
                Some(replaced.overwrite)
            }
            _ => None,
        };
        let written = self
            .commit_output(job, run, &inputs.read, output, replaced)
            .await?;
        Ok(Wrote {
            written,
            plan,
            planned,
        })
    }

    /// Registers every input of the job in `ctx`: tables by name (only
    /// their new rows when the job reads `new_rows`), raw inputs as the
    /// files listed under their path, or under the paths the run gives.
    pub(crate) async fn register_inputs(
        &self,
        ctx: &SessionContext,
        job: &JobSpec,
        run: &RunParameters,
        shard: Option<Shard>,
        target: Option<&Table>,
    ) -> Result<Inputs> {
        let mut inputs = Inputs::default();
        for input in &job.inputs {
            match input {
                InputSpec::Table { table, read } => {
                    let mark = self
                        .register_table_input(ctx, job, table, *read, target)
                        .await?;
                    inputs.read.extend(mark);
                }
                InputSpec::Raw { name, path, format } => {
                    let paths = run
                        .raw_inputs
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| vec![path.clone()]);
                    let mut listing = RawListing::default();
                    for path in &paths {
                        let uri = raw_uri(&self.config.raw_root, path);
                        let listed = list_raw_files(ctx, &uri, *format)
                            .await
                            .with_context(|| format!("job `{}` input `{name}`", job.name))?;
                        listing.files.extend(listed.files);
                        listing.skipped.extend(listed.skipped);
                    }
                    if let Some(shard) = shard {
                        listing.files.retain(|file| shard.takes(&file.uri));
                        tracing::info!(job = %job.name, input = %name, %shard, files = listing.files.len(), "loading this shard's raw files");
                    }
                    if !listing.skipped.is_empty() {
                        tracing::warn!(
                            job = %job.name,
                            input = %name,
                            "not loading {} objects at {}, which are not {} files or lie in a subfolder: {}",
                            listing.skipped.len(),
                            paths.join(", "),
                            format.extension(),
                            listing.skipped.join(", ")
                        );
                    }
                    inputs.skipped_files.extend(listing.skipped);
                    inputs.raw_files.insert(name.clone(), listing.files);
                }
            }
        }
        Ok(inputs)
    }

    /// Registers one input table; returns the table and which of its
    /// snapshots this run read.
    async fn register_table_input(
        &self,
        ctx: &SessionContext,
        job: &JobSpec,
        table: &str,
        read: TableRead,
        target: Option<&Table>,
    ) -> Result<Option<(String, i64)>> {
        let Some(loaded) = self.lakehouse.try_load_table(&table_ident(table)?).await? else {
            anyhow::bail!(
                "job `{}` reads table {table}, which does not exist yet; run the job that writes it first",
                job.name
            );
        };
        let since = match (read, target) {
            (TableRead::NewRows, Some(target)) => input_read(target, table),
            _ => None,
        };
        let provider = match since {
            Some(since) => appended_since(&loaded, since).await?,
            None => None,
        };
        match provider {
            Some(provider) => register_provider(ctx, loaded.identifier(), provider)?,
            None => register_table(ctx, &loaded, None).await?,
        }
        Ok(loaded
            .metadata()
            .current_snapshot_id()
            .map(|snapshot_id| (table.to_string(), snapshot_id)))
    }

    /// Plans the job's query and starts it: one stream per writer, each
    /// counted by the job's progress.
    async fn plan_output(
        &self,
        ctx: &SessionContext,
        job: &JobSpec,
        raw_files: &HashMap<String, Vec<RawFile>>,
        run: &RunParameters,
        progress: &JobProgress,
    ) -> Result<Output> {
        let plan = physical_plan(ctx, job, raw_files, run).await?;
        // Raw scans plan a partition per file range (many of them empty: a
        // range without a row group), and a union of scans (raw files with
        // different columns) adds up theirs: deal the batches out to one
        // writer per core, so encoding stays parallel without a half-empty
        // data file per range. A distributed plan's rows arrive in one
        // stream: dealt out too, or one core encodes them all into one file
        // (which a later distributed job could not split among workers).
        let writers = self.config.target_partitions;
        let partitions = plan.output_partitioning().partition_count();
        let one_stream = plan.as_any().is::<DistributedExec>() && partitions < writers;
        let plan = if partitions > writers || one_stream {
            Arc::new(
                RepartitionExec::try_new(plan, Partitioning::RoundRobinBatch(writers))
                    .with_context(|| format!("job `{}`: cannot plan the writers", job.name))?,
            ) as Arc<dyn ExecutionPlan>
        } else {
            plan
        };
        let schema = plan.schema();
        let partitions = execute_stream_partitioned(plan.clone(), ctx.task_ctx())
            .with_context(|| format!("job `{}`: cannot start the query", job.name))?
            .into_iter()
            .map(|stream| progress.track(stream))
            .collect();
        Ok(Output {
            schema,
            partitions,
            plan,
        })
    }

    /// Streams the output into data files and commits them as one snapshot
    /// of the target, in the job's mode, with what the run read recorded.
    /// One shard of a `commit: single` job stages its files instead, and
    /// the last shard to stage commits them all.
    async fn commit_output(
        &self,
        job: &JobSpec,
        run: &RunParameters,
        inputs_read: &[(String, i64)],
        output: Output,
        replaced: Option<FilterOverwrite>,
    ) -> Result<Written> {
        let shard = job.shard(run)?;
        let single = job.execution.commit == ShardCommit::Single;
        let options = write_options(job, run, shard.filter(|_| !single), inputs_read);
        let target = table_ident(&job.target.table)?;
        let Output {
            schema, partitions, ..
        } = output;
        Ok(Written::Committed(match job.target.mode.write_mode() {
            Some(mode) => {
                let mut write = self.lakehouse.write(target, mode).with_options(options);
                if let Some(shard) = shard.filter(|_| single) {
                    return Ok(Written::of_shard(
                        write.execute_shard(shard, schema, partitions).await?,
                    ));
                }
                if let Some(replaced) = replaced {
                    write = write.replacing_files(replaced);
                }
                write.execute(schema, partitions).await?
            }
            None if job.target.mode == TargetMode::Merge => {
                let mut merge = self
                    .lakehouse
                    .merge(target, job.target.keys.clone())
                    .with_options(options);
                if let Some(flag) = &job.target.delete_when {
                    merge = merge.delete_when(flag.clone());
                }
                merge.execute(schema, partitions).await?
            }
            None => unreachable!("maintenance jobs return before planning"),
        }))
    }
}

impl Engine {
    /// The job's report with the memory pool's peak while it ran.
    fn with_pool_peak(&self, mut report: JobReport) -> JobReport {
        report.measures.pool_peak_bytes = Some(self.pool.take_peak() as u64);
        report
    }
}

/// What the job's write carries: its job id and what it read, the
/// table's layout and schema policy; `shard` when each shard commits its own.
pub(crate) fn write_options(
    job: &JobSpec,
    run: &RunParameters,
    shard: Option<Shard>,
    inputs_read: &[(String, i64)],
) -> WriteOptions {
    let mut commit = CommitProperties::default()
        .job_id(run.job_id.clone())
        .job_name(job.name.clone());
    if let Some(shard) = shard {
        commit = commit.shard(shard);
    }
    WriteOptions {
        commit: inputs_read
            .iter()
            .fold(commit, |commit, (input, id)| commit.input_read(input, *id)),
        partition_by: job.target.partition_fields(),
        on_schema_change: job.target.on_schema_change,
        row_level: job.target.write_mode,
        format_version: job.target.format_version,
    }
}

/// The job's query as DataFusion (and, distributed, the planner of its
/// stages) plans it in `ctx`: what `run` executes and `explain` prints.
pub(crate) async fn physical_plan(
    ctx: &SessionContext,
    job: &JobSpec,
    raw_files: &HashMap<String, Vec<RawFile>>,
    run: &RunParameters,
) -> Result<Arc<dyn ExecutionPlan>> {
    let plan = plan_job(ctx, job, raw_files, run)
        .await?
        .create_physical_plan()
        .await
        .with_context(|| format!("job `{}`: cannot plan the query", job.name))?;
    if job.runs_distributed(run) {
        log_if_whole(&job.name, &plan);
    }
    Ok(plan)
}

/// What a job's plan read (rows out of its scans, the leaves; the bytes
/// its Parquet scans fetched), spilled and sent between stages, summed over
/// every operator (of every stage, on whichever worker it ran).
fn plan_measures(plan: &dyn ExecutionPlan) -> JobMeasures {
    let mut measures = JobMeasures {
        rows_read: Some(0),
        bytes_read: Some(0),
        spilled_bytes: Some(0),
        ..JobMeasures::default()
    };
    let mut pending = vec![plan];
    while let Some(node) = pending.pop() {
        pending.extend(node.children().into_iter().map(|child| child.as_ref()));
        let Some(metrics) = node.metrics() else {
            continue;
        };
        let add = |total: &mut Option<u64>, value: Option<usize>| {
            *total = total.map(|t| t + value.unwrap_or(0) as u64);
        };
        if node.children().is_empty() {
            add(&mut measures.rows_read, metrics.output_rows());
            add(
                &mut measures.bytes_read,
                metrics.sum_by_name("bytes_scanned").map(|v| v.as_usize()),
            );
        }
        add(&mut measures.spilled_bytes, metrics.spilled_bytes());
        // A custom metric, which `sum_by_name` leaves out.
        for sent in metrics.iter().filter(|m| m.value().name() == NETWORK_BYTES) {
            *measures.bytes_shuffled.get_or_insert(0) += sent.value().as_usize() as u64;
        }
    }
    measures
}

/// What registering a job's inputs found.
#[derive(Default)]
pub(crate) struct Inputs {
    /// The files of each raw input, by input name.
    pub(crate) raw_files: HashMap<String, Vec<RawFile>>,
    /// Objects under raw inputs that are not loaded.
    skipped_files: Vec<String>,
    /// Which snapshot of each input table this run read; the next run of
    /// the job reads only what was appended after it.
    pub(crate) read: Vec<(String, i64)>,
}

/// A running query on its way to the writers.
struct Output {
    schema: SchemaRef,
    partitions: Vec<TrackedStream>,
    /// The plan, whose metrics say what it read once it ran.
    plan: Arc<dyn ExecutionPlan>,
}

/// What a job's write did, and the plan that fed it (whose metrics say
/// what it read) with when its planning ended.
pub(crate) struct Wrote {
    pub(crate) written: Written,
    pub(crate) plan: Arc<dyn ExecutionPlan>,
    pub(crate) planned: Instant,
}

/// What `replace_where` replaces: the files holding rows the predicate
/// matches (and how a file committed meanwhile is judged), and the streams
/// of their rows that stay.
struct Replaced {
    overwrite: FilterOverwrite,
    staying: Vec<TrackedStream>,
}

/// Overwrite by filter: the files holding rows the predicate matches are
/// replaced by the new rows plus their rows that stay.
async fn rows_replaced(
    ctx: &SessionContext,
    job: &JobSpec,
    table: &Table,
    predicate: &str,
    output: &Output,
    progress: &JobProgress,
) -> Result<Replaced> {
    let matching = files_matching(ctx, table, predicate)
        .await
        .with_context(|| format!("job `{}`: replace_where", job.name))?;
    let mut staying = Vec::new();
    if !matching.files.is_empty() {
        let rows = rows_not_matching(ctx, table, &matching.files, predicate)?;
        let rows = as_output_columns(rows, job, &output.schema)?
            .create_physical_plan()
            .await?;
        staying.extend(
            execute_stream_partitioned(rows, ctx.task_ctx())?
                .into_iter()
                .map(|stream| progress.track(stream)),
        );
    }
    Ok(Replaced {
        overwrite: matching.overwrite(),
        staying,
    })
}

/// The rows that stay go through the write as the output's columns: a
/// column only the table has would lose their values, so it is refused; a
/// column only the output has is null in them.
fn as_output_columns(staying: DataFrame, job: &JobSpec, schema: &SchemaRef) -> Result<DataFrame> {
    let lost: Vec<&str> = staying
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| schema.index_of(name).is_err())
        .collect();
    if !lost.is_empty() {
        anyhow::bail!(
            "job `{}`: replace_where keeps the other rows of {}, so the output needs every column of the table; it lacks {}",
            job.name,
            job.target.table,
            lost.join(", ")
        );
    }
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        columns.push(
            if staying
                .schema()
                .has_column_with_unqualified_name(field.name())
            {
                ident(field.name())
            } else {
                lit(ScalarValue::try_from(field.data_type())?).alias(field.name())
            },
        );
    }
    Ok(staying.select(columns)?)
}
