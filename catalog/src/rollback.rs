//! `rollback`: make an ancestor snapshot current again, in one commit that
//! asserts the head it was planned on.

use iceberg::spec::{MAIN_BRANCH, SnapshotReference, SnapshotRetention};
use iceberg::{TableIdent, TableUpdate};

use crate::connection::Lakehouse;
use crate::error::{CatalogError, Context, Result};
use crate::history::in_lineage;
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
        if !in_lineage(&table, snapshot_id) {
            return Err(CatalogError::NotInHistory {
                table: ident.clone(),
                snapshot_id,
            });
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
