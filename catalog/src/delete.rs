//! The commit of `medallion delete --where`, copy-on-write: the rows that
//! stay of the files holding matching rows (the engine finds both) replace
//! exactly those files in one snapshot, on whatever head is current when
//! it commits (`conflicts.rs` says when a newer head is a real conflict).

use std::error::Error as StdError;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::Stream;
use iceberg::TableIdent;

use crate::commit::{CommitOutcome, CommitProperties, commit};
use crate::conflicts::{FilterOverwrite, OverwriteByFilter};
use crate::connection::Lakehouse;
use crate::data_files::write_data_files;
use crate::error::Result;
use crate::schema::SchemaEvolution;
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
        };
        commit(self, ident, &properties, &written, &rewritten, &mut planner).await
    }
}
