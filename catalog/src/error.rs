//! `CatalogError`, the catalog layer's errors (each says what to do next),
//! and `Context` to attach that sentence to iceberg, sqlx and Arrow errors.

use iceberg::TableIdent;

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
        "the schema of {table} changed while this job wrote its files: {detail}; re-run the job \
         (the same job id is safe to re-run)"
    )]
    SchemaConflict { table: TableIdent, detail: String },

    #[error(
        "{table} changed while this job replaced rows: {detail}; re-run the job \
         (the same job id is safe to re-run)"
    )]
    ReplaceConflict { table: TableIdent, detail: String },

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

    #[error("the job's query failed")]
    Source {
        partition: usize,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{0}")]
    Config(String),

    /// Authentication or authorization failed (401, 403, token endpoint).
    #[error("{0}")]
    Auth(String),

    /// The catalog refused or failed a request.
    #[error("{0}")]
    Catalog(String),
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
