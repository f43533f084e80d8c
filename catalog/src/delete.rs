//! The commit of `medallion delete --where`, copy-on-write: the rows that
//! stay of the files holding matching rows (the engine finds both) replace
//! exactly those files in one snapshot.

use std::collections::HashSet;
use std::error::Error as StdError;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::Stream;
use iceberg::TableIdent;

use crate::commit::{CommitOutcome, CommitProperties, SameChange, commit};
use crate::connection::Lakehouse;
use crate::data_files::write_data_files;
use crate::error::Result;
use crate::schema::SchemaEvolution;
use crate::snapshot::SnapshotKind;
use crate::target::fit;

impl Lakehouse {
    /// Replaces the live files `files` of `ident` by `staying`, their rows
    /// that the delete keeps, in one snapshot (an `overwrite`, or a
    /// `delete` when no row stays). The commit fails if a concurrent commit
    /// removed one of the files.
    pub async fn delete_rows<S, E>(
        &self,
        ident: &TableIdent,
        files: HashSet<String>,
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
        let mut planner = SameChange(SnapshotKind::Overwrite(files));
        commit(self, ident, &properties, &written, &rewritten, &mut planner).await
    }
}
