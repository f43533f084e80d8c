//! Copy-on-write or merge-on-read: how a merge or a delete removes rows
//! from the files that hold them. Copy-on-write rewrites those files
//! without the rows (reads stay cheapest); merge-on-read leaves them and
//! writes position delete files (writes cost what changed; readers apply
//! the deletes until `compact` folds them in). A job spec's
//! `target.write_mode` decides; without it the table's own
//! `write.merge.mode` / `write.delete.mode` properties do, as in Spark.
//! The deletes are position delete files on a v2 table and deletion
//! vectors on a v3 one ([`write_deletes`]).

use iceberg::spec::{DataFile, FormatVersion};
use iceberg::table::Table;

use crate::delete_files::{DeletedPositions, write_position_deletes};
use crate::deletion_vector_files::write_deletion_vectors;
use crate::error::Result;
use crate::position_deletes::DeletedRows;

/// How rows leave the files that hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowLevelMode {
    /// Rewrite the files without the rows.
    #[default]
    CopyOnWrite,
    /// Keep the files; write position delete files naming the rows.
    MergeOnRead,
}

/// The operations whose mode a table property sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowLevelOperation {
    Merge,
    Delete,
}

impl RowLevelOperation {
    /// Iceberg's table property for this operation's mode.
    pub fn property(self) -> &'static str {
        match self {
            Self::Merge => "write.merge.mode",
            Self::Delete => "write.delete.mode",
        }
    }
}

impl RowLevelMode {
    /// `chosen` when given, else the table's property for `operation`
    /// (copy-on-write when unset, as in Iceberg; a value neither mode names
    /// is warned about and ignored).
    pub fn for_table(chosen: Option<Self>, table: &Table, operation: RowLevelOperation) -> Self {
        if let Some(mode) = chosen {
            return mode;
        }
        let key = operation.property();
        match table.metadata().properties().get(key).map(String::as_str) {
            None | Some("copy-on-write") => Self::CopyOnWrite,
            Some("merge-on-read") => Self::MergeOnRead,
            Some(value) => {
                tracing::warn!(table = %table.identifier(), key, value, "ignoring a table property that is neither copy-on-write nor merge-on-read");
                Self::CopyOnWrite
            }
        }
    }
}

/// Writes the deletes of `deleted` as the table's format version has them:
/// v2, one position delete file per data file of its new positions; v3,
/// one deletion vector per data file of all its positions, new and those
/// `already` deleted (a v3 data file has one vector at most). Nothing is
/// committed.
pub(crate) async fn write_deletes(
    table: &Table,
    job_id: Option<&str>,
    deleted: Vec<DeletedPositions>,
    already: &DeletedRows,
) -> Result<Vec<DataFile>> {
    match table.metadata().format_version() {
        FormatVersion::V3 => write_deletion_vectors(table, job_id, deleted, already).await,
        _ => write_position_deletes(table, job_id, deleted).await,
    }
}
