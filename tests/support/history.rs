//! Reading a table's history as `medallion history --json` prints it.

use serde_json::Value;

use super::Lakehouse;

impl Lakehouse {
    /// Every snapshot of `table`, oldest first.
    pub fn history(&self, table: &str) -> Vec<Value> {
        let out = self.ok(&["history", table, "--json"]);
        let history: Value = serde_json::from_str(&out).expect("history --json is JSON");
        history.as_array().expect("a list of snapshots").clone()
    }

    /// One string field (`operation`, `job_id`) of every snapshot of `table`.
    pub fn history_of(&self, table: &str, field: &str) -> Vec<String> {
        self.history(table)
            .iter()
            .map(|s| s[field].as_str().expect("a string field").to_string())
            .collect()
    }
}
