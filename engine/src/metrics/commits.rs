//! The commit protocol's attempts, counted per table as the catalog
//! reports them (a [`CommitObserver`] on the engine's lakehouse).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use iceberg::TableIdent;
use medallion_catalog::{AttemptEnd, CommitObserver};

/// Attempts per table and how they ended, and how long each table's
/// commits took, since the engine opened.
#[derive(Debug, Default)]
pub struct CommitCounts {
    tables: Mutex<HashMap<String, TableCommits>>,
}

#[derive(Debug, Default, Clone)]
pub struct TableCommits {
    /// Attempts by how they ended, as the metric's `status` label says it.
    pub attempts: HashMap<&'static str, u64>,
    /// From the start of each commit to its last attempt, summed.
    pub seconds: f64,
}

impl CommitCounts {
    /// What the commits to `table` did (nothing, when none was made).
    pub fn of(&self, table: &str) -> TableCommits {
        self.lock().get(table).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TableCommits>> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CommitObserver for CommitCounts {
    fn attempt(&self, table: &TableIdent, _number: u32, end: AttemptEnd, elapsed: Duration) {
        let status = match end {
            AttemptEnd::Committed => "committed",
            AttemptEnd::Conflict => "conflict",
            AttemptEnd::ConflictGaveUp => "conflict_gave_up",
            AttemptEnd::Failed => "failed",
        };
        let mut tables = self.lock();
        let commits = tables.entry(table.to_string()).or_default();
        *commits.attempts.entry(status).or_default() += 1;
        // Elapsed counts from the commit's start: only its last attempt adds.
        if status != "conflict" {
            commits.seconds += elapsed.as_secs_f64();
        }
    }
}
