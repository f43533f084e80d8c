//! Maintenance jobs (`target.mode: maintain`): compact, expire snapshots
//! and remove orphan files on a schedule, like any other job.

use std::time::Instant;

use anyhow::{Context, Result};
use medallion_catalog::{ExpireOptions, OrphanOptions, table_ident};
use medallion_jobs::{JobSpec, MaintenanceSpec, RunParameters, parse_age};

use crate::engine::Engine;
use crate::report::{JobReport, JobStatus, MaintenanceOutcome};

pub async fn run_maintenance(
    engine: &Engine,
    job: &JobSpec,
    tasks: &MaintenanceSpec,
    run: &RunParameters,
) -> Result<JobReport> {
    let started = Instant::now();
    let ident = table_ident(&job.target.table)?;
    let age = |text: &str| parse_age(text).map_err(anyhow::Error::msg);
    let mut outcome = MaintenanceOutcome::default();
    if tasks.compact {
        outcome.compact = Some(engine.lakehouse.compact(&ident, &run.job_id).await?);
    }
    if tasks.rewrite_manifests {
        outcome.rewrite_manifests = Some(
            engine
                .lakehouse
                .rewrite_manifests(&ident, &run.job_id)
                .await?,
        );
    }
    if let Some(expire) = &tasks.expire_snapshots {
        let options = ExpireOptions {
            retain_last: expire.retain_last,
            older_than: age(&expire.older_than)?,
        };
        outcome.expire_snapshots = Some(
            engine
                .lakehouse
                .expire_snapshots(&ident, &options)
                .await
                .with_context(|| format!("job `{}`", job.name))?,
        );
    }
    if let Some(orphans) = &tasks.remove_orphan_files {
        let options = OrphanOptions {
            older_than: age(&orphans.older_than)?,
            dry_run: false,
            force_unsafe_age: orphans.force_unsafe_age,
        };
        outcome.remove_orphan_files = Some(
            engine
                .lakehouse
                .remove_orphan_files(&ident, &options)
                .await
                .with_context(|| format!("job `{}`", job.name))?,
        );
    }
    let table = engine.lakehouse.load_table(&ident).await?;
    let mut report = JobReport::new(
        job,
        JobStatus::Committed,
        table.metadata().current_snapshot_id(),
        None,
        started,
    );
    report.table_rows = report
        .snapshot_id
        .and_then(|id| medallion_catalog::table_rows(&table, id));
    report.maintenance = Some(outcome);
    Ok(report)
}
