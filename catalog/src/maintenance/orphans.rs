//! `remove-orphan-files`: delete files under a table's location that no
//! snapshot or metadata file references: what failed or killed writes left
//! behind.
//!
//! A file counts as an orphan only if it is older than a safety age AND no
//! snapshot of the table's newest metadata names it. The order makes that
//! safe beside writers: storage is listed first, then the table's newest
//! metadata is loaded, and the head is loaded again just before anything is
//! deleted (a commit in between is read and its files kept). What the order
//! cannot see is a write still streaming files it has not committed yet:
//! the safety age covers it, which is why an age under
//! [`MIN_SAFE_ORPHAN_AGE`] is refused unless forced.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use iceberg::TableIdent;
use iceberg::table::Table;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use super::moment_before;
use crate::connection::Lakehouse;
use crate::error::{CatalogError, Result};
use crate::scan::files_of_snapshots;

/// The youngest files an orphan sweep may take without `force_unsafe_age`.
/// A day, like Iceberg Spark's `remove_orphan_files` check: longer than any
/// write streams its files before committing them.
pub const MIN_SAFE_ORPHAN_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// How many times the sweep re-reads a head that moved while it compared.
const HEAD_RELOADS: usize = 10;

#[derive(Debug, Clone)]
pub struct OrphanOptions {
    /// Only files older than this are candidates.
    pub older_than: Duration,
    /// List the orphans without deleting them.
    pub dry_run: bool,
    /// Allow an age under [`MIN_SAFE_ORPHAN_AGE`]; the caller vouches that
    /// no write to the table is in progress.
    pub force_unsafe_age: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OrphanReport {
    pub table: String,
    /// Files no snapshot references that are older than the safety age.
    pub orphans: Vec<String>,
    pub bytes: u64,
    /// False for a dry run.
    pub deleted: bool,
}

impl Lakehouse {
    pub async fn remove_orphan_files(
        &self,
        ident: &TableIdent,
        options: &OrphanOptions,
    ) -> Result<OrphanReport> {
        if options.older_than < MIN_SAFE_ORPHAN_AGE && !options.force_unsafe_age {
            return Err(CatalogError::UnsafeOrphanAge {
                table: ident.clone(),
                minimum: "1d".into(),
            });
        }
        let table = self.load_table(ident).await?;
        let location = table
            .metadata()
            .location()
            .trim_end_matches('/')
            .to_string();
        let (store, root) = self
            .stores()
            .resolve(&location)
            .map_err(|e| storage_error(ident, "list the files of", e))?;
        let cutoff = moment_before(options.older_than);
        let old_enough: Vec<ObjectMeta> = store
            .list(Some(&root))
            .try_filter(|meta| futures::future::ready(meta.last_modified < cutoff))
            .try_collect()
            .await
            .map_err(|e| storage_error(ident, "list the files of", e))?;
        let orphans = self.unreferenced(ident, old_enough).await?;
        let report = OrphanReport {
            table: ident.to_string(),
            orphans: orphans
                .iter()
                .map(|meta| uri_under(&location, &root, &meta.location))
                .collect(),
            bytes: orphans.iter().map(|meta| meta.size).sum(),
            deleted: !options.dry_run,
        };
        if !options.dry_run {
            for meta in &orphans {
                // A failed write may delete its own files meanwhile.
                match store.delete(&meta.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(storage_error(ident, "delete an orphan file of", e)),
                }
            }
            tracing::info!(table = %ident, files = orphans.len(), "removed orphan files");
        }
        Ok(report)
    }

