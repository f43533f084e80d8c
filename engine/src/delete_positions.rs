//! A merge-on-read `delete --where`: where in each matching data file the
//! rows the predicate is true for are, by position from the file's first
//! row, for the catalog to write as position deletes. Each file is read
//! whole (its existing deletes not applied, so that a row's place in the
//! stream is its place in the file) in one partition, in file order; only
//! the predicate's value is kept per row.

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use arrow::array::AsArray;
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::{ExecutionPlanProperties, execute_stream};
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use iceberg::scan::FileScanTask;
use iceberg::table::Table;
use medallion_catalog::DeletedPositions;

use crate::tables::data_files_table;

/// The positions of the rows of each file that `predicate` is true for.
pub async fn matching_positions(
    ctx: &SessionContext,
    table: &Table,
    files: &[FileScanTask],
    predicate: &str,
) -> Result<Vec<DeletedPositions>> {
    let ctx = in_file_order(ctx);
    let mut matched = Vec::with_capacity(files.len());
    for file in files {
        let positions = positions_in(&ctx, table, file, predicate)
            .await
            .with_context(|| format!("cannot evaluate `{predicate}` on {}", file.data_file_path))?;
        matched.push(DeletedPositions {
            task: file.clone(),
            positions,
        });
    }
    Ok(matched)
}

/// The same session, scanning each file in one partition from its start.
fn in_file_order(ctx: &SessionContext) -> SessionContext {
    let config = ctx
        .copied_config()
        .with_target_partitions(1)
        .with_repartition_file_scans(false);
    let state = SessionStateBuilder::new_from_existing(ctx.state())
        .with_config(config)
        .build();
    SessionContext::new_with_state(state)
}

async fn positions_in(
    ctx: &SessionContext,
    table: &Table,
    file: &FileScanTask,
    predicate: &str,
) -> Result<BTreeSet<u64>> {
    let mut every_row = file.clone();
    every_row.deletes.clear();
    let schema = table.metadata().current_schema();
    let rows = ctx.read_table(Arc::new(data_files_table(table, &[every_row], schema)?))?;
    let matches = ctx.parse_sql_expr(&format!("COALESCE(({predicate}), false)"), rows.schema())?;
    let plan = rows.select(vec![matches])?.create_physical_plan().await?;
    ensure!(
        plan.output_partitioning().partition_count() == 1,
        "the scan of one file was split; its rows' positions are unknown"
    );
    let mut batches = execute_stream(plan, ctx.task_ctx())?;
    let mut positions = BTreeSet::new();
    let mut first = 0u64;
    while let Some(batch) = batches.try_next().await? {
        let matched = batch.column(0).as_boolean();
        positions.extend(
            matched
                .iter()
                .enumerate()
                .filter(|(_, m)| *m == Some(true))
                .map(|(row, _)| first + row as u64),
        );
        first += batch.num_rows() as u64;
    }
    Ok(positions)
}
