//! Copy-on-write or merge-on-read: how a merge or a delete removes rows
//! from the files that hold them. Copy-on-write rewrites those files
//! without the rows (reads stay cheapest); merge-on-read leaves them and
//! writes position delete files (writes cost what changed; readers apply
//! the deletes until `compact` folds them in). A job spec's
//! `target.write_mode` decides; without it the table's own
//! `write.merge.mode` / `write.delete.mode` properties do, as in Spark.

use iceberg::table::Table;

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
