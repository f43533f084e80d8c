//! One row as a parser hands it on: its line, its values in declared
//! column order (or why it could not be read), and its raw text.

use std::borrow::Cow;

/// A row of a source, before it is checked against the declared columns.
pub struct Row<'a> {
    /// The line it starts on (for Parquet, its row number), from 1.
    pub line: u64,
    /// The value of each declared column as text (`None`: null or
    /// missing), or why the row is malformed (a wrong field count).
    pub values: Result<Vec<Option<Cow<'a, str>>>, String>,
    /// The row as it was written, for the quarantine; made only when needed.
    pub raw: &'a dyn Fn() -> String,
}

/// Takes each row of a source; an error stops reading it.
pub type Emit<'e> = dyn FnMut(Row<'_>) -> anyhow::Result<()> + 'e;
