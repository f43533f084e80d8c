//! `medallion delete`: removes the rows a predicate matches by rewriting
//! only the data files that hold such rows (copy-on-write), committed as
//! one snapshot. Readers see the table before or after, never in between.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use datafusion::physical_plan::execute_stream_partitioned;
use datafusion::prelude::{DataFrame, SessionContext};
use iceberg::TableIdent;
use iceberg::scan::FileScanTask;
use iceberg::table::Table;
use medallion_catalog::{CommitOutcome, CommitProperties, FilterOverwrite, live_files};

use crate::conflict_filter::could_match;
use crate::engine::Engine;
use crate::replan::on_new_heads;
use crate::tables::data_files_table;

#[derive(Debug, serde::Serialize)]
pub struct DeleteReport {
    pub table: String,
    pub rows_deleted: u64,
    pub files_rewritten: usize,
    pub snapshot_id: Option<i64>,
    pub seconds: f64,
}

/// Deletes the rows `predicate` matches, planned again on the new head
/// whenever a concurrent commit made the plan stale.
pub async fn delete_where(
    engine: &Engine,
    ident: &TableIdent,
    predicate: &str,
    job_id: &str,
) -> Result<DeleteReport> {
    let started = Instant::now();
    on_new_heads("delete", || {
        delete_planned_on_head(engine, ident, predicate, job_id, started)
    })
    .await
}

async fn delete_planned_on_head(
    engine: &Engine,
    ident: &TableIdent,
    predicate: &str,
    job_id: &str,
    started: Instant,
) -> Result<DeleteReport> {
    let table = engine.lakehouse.load_table(ident).await?;
    let ctx = engine.session();
    let matching = files_matching(&ctx, &table, predicate).await?;
    if matching.files.is_empty() {
        return Ok(DeleteReport {
            table: ident.to_string(),
            rows_deleted: 0,
            files_rewritten: 0,
            snapshot_id: None,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
    let survivors = rows_not_matching(&ctx, &table, &matching.files, predicate)?;
    let plan = survivors.create_physical_plan().await?;
    let output_schema = plan.schema();
    let partitions = execute_stream_partitioned(plan, ctx.task_ctx())?;
    let outcome = engine
        .lakehouse
        .delete_rows(
            ident,
            matching.overwrite(),
            CommitProperties::default().job_id(job_id),
            output_schema,
            partitions,
        )
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
        rows_deleted: matching.rows,
        files_rewritten: matching.files.len(),
        snapshot_id: Some(snapshot_id),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The live data files holding rows a predicate is true for.
pub struct MatchingFiles {
    pub files: Vec<FileScanTask>,
    /// Rows of those files the predicate is true for.
    pub rows: u64,
    /// The snapshot they were chosen on.
    chosen_on: Option<i64>,
    /// Which files could hold matching rows, by their bounds.
    could_match: iceberg::expr::Predicate,
}

impl MatchingFiles {
    /// What replacing these files commits: the files, and how a file
    /// committed meanwhile is judged.
    pub fn overwrite(&self) -> FilterOverwrite {
        FilterOverwrite {
            replaced: self
                .files
                .iter()
                .map(|f| f.data_file_path.clone())
                .collect(),
            chosen_on: self.chosen_on,
            could_match: self.could_match.clone(),
        }
    }
}

pub async fn files_matching(
    ctx: &SessionContext,
    table: &Table,
    predicate: &str,
) -> Result<MatchingFiles> {
    let ident = table.identifier();
    let files = live_files(table).await?;
    let schema = table.metadata().current_schema();
    let parse = |frame: &DataFrame| {
        ctx.parse_sql_expr(predicate, frame.schema())
            .with_context(|| format!("the predicate `{predicate}` does not fit {ident}"))
    };
    let all = ctx.read_table(Arc::new(data_files_table(table, &[], schema)?))?;
    let mut matching = MatchingFiles {
        files: Vec::new(),
        rows: 0,
        chosen_on: table.metadata().current_snapshot_id(),
        could_match: could_match(&parse(&all)?, all.schema()),
    };
    for file in files {
        let frame = ctx.read_table(Arc::new(data_files_table(
            table,
            std::slice::from_ref(&file),
            schema,
        )?))?;
        let matches = parse(&frame)?;
        let count = frame
            .filter(matches)?
            .count()
            .await
            .with_context(|| format!("cannot evaluate `{predicate}` on {ident}"))?;
        if count > 0 {
            matching.files.push(file);
            matching.rows += count as u64;
        }
    }
    Ok(matching)
}

/// The rows of these files the predicate is not true for (false or unknown).
pub fn rows_not_matching(
    ctx: &SessionContext,
    table: &Table,
    files: &[FileScanTask],
    predicate: &str,
) -> Result<DataFrame> {
    let rows = ctx.read_table(Arc::new(data_files_table(
        table,
        files,
        table.metadata().current_schema(),
    )?))?;
    let keep = ctx.parse_sql_expr(
        &format!("NOT COALESCE(({predicate}), false)"),
        rows.schema(),
    )?;
    Ok(rows.filter(keep)?)
}
