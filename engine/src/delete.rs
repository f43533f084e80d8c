//! `medallion delete`: removes the rows a predicate matches by rewriting
//! only the data files that hold such rows (copy-on-write), or by position
//! deletes beside them (merge-on-read, `delete_positions.rs`), committed as
//! one snapshot. Readers see the table before or after, never in between.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use datafusion::physical_plan::execute_stream_partitioned;
use datafusion::prelude::{DataFrame, SessionContext};
use iceberg::TableIdent;
use iceberg::scan::FileScanTask;
use iceberg::table::Table;
use medallion_catalog::{
    CommitOutcome, CommitProperties, FilterOverwrite, RowLevelMode, RowLevelOperation, live_files,
};

use crate::conflict_filter::could_match;
use crate::delete_positions::matching_positions;
use crate::engine::Engine;
use crate::replan::on_new_heads;
use crate::tables::data_files_table;

#[derive(Debug, serde::Serialize)]
pub struct DeleteReport {
    pub table: String,
    pub rows_deleted: u64,
    pub files_rewritten: usize,
    /// Merge-on-read: the position delete files written instead.
    pub delete_files_written: usize,
    pub snapshot_id: Option<i64>,
    pub seconds: f64,
}

/// One `delete --where`: the table, the predicate, the job id, and the
/// mode (`None`: the table's `write.delete.mode`).
pub struct DeleteWhere<'a> {
    pub ident: &'a TableIdent,
    pub predicate: &'a str,
    pub job_id: &'a str,
    pub mode: Option<RowLevelMode>,
}

/// Deletes the rows `predicate` matches, planned again on the new head
/// whenever a concurrent commit made the plan stale.
pub async fn delete_where(engine: &Engine, delete: &DeleteWhere<'_>) -> Result<DeleteReport> {
    let started = Instant::now();
    on_new_heads("delete", || delete_planned_on_head(engine, delete, started)).await
}

async fn delete_planned_on_head(
    engine: &Engine,
    delete: &DeleteWhere<'_>,
    started: Instant,
) -> Result<DeleteReport> {
    let DeleteWhere {
        ident, predicate, ..
    } = *delete;
    let table = engine.lakehouse.load_table(ident).await?;
    let ctx = engine.session();
    let matching = files_matching(&ctx, &table, predicate).await?;
    let mut report = DeleteReport {
        table: ident.to_string(),
        rows_deleted: 0,
        files_rewritten: 0,
        delete_files_written: 0,
        snapshot_id: None,
        seconds: 0.0,
    };
    if !matching.files.is_empty() {
        let properties = CommitProperties::default().job_id(delete.job_id);
        let mode = RowLevelMode::for_table(delete.mode, &table, RowLevelOperation::Delete);
        let outcome = match mode {
            RowLevelMode::CopyOnWrite => {
                report.files_rewritten = matching.files.len();
                rewrite_files(engine, &ctx, &table, &matching, delete, properties).await?
            }
            RowLevelMode::MergeOnRead => {
                let matched = matching_positions(&ctx, &table, &matching.files, predicate).await?;
                let chosen = matching.overwrite();
                let lakehouse = &engine.lakehouse;
                lakehouse
                    .delete_positions(ident, chosen, properties, matched)
                    .await?
            }
        };
        if let (RowLevelMode::MergeOnRead, CommitOutcome::Committed { stats, .. }) =
            (mode, &outcome)
        {
            report.delete_files_written = stats.files;
        }
        report.snapshot_id = Some(committed(outcome, delete)?);
        report.rows_deleted = matching.rows;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Copy-on-write: the matching files' other rows replace them.
async fn rewrite_files(
    engine: &Engine,
    ctx: &SessionContext,
    table: &Table,
    matching: &MatchingFiles,
    delete: &DeleteWhere<'_>,
    properties: CommitProperties,
) -> Result<CommitOutcome> {
    let survivors = rows_not_matching(ctx, table, &matching.files, delete.predicate)?;
    let plan = survivors.create_physical_plan().await?;
    let output_schema = plan.schema();
    let partitions = execute_stream_partitioned(plan, ctx.task_ctx())?;
    let overwrite = matching.overwrite();
    Ok(engine
        .lakehouse
        .delete_rows(
            delete.ident,
            overwrite,
            properties,
            output_schema,
            partitions,
        )
        .await?)
}

fn committed(outcome: CommitOutcome, delete: &DeleteWhere<'_>) -> Result<i64> {
    match outcome {
        CommitOutcome::Committed { snapshot_id, .. } => Ok(snapshot_id),
        CommitOutcome::AlreadyCommitted { snapshot_id } => bail!(
            "job id {} already committed snapshot {snapshot_id} to {}; use a new job id",
            delete.job_id,
            delete.ident
        ),
    }
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
