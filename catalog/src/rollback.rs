//! `rollback`: make an ancestor snapshot current again, in one commit that
//! asserts the head it was planned on. The plan says first what the
//! rollback takes out of the current history (the snapshots after the
//! target, their job ids and rows), and the commit lands only on the head
//! that plan was made on: a commit that arrived after the operator looked
//! is never discarded unseen.

use iceberg::spec::{MAIN_BRANCH, Operation, SnapshotReference, SnapshotRetention};
use iceberg::{ErrorKind, TableIdent, TableUpdate};

use crate::connection::Lakehouse;
use crate::error::{CatalogError, Context, Result};
use crate::history::{SnapshotInfo, in_lineage, lineage, snapshot_infos};
use crate::snapshot::on_current_head;

/// What rolling a table back to a snapshot takes out of its history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RollbackPlan {
    pub table: String,
    /// The snapshot that becomes current.
    pub to: i64,
    /// The current snapshot the plan was made on; the rollback commits only
    /// while it is still current.
    pub head: Option<i64>,
    /// The snapshots after `to` in the current history, newest first.
    pub discarded: Vec<SnapshotInfo>,
}

impl RollbackPlan {
    /// Rows the discarded snapshots added, which readers will no longer
    /// see (a compaction's copies of rows are not counted).
    pub fn rows_added(&self) -> u64 {
        self.discarded
            .iter()
            .filter(|s| s.operation != Operation::Replace.as_str())
            .filter_map(|s| s.added_records)
            .sum()
    }
}

impl Lakehouse {
    /// What rolling `ident` back to `snapshot_id` would take out of its
    /// current history. Only ancestors of the current snapshot qualify, so
    /// a rollback never resurrects a branch of history that was itself
    /// rolled back.
    pub async fn plan_rollback(
        &self,
        ident: &TableIdent,
        snapshot_id: i64,
    ) -> Result<RollbackPlan> {
        let table = self.load_table(ident).await?;
        if !in_lineage(&table, snapshot_id) {
            return Err(CatalogError::NotInHistory {
                table: ident.clone(),
                snapshot_id,
            });
        }
        let after: Vec<i64> = lineage(&table)
            .map(|s| s.snapshot_id())
            .take_while(|id| *id != snapshot_id)
            .collect();
        let mut infos = snapshot_infos(&table);
        infos.retain(|s| after.contains(&s.snapshot_id));
        infos.sort_by_key(|s| after.iter().position(|id| *id == s.snapshot_id));
        Ok(RollbackPlan {
            table: ident.to_string(),
            to: snapshot_id,
            head: table.metadata().current_snapshot_id(),
            discarded: infos,
        })
    }

    /// Carries out `plan`, only while its head is still the current
    /// snapshot; otherwise nothing changes.
    pub async fn rollback(&self, ident: &TableIdent, plan: &RollbackPlan) -> Result<()> {
        let table = self.load_table(ident).await?;
        let metadata = table.metadata();
        let moved = || CatalogError::HeadMoved {
            table: ident.clone(),
            expected: describe(plan.head),
        };
        if metadata.current_snapshot_id() != plan.head {
            return Err(moved());
        }
        if plan.head == Some(plan.to) {
            return Ok(());
        }
        let result = self
            .transport()
            .commit(
                &table,
                on_current_head(metadata),
                vec![TableUpdate::SetSnapshotRef {
                    ref_name: MAIN_BRANCH.to_string(),
                    reference: SnapshotReference::new(
                        plan.to,
                        SnapshotRetention::branch(None, None, None),
                    ),
                }],
                &uuid::Uuid::now_v7().to_string(),
            )
            .await;
        match result {
            Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts => Err(moved()),
            other => other.context(|| format!("cannot roll {ident} back to snapshot {}", plan.to)),
        }
    }
}

fn describe(snapshot_id: Option<i64>) -> String {
    snapshot_id.map_or_else(|| "none".to_string(), |id| id.to_string())
}