    /// The listed files that no snapshot of the table's newest metadata
    /// names, re-checked until the head holds still while comparing.
    async fn unreferenced(
        &self,
        ident: &TableIdent,
        mut candidates: Vec<ObjectMeta>,
    ) -> Result<Vec<ObjectMeta>> {
        let mut head = self.load_table(ident).await?;
        for _ in 0..HEAD_RELOADS {
            let referenced = self.referenced_paths(&head).await?;
            candidates.retain(|meta| !referenced.contains(&meta.location));
            let now = self.load_table(ident).await?;
            if now.metadata_location() == head.metadata_location() {
                return Ok(candidates);
            }
            head = now;
        }
        Err(CatalogError::Catalog(format!(
            "{ident} kept changing while its orphan files were compared; run remove-orphan-files \
             again when fewer jobs write it"
        )))
    }

    /// Every file the table's metadata names, as paths inside the store:
    /// the catalog may spell a location differently than a listing does
    /// (file:/ vs file:///).
    async fn referenced_paths(&self, table: &Table) -> Result<HashSet<Path>> {
        let metadata = table.metadata();
        let mut referenced = files_of_snapshots(table, metadata.snapshots()).await?;
        referenced.extend(table.metadata_location().map(str::to_string));
        referenced.extend(
            metadata
                .metadata_log()
                .iter()
                .map(|m| m.metadata_file.clone()),
        );
        referenced.extend(
            metadata
                .statistics_iter()
                .map(|s| s.statistics_path.clone()),
        );
        referenced.extend(
            metadata
                .partition_statistics_iter()
                .map(|s| s.statistics_path.clone()),
        );
        referenced
            .iter()
            .map(|uri| self.stores().resolve(uri).map(|(_, path)| path))
            .collect::<object_store::Result<_>>()
            .map_err(|e| storage_error(table.identifier(), "resolve the files of", e))
    }
}

fn storage_error(ident: &TableIdent, action: &str, source: object_store::Error) -> CatalogError {
    CatalogError::Storage {
        context: format!("cannot {action} {ident}"),
        source,
    }
}

/// A listed file as a URI under the table's location.
fn uri_under(location: &str, root: &Path, file: &Path) -> String {
    let relative = file
        .as_ref()
        .strip_prefix(root.as_ref())
        .unwrap_or(file.as_ref());
    format!("{location}/{}", relative.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::stream;

    use super::*;
    use crate::commit::{CommitProperties, SameChange, commit};
    use crate::data_files::write_data_files;
    use crate::schema::{SchemaEvolution, table_ident};
    use crate::snapshot::SnapshotKind;
    use crate::target::fit;
    use crate::write::WriteMode;

    fn keys(range: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("key", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(range))]).unwrap()
    }

    #[tokio::test]
    async fn a_file_listed_before_its_commit_landed_is_not_an_orphan() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        let batches = |range| vec![stream::iter(vec![Ok::<_, std::io::Error>(keys(range))])];
        let first = lakehouse.write(ident.clone(), WriteMode::Append);
        first
            .execute(keys(0..1).schema(), batches(0..5))
            .await
            .unwrap();

        // A write streams its files; the sweep lists them, still uncommitted.
        let table = lakehouse.load_table(&ident).await.unwrap();
        let written = fit(&table, &keys(0..1).schema(), SchemaEvolution::Fail).unwrap();
        let files = write_data_files(&table, &written, None, batches(5..10))
            .await
            .unwrap();
        let location = table.metadata().location().to_string();
        let (store, root) = lakehouse.stores().resolve(&location).unwrap();
        let listed: Vec<ObjectMeta> = store.list(Some(&root)).try_collect().await.unwrap();
        let streamed = lakehouse.stores().resolve(files[0].file_path()).unwrap().1;
        assert!(listed.iter().any(|m| m.location == streamed));

        // The write commits before the sweep reads the table's metadata.
        let mut planner = SameChange(SnapshotKind::Append);
        let properties = CommitProperties::default();
        commit(
            &lakehouse,
            &ident,
            &properties,
            &written,
            &files,
            &mut planner,
        )
        .await
        .unwrap();
        let orphans = lakehouse.unreferenced(&ident, listed).await.unwrap();
        assert!(
            orphans.iter().all(|m| m.location != streamed),
            "the committed file was taken for an orphan: {orphans:?}"
        );
    }
}
