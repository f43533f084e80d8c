//! An embedded lakehouse in a local folder, and the files a test writes
//! into it: raw files and job specs.

use std::path::{Path, PathBuf};

use super::Lakehouse;

/// A job loading the CSV files under `raw/events/` (`key`, `payload`) into
/// `bronze.events` by append.
pub const BRONZE_EVENTS_CSV: &str = "\
name: bronze_events
inputs:
  - { name: raw_events, path: events, format: csv }
steps:
  - bronze:
      from: raw_events
      columns:
        - { name: key, from: key, type: int64 }
        - { name: payload, from: payload, type: string }
target: { table: bronze.events, mode: append }
";

impl Lakehouse {
    /// An embedded lakehouse in a fresh folder.
    pub fn new() -> Self {
        Self::with(Vec::new(), Vec::new())
    }

    /// Starts `medallion --lakehouse <dir> --quiet <args>` in the
    /// background, its output captured.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the medallion binary starts")
    }

    /// Writes a job spec file into the lakehouse folder and returns its
    /// path: small jobs (`SELECT 1 AS x`) run and validate without data.
    pub fn spec(&self, file: &str, yaml: &str) -> PathBuf {
        let path = self.path().join(file);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// Writes `raw/<path>` (folders created), the raw root of every run.
    pub fn raw_file(&self, path: &str, contents: impl AsRef<[u8]>) {
        let path = self.path().join("raw").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Writes a job spec with one bronze step: the raw folder `folder` in
    /// `format` into `bronze.<table>`, with these YAML `columns` entries
    /// (`{ name: id, from: id, type: int64 }`).
    pub fn bronze_spec(&self, table: &str, format: &str, folder: &str, columns: &[&str]) -> String {
        let columns: String = columns.iter().map(|c| format!("        - {c}\n")).collect();
        let spec = format!(
            "name: bronze_{table}
inputs:
  - {{ name: raw, path: {folder}, format: {format} }}
steps:
  - bronze:
      from: raw
      columns:
{columns}target: {{ table: bronze.{table}, mode: append }}
"
        );
        let path = self.path().join(format!("{table}.yaml"));
        std::fs::write(&path, spec).unwrap();
        path.to_str().unwrap().to_string()
    }
}

/// Replaces `from` by `to` in a file; the text must be there, so a changed
/// reference pipeline breaks the test instead of silently testing nothing.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// Every Parquet file below `dir`, sorted.
pub fn parquet_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(parquet_files_under(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            found.push(path);
        }
    }
    found.sort();
    found
}
