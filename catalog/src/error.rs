//! `CatalogError`, the catalog layer's errors (each says what to do next),
//! and `Context` to attach that sentence to iceberg, sqlx and Arrow errors.

use iceberg::TableIdent;
use iceberg::spec::FormatVersion;

/// Any error, kept as a cause.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors of the catalog layer. Every variant keeps its cause so that the
/// CLI can print the whole chain on one line.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("table {table} does not exist")]
    TableNotFound { table: TableIdent },

    #[error(
        "commit to {table} conflicted with concurrent commits {attempts} times; \
         re-run the job (the same job id is safe to re-run)"
    )]
    CommitConflict { table: TableIdent, attempts: u32 },

    #[error(
        "the data does not fit table {table}: {detail}; change the job so its output matches \
         the table, or drop the table to recreate it"
    )]
    SchemaMismatch { table: TableIdent, detail: String },

    #[error(
        "column `{column}` of the output for table {table} has no type: every value of it is \
         null (as in a raw file with only a header row), and Iceberg stores no such type; \
         declare its type (in the bronze step's `columns`, or with CAST in SQL), or leave it out"
    )]
    UntypedColumn { table: TableIdent, column: String },

    #[error(
        "the schema of {table} changed while this job wrote its files: {detail}; re-run the job \
         (the same job id is safe to re-run)"
    )]
    SchemaConflict { table: TableIdent, detail: String },

    #[error(
        "{table} changed while this job replaced rows: {detail}; re-run the job \
         (the same job id is safe to re-run)"
    )]
    ReplaceConflict { table: TableIdent, detail: String },

    #[error(
        "{table} is an Iceberg {version} table and the job asks for {asked}: remove \
         `target.format_version` from the job, or write to a new table"
    )]
    FormatVersion {
        table: TableIdent,
        version: FormatVersion,
        asked: FormatVersion,
    },

    #[error(
        "{operation} of {table} conflicts with a concurrent commit: {count} data file(s) it \
         rewrites were rewritten or deleted meanwhile (the first: {file}); nothing was \
         committed; run it again on the table as it is now"
    )]
    RewrittenMeanwhile {
        table: TableIdent,
        operation: String,
        count: usize,
        file: String,
    },

    #[error(
        "{operation} of {table} conflicts with a concurrent commit: rows of {file}, which it \
         rewrites, were deleted meanwhile (merge-on-read); nothing was committed; run it again \
         on the table as it is now"
    )]
    DeletedMeanwhile {
        table: TableIdent,
        operation: String,
        file: String,
    },

    #[error(
        "{operation} of {table} cannot tell what was committed since it chose its files: \
         snapshots in between were expired or rolled back meanwhile; nothing was committed; \
         run it again on the table as it is now"
    )]
    HistoryLost {
        table: TableIdent,
        operation: String,
    },

    #[error(
        "job id {job_id} loaded {table} in shards that committed on their own (shards \
         {shards}); a whole run would load their files again: run the missing shards with \
         --shard INDEX/COUNT, or use a new job id"
    )]
    ShardedBefore {
        table: TableIdent,
        job_id: String,
        shards: String,
    },

    #[error(
        "the shards of job id {job_id} cannot commit together to {table}: {detail}; run the job \
         with a new job id"
    )]
    Shards {
        table: TableIdent,
        job_id: String,
        detail: String,
    },

    #[error(transparent)]
    MissingDataFile(#[from] MissingDataFile),

    #[error(
        "{count} data file(s) that this write streamed to {table} are gone from storage (the \
         first: {file}), so nothing was committed; was remove-orphan-files run with an age \
         shorter than this job? Re-run the job (the same job id is safe to re-run)"
    )]
    WrittenFilesGone {
        table: TableIdent,
        count: usize,
        file: String,
    },

    #[error(
        "refusing to remove orphan files of {table} younger than {minimum}: files that young \
         may belong to a write still in progress, and removing them would break it; use \
         --older-than {minimum} or more, or add --force-unsafe-age if no job writes {table} now"
    )]
    UnsafeOrphanAge { table: TableIdent, minimum: String },

    #[error("cannot merge into {table}: {detail}")]
    Merge { table: TableIdent, detail: String },

    #[error("{context}")]
    Iceberg {
        context: String,
        #[source]
        source: Box<iceberg::Error>,
    },

    #[error("{context}")]
    Sql {
        context: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("{context}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    #[error("cannot read the delete file {path} of {table}")]
    DeleteFile {
        table: TableIdent,
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("the job's query failed")]
    Source {
        partition: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A snapshot that is not the current one nor one of its ancestors.
    #[error(
        "snapshot {snapshot_id} is not in the current history of {table}; \
         `medallion history {table}` lists the snapshots"
    )]
    NotInHistory { table: TableIdent, snapshot_id: i64 },

    /// The table's head is not the snapshot a rollback was planned on.
    #[error(
        "{table} is no longer at snapshot {expected}: commits landed after its history was \
         read, and rolling back now would discard them unseen; nothing was rolled back; \
         read `medallion history {table}` again and roll back from its current snapshot"
    )]
    HeadMoved { table: TableIdent, expected: String },

    /// Something in a table medallion cannot handle yet.
    #[error("{table} has {what}, which medallion cannot {action} yet")]
    Unsupported {
        table: TableIdent,
        what: &'static str,
        /// `read`, or `rewrite` (it reads them).
        action: &'static str,
    },

    /// Listing, resolving or deleting files in the table storage failed.
    #[error("{context}")]
    Storage {
        context: String,
        #[source]
        source: object_store::Error,
    },

    /// A local folder or file of the lakehouse could not be made or found.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}")]
    Http {
        context: String,
        #[source]
        source: reqwest::Error,
    },

    /// A task streaming rows into data files panicked.
    #[error("a writer task failed")]
    WriterTask(#[source] tokio::task::JoinError),

    /// A setting or name given to medallion is not usable.
    #[error("{0}")]
    Config(String),

    /// Authentication or authorization failed (401, 403, token endpoint).
    #[error("{0}")]
    Auth(String),

    /// The catalog refused or failed a request.
    #[error("{0}")]
    Catalog(String),
}

