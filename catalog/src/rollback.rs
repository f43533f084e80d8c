//! `rollback`: make an ancestor snapshot current again, in one commit that
//! asserts the head it was planned on.

use iceberg::spec::{MAIN_BRANCH, SnapshotReference, SnapshotRetention};
use iceberg::{TableIdent, TableUpdate};

use crate::connection::Lakehouse;
use crate::error::{CatalogError, Context, Result};
use crate::snapshot::on_current_head;

impl Lakehouse {
    /// Makes an earlier snapshot of the table's history current again. Only
    /// ancestors of the current snapshot qualify, so a rollback never
    /// resurrects a branch of history that was itself rolled back.
    pub async fn rollback(&self, ident: &TableIdent, snapshot_id: i64) -> Result<()> {
        let table = self.load_table(ident).await?;
        let metadata = table.metadata();
        let current = metadata.current_snapshot_id();
        if current == Some(snapshot_id) {
            return Ok(());
        }
        let mut ancestor = metadata.current_snapshot();
        let mut found = false;
        while let Some(snapshot) = ancestor {
            if snapshot.snapshot_id() == snapshot_id {
                found = true;
                break;
            }
            ancestor = snapshot
                .parent_snapshot_id()
                .and_then(|id| metadata.snapshot_by_id(id));
        }
        if !found {
            return Err(CatalogError::Config(format!(
                "snapshot {snapshot_id} is not in the current history of {ident}; `medallion history {ident}` lists the snapshots"
            )));
        }
        self.transport()
            .commit(
                &table,
                on_current_head(metadata),
                vec![TableUpdate::SetSnapshotRef {
                    ref_name: MAIN_BRANCH.to_string(),
                    reference: SnapshotReference::new(
                        snapshot_id,
                        SnapshotRetention::branch(None, None, None),
                    ),
                }],
                &uuid::Uuid::now_v7().to_string(),
            )
            .await
            .context(|| format!("cannot roll {ident} back to snapshot {snapshot_id}"))
    }
}
