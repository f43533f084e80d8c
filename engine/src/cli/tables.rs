//! `tables`, `history`, `delete` and `rollback`: what the lakehouse holds,
//! how each table got there, and changing a table's rows or going back.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use clap::Args;
use medallion_catalog::{
    CatalogError, RollbackPlan, RowLevelMode, SnapshotInfo, TableInfo, snapshot_infos, table_ident,
};

use super::job_id::JobIdArg;
use super::output::{Output, Report, pretty};
use crate::delete::DeleteReport;
use crate::engine::Engine;
use crate::report::{human_bytes, render_table};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Table name, e.g. bronze.orders.
    table: String,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    table: String,
    /// SQL predicate over the table's columns; rows where it is true go.
    #[arg(long = "where", value_name = "PREDICATE")]
    predicate: String,
    /// copy-on-write rewrites the files holding matching rows; merge-on-read
    /// keeps them and writes position deletes (cheap now, folded in by
    /// `compact` later). Default: the table's `write.delete.mode`, else
    /// copy-on-write.
    #[arg(long, value_name = "MODE", value_parser = parse_row_level_mode)]
    write_mode: Option<RowLevelMode>,
    #[command(flatten)]
    job_id: JobIdArg,
}

fn parse_row_level_mode(value: &str) -> std::result::Result<RowLevelMode, String> {
    match value {
        "copy-on-write" => Ok(RowLevelMode::CopyOnWrite),
        "merge-on-read" => Ok(RowLevelMode::MergeOnRead),
        other => Err(format!(
            "`{other}` is neither copy-on-write nor merge-on-read"
        )),
    }
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    table: String,
    /// Snapshot id from `medallion history`; must be an ancestor of the current one.
    #[arg(long = "to", value_name = "SNAPSHOT_ID")]
    snapshot_id: i64,
    /// Roll back only if this is still the current snapshot (the `*` line
    /// of `medallion history`): a commit that landed since is never
    /// discarded unseen.
    #[arg(long, value_name = "SNAPSHOT_ID")]
    expect_head: Option<i64>,
    /// Roll back even though rows added by the later snapshots disappear
    /// (asked for on a terminal).
    #[arg(long)]
    yes: bool,
}

/// Each table with its current snapshot: name, snapshot id, rows (those
/// deleted by position deletes left out), the deleted, files, size and time.
pub struct TablesReport {
    rows: Vec<[String; 7]>,
}

impl Report for TablesReport {
    fn text(&self) -> String {
        if self.rows.is_empty() {
            return "no tables yet; `medallion demo` creates the reference tables\n".into();
        }
        render_table(
            &[
                "table",
                "snapshot id",
                "rows",
                "deleted",
                "files",
                "size",
                "updated (UTC)",
            ],
            &self.rows,
        )
    }

    fn json(&self) -> Result<String> {
        let json: Vec<_> = self
            .rows
            .iter()
            .map(|r| serde_json::json!({"table": r[0], "snapshot_id": r[1], "rows": r[2], "deletes": r[3], "files": r[4], "size": r[5], "updated": r[6]}))
            .collect();
        pretty(&json)
    }
}

/// The snapshots of one table, oldest first.
pub struct HistoryReport {
    infos: Vec<SnapshotInfo>,
}

impl Report for HistoryReport {
    fn text(&self) -> String {
        let count = |n: Option<u64>| n.map(|r| r.to_string()).unwrap_or_else(|| "-".into());
        let rows: Vec<[String; 7]> = self
            .infos
            .iter()
            .map(|s| {
                [
                    format!("{}{}", s.snapshot_id, if s.is_current { " *" } else { "" }),
                    format_ms(s.timestamp_ms),
                    s.operation.clone(),
                    s.job_id.clone().unwrap_or_else(|| "-".into()),
                    count(s.added_records),
                    count(s.added_position_deletes),
                    count(s.total_records),
                ]
            })
            .collect();
        render_table(
            &[
                "snapshot id",
                "committed (UTC)",
                "operation",
                "job id",
                "rows added",
                "deleted by position",
                "rows in files",
            ],
            &rows,
        )
    }

    fn json(&self) -> Result<String> {
        pretty(&self.infos)
    }
}

