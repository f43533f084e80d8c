//! The commit of `medallion delete --where`. Copy-on-write: the rows that
//! stay of the files holding matching rows (the engine finds both) replace
//! exactly those files in one snapshot. Merge-on-read: the matching rows'
//! positions (the engine finds them) become position delete files beside
//! those files. Either commits on whatever head is current then
//! (`conflicts.rs` says when a newer head is a real conflict).

use std::error::Error as StdError;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::Stream;
use iceberg::TableIdent;

use crate::commit::{CommitOutcome, CommitProperties, commit};
use crate::conflicts::{FilterOverwrite, OverwriteByFilter};
use crate::connection::Lakehouse;
use crate::data_files::write_data_files;
use crate::delete_files::DeletedPositions;
use crate::error::Result;
use crate::position_deletes::deleted_positions;
use crate::row_level::write_deletes;
use crate::schema::{SchemaEvolution, WriteSchema};
use crate::target::fit;

impl Lakehouse {
    /// Replaces the live files `chosen.replaced` of `ident` by `staying`,
    /// their rows that the delete keeps, in one snapshot (an `overwrite`,
    /// or a `delete` when no row stays). The commit fails only if a
    /// concurrent commit removed one of the files or added one that could
    /// hold rows the predicate matches.
    pub async fn delete_rows<S, E>(
        &self,
        ident: &TableIdent,
        chosen: FilterOverwrite,
        properties: CommitProperties,
        schema: SchemaRef,
        staying: Vec<S>,
    ) -> Result<CommitOutcome>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
    {
        let properties = properties.operation("delete");
        let table = self.load_table(ident).await?;
        if let Some(snapshot_id) = properties.committed_in(&table) {
            return Ok(CommitOutcome::AlreadyCommitted { snapshot_id });
        }
        let written = fit(&table, &schema, SchemaEvolution::Fail)?;
        let rewritten = write_data_files(&table, &written, properties.job(), staying).await?;
        let mut planner = OverwriteByFilter {
            overwrite: chosen,
            operation: "delete",
            by_position: false,
        };
        commit(self, ident, &properties, &written, &rewritten, &mut planner).await
    }

    /// Deletes the `matched` rows of the live files `chosen.replaced` by
    /// position (merge-on-read), in one snapshot (a `delete`); rows the
    /// files' delete files already delete are left out. The commit fails
    /// as [`Lakehouse::delete_rows`]'s does, and also when a concurrent
    /// commit deleted rows of those files meanwhile.
    pub async fn delete_positions(
        &self,
        ident: &TableIdent,
        chosen: FilterOverwrite,
        properties: CommitProperties,
        mut matched: Vec<DeletedPositions>,
    ) -> Result<CommitOutcome> {
        let properties = properties.operation("delete");
        let table = self.load_table(ident).await?;
        if let Some(snapshot_id) = properties.committed_in(&table) {
            return Ok(CommitOutcome::AlreadyCommitted { snapshot_id });
        }
        let tasks: Vec<_> = matched.iter().map(|m| m.task.clone()).collect();
        let already = deleted_positions(&table, &tasks).await?;
        for file in &mut matched {
            if let Some(gone) = already.get(&file.task.data_file_path) {
                file.positions.retain(|p| !gone.contains(p));
            }
        }
        matched.retain(|m| !m.positions.is_empty());
        let deletes = write_deletes(&table, properties.job(), matched, &already).await?;
        let mut planner = OverwriteByFilter {
            overwrite: chosen,
            operation: "delete",
            by_position: true,
        };
        let unchanged = WriteSchema::unchanged(table.metadata());
        commit(self, ident, &properties, &unchanged, &deletes, &mut planner).await
    }
}