/// A data file that a table's metadata names but storage lacks: the table
/// is damaged, and reading it must fail rather than read the file as empty.
#[derive(Debug, thiserror::Error)]
#[error(
    "table {table} names data file {file}, which is missing from storage; the table is \
     damaged: restore the file, or roll the table back to a snapshot without it \
     (`medallion history {table}`, then `medallion rollback {table} --to <id>`)"
)]
pub struct MissingDataFile {
    pub table: String,
    pub file: String,
}

impl MissingDataFile {
    /// This error, when storage said "not found" anywhere in `error`'s chain
    /// of causes while reading `file` of `table`.
    pub fn in_chain(
        table: &str,
        file: &str,
        error: &(dyn std::error::Error + 'static),
    ) -> Option<Self> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(object_store::Error::NotFound { .. }) = e.downcast_ref() {
                return Some(Self {
                    table: table.to_string(),
                    file: file.to_string(),
                });
            }
            cause = e.source();
        }
        None
    }
}

impl CatalogError {
    /// Whether the change was planned on a table a concurrent commit has
    /// since made stale (it rewrote the files the change rewrites, or
    /// expired the history the change is checked against): planning it
    /// again from the start on the new head may well succeed.
    pub fn must_replan(&self) -> bool {
        matches!(
            self,
            Self::RewrittenMeanwhile { .. }
                | Self::DeletedMeanwhile { .. }
                | Self::HistoryLost { .. }
        )
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Attaches a human sentence to a lower-level error.
pub(crate) trait Context<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, iceberg::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| CatalogError::Iceberg {
            context: context(),
            source: Box::new(source),
        })
    }
}

impl<T> Context<T> for std::result::Result<T, sqlx::Error> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| CatalogError::Sql {
            context: context(),
            source,
        })
    }
}

impl<T> Context<T> for std::result::Result<T, arrow::error::ArrowError> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| CatalogError::Arrow {
            context: context(),
            source,
        })
    }
}