impl Report for DeleteReport {
    fn text(&self) -> String {
        match self.snapshot_id {
            Some(snapshot_id) if self.delete_files_written > 0 => format!(
                "deleted {} rows from {} by position ({} delete files, no data file rewritten) \
                 in snapshot {snapshot_id} ({:.2}s)\n",
                self.rows_deleted, self.table, self.delete_files_written, self.seconds
            ),
            Some(snapshot_id) => format!(
                "deleted {} rows from {} ({} files rewritten) in snapshot {snapshot_id} ({:.2}s)\n",
                self.rows_deleted, self.table, self.files_rewritten, self.seconds
            ),
            None => format!("no rows of {} match; nothing changed\n", self.table),
        }
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

/// What a rollback takes out of the table's current history, printed
/// before it is done.
struct Discarding<'a>(&'a RollbackPlan);

impl Report for Discarding<'_> {
    fn text(&self) -> String {
        let plan = self.0;
        if plan.discarded.is_empty() {
            return String::new();
        }
        let rows: Vec<[String; 4]> = plan
            .discarded
            .iter()
            .map(|s| {
                [
                    s.snapshot_id.to_string(),
                    s.operation.clone(),
                    s.job_id.clone().unwrap_or_else(|| "-".into()),
                    s.added_records
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        format!(
            "rolling {} back to snapshot {} takes out {} later snapshot(s), {} rows added:\n{}",
            plan.table,
            plan.to,
            plan.discarded.len(),
            plan.rows_added(),
            render_table(&["snapshot id", "operation", "job id", "rows added"], &rows)
        )
    }
}

/// A table made to be at an earlier snapshot again, and what that took
/// out of its history.
pub struct RolledBack {
    plan: RollbackPlan,
}

impl Report for RolledBack {
    fn text(&self) -> String {
        let plan = &self.plan;
        format!(
            "{} is at snapshot {}; {} later snapshot(s) with {} added rows are out of its history\n",
            plan.table,
            plan.to,
            plan.discarded.len(),
            plan.rows_added()
        )
    }

    fn json(&self) -> Result<String> {
        let plan = &self.plan;
        pretty(&serde_json::json!({
            "table": plan.table,
            "snapshot_id": plan.to,
            "previous_snapshot_id": plan.head,
            "discarded": plan.discarded,
            "rows_discarded": plan.rows_added(),
        }))
    }
}

/// The position deletes other engines wrote into the table, or `-`.
fn deletes(info: &TableInfo) -> String {
    match info.delete_files {
        0 => "-".into(),
        1 => format!("{} rows in 1 file", info.position_deletes),
        files => format!("{} rows in {files} files", info.position_deletes),
    }
}

pub async fn list(engine: &Engine) -> Result<TablesReport> {
    let mut rows = Vec::new();
    for ident in engine.lakehouse.list_tables().await? {
        let info = TableInfo::of(&engine.lakehouse.load_table(&ident).await?);
        rows.push([
            ident.to_string(),
            info.snapshot_id
                .map(|id| id.to_string())
                .unwrap_or_else(|| "-".into()),
            info.live_rows().to_string(),
            deletes(&info),
            info.data_files.to_string(),
            human_bytes(info.bytes),
            info.timestamp_ms
                .map(format_ms)
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    Ok(TablesReport { rows })
}

pub async fn history(engine: &Engine, args: HistoryArgs) -> Result<HistoryReport> {
    let table = engine
        .lakehouse
        .load_table(&table_ident(&args.table)?)
        .await?;
    Ok(HistoryReport {
        infos: snapshot_infos(&table),
    })
}

pub async fn delete(engine: &Engine, args: DeleteArgs) -> Result<DeleteReport> {
    let ident = table_ident(&args.table)?;
    let job_id = args.job_id.or_new();
    let delete = crate::delete::DeleteWhere {
        ident: &ident,
        predicate: &args.predicate,
        job_id: &job_id,
        mode: args.write_mode,
    };
    crate::delete::delete_where(engine, &delete).await
}

/// Plans the rollback, says what it takes out, and does it only on the
/// head it was planned on (and `--expect-head`, if given).
pub async fn rollback(engine: &Engine, args: RollbackArgs, out: &Output) -> Result<RolledBack> {
    let ident = table_ident(&args.table)?;
    let plan = engine
        .lakehouse
        .plan_rollback(&ident, args.snapshot_id)
        .await?;
    if let Some(expected) = args.expect_head
        && plan.head != Some(expected)
    {
        return Err(CatalogError::HeadMoved {
            table: ident,
            expected: expected.to_string(),
        }
        .into());
    }
    out.note(&Discarding(&plan));
    let rows = plan.rows_added();
    if rows > 0 && !args.yes && std::io::stdin().is_terminal() {
        bail!(
            "rolling {} back to snapshot {} would make the {rows} rows those snapshots added \
             disappear; add --yes to roll back anyway",
            plan.table,
            plan.to
        );
    }
    engine.lakehouse.rollback(&ident, &plan).await?;
    Ok(RolledBack { plan })
}

fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| ms.to_string())
}
