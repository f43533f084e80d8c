//! Who may watch the commit protocol: every attempt sent to the catalog and
//! how it ended, so the engine can count attempts, conflicts and retries
//! given up without this crate knowing about metrics.

use std::time::Duration;

use iceberg::TableIdent;

/// How one commit attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    /// The snapshot landed.
    Committed,
    /// Another writer moved the head first; the commit re-plans and retries.
    Conflict,
    /// Another writer moved the head first, and no retry is left.
    ConflictGaveUp,
    /// The catalog refused or failed to answer.
    Failed,
}

/// Told about every commit attempt of a [`crate::Lakehouse`]; set with
/// [`crate::Lakehouse::with_commit_observer`].
pub trait CommitObserver: Send + Sync {
    /// Attempt `number` (from 1) to commit to `table` ended so, `elapsed`
    /// after the commit began (planning, waits and earlier attempts included).
    fn attempt(&self, table: &TableIdent, number: u32, end: AttemptEnd, elapsed: Duration);
}
