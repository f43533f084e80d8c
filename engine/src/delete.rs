//! `medallion delete`: removes the rows a predicate matches by rewriting
//! only the data files that hold such rows (copy-on-write), committed as
//! one snapshot. Readers see the table before or after, never in between.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use datafusion::datasource::listing::ListingTable;
use datafusion::physical_plan::execute_stream_partitioned;
use futures::TryStreamExt;
use iceberg::TableIdent;
use medallion_catalog::{CommitOutcome, WriteMode};

use crate::execute::Engine;
use crate::tables::{parquet_files, query_schema};

#[derive(Debug, serde::Serialize)]
pub struct DeleteReport {
    pub table: String,
    pub rows_deleted: u64,
    pub files_rewritten: usize,
    pub snapshot_id: Option<i64>,
    pub seconds: f64,
}

pub async fn delete_where(
    engine: &Engine,
    ident: &TableIdent,
    predicate: &str,
    job_id: &str,
) -> Result<DeleteReport> {
    let started = Instant::now();
    let table = engine.lakehouse.load_table(ident).await?;
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(DeleteReport {
            table: ident.to_string(),
            rows_deleted: 0,
            files_rewritten: 0,
            snapshot_id: None,
            seconds: 0.0,
        });
    };
    let files: Vec<_> = table
        .scan()
        .snapshot_id(snapshot.snapshot_id())
        .build()?
        .plan_files()
        .await?
        .try_collect()
        .await
        .with_context(|| format!("cannot list the data files of {ident}"))?;
    let schema = query_schema(table.metadata().current_schema())?;
    let ctx = engine.session();
    let over = |paths: &[&str]| -> Result<Arc<ListingTable>> {
        Ok(Arc::new(parquet_files(paths, schema.clone())?))
    };

    // Which files hold matching rows, and how many.
    let mut touched: Vec<&str> = Vec::new();
    let mut rows_deleted = 0u64;
    for file in &files {
        let frame = ctx.read_table(over(&[file.data_file_path.as_str()])?)?;
        let matches = ctx
            .parse_sql_expr(predicate, frame.schema())
            .with_context(|| format!("the predicate `{predicate}` does not fit {ident}"))?;
        let matching = frame
            .filter(matches)?
            .count()
            .await
            .with_context(|| format!("cannot evaluate `{predicate}` on {ident}"))?;
        if matching > 0 {
            touched.push(&file.data_file_path);
            rows_deleted += matching as u64;
        }
    }
    if touched.is_empty() {
        return Ok(DeleteReport {
            table: ident.to_string(),
            rows_deleted: 0,
            files_rewritten: 0,
            snapshot_id: None,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    // The rows of those files that stay: the predicate is not true for them
    // (false or unknown).
    let survivors = ctx.read_table(over(&touched)?)?;
    let keep = ctx.parse_sql_expr(
        &format!("NOT COALESCE(({predicate}), false)"),
        survivors.schema(),
    )?;
    let plan = survivors.filter(keep)?.create_physical_plan().await?;
    let output_schema = plan.schema();
    let partitions = execute_stream_partitioned(plan, ctx.task_ctx())?;
    let replaced: HashSet<String> = touched.iter().map(|p| p.to_string()).collect();
    let outcome = engine
        .lakehouse
        .write(ident.clone(), WriteMode::Append)
        .job_id(job_id)
        .snapshot_property("medallion.operation", "delete")
        .replacing_files(replaced)
        .execute(output_schema, partitions)
        .await?;
    let snapshot_id = match outcome {
        CommitOutcome::Committed { snapshot_id, .. } => snapshot_id,
        CommitOutcome::AlreadyCommitted { snapshot_id } => {
            bail!(
                "job id {job_id} already committed snapshot {snapshot_id} to {ident}; use a new job id"
            )
        }
    };
    Ok(DeleteReport {
        table: ident.to_string(),
        rows_deleted,
        files_rewritten: touched.len(),
        snapshot_id: Some(snapshot_id),
        seconds: started.elapsed().as_secs_f64(),
    })
}
