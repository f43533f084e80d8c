//! `remove-orphan-files`: delete files under a table's location that no
//! snapshot or metadata file references: what failed or killed writes left
//! behind. Only files older than a safety age are touched, so the files of
//! a write still in progress are never taken for orphans.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use iceberg::TableIdent;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::moment_before;
use crate::connection::Lakehouse;
use crate::error::{CatalogError, Result};
use crate::scan::files_of_snapshots;

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
        older_than: Duration,
        dry_run: bool,
    ) -> Result<OrphanReport> {
        let table = self.load_table(ident).await?;
        let metadata = table.metadata();
        let mut referenced = files_of_snapshots(&table, metadata.snapshots()).await?;
        referenced.extend(table.metadata_location().map(str::to_string));
        referenced.extend(
            metadata
                .metadata_log()
                .iter()
                .map(|m| m.metadata_file.clone()),
        );
        let storage_error = |e: object_store::Error| {
            CatalogError::Config(format!("cannot list the files of {ident}: {e}"))
        };
        // Compare as paths inside the store: the catalog may spell a
        // location differently than the listing does (file:/ vs file:///).
        let referenced: HashSet<Path> = referenced
            .iter()
            .map(|uri| self.stores().resolve(uri).map(|(_, path)| path))
            .collect::<object_store::Result<_>>()
            .map_err(storage_error)?;
        let (store, root) = self
            .stores()
            .resolve(metadata.location())
            .map_err(storage_error)?;
        let cutoff = moment_before(older_than);
        let orphans: Vec<object_store::ObjectMeta> = store
            .list(Some(&root))
            .try_filter(|meta| {
                let orphan = !referenced.contains(&meta.location) && meta.last_modified < cutoff;
                async move { orphan }
            })
            .try_collect()
            .await
            .map_err(storage_error)?;
        let location = metadata.location().trim_end_matches('/');
        let report = OrphanReport {
            table: ident.to_string(),
            orphans: orphans
                .iter()
                .map(|meta| {
                    let relative = meta
                        .location
                        .as_ref()
                        .strip_prefix(root.as_ref())
                        .unwrap_or(meta.location.as_ref());
                    format!("{location}/{}", relative.trim_start_matches('/'))
                })
                .collect(),
            bytes: orphans.iter().map(|meta| meta.size).sum(),
            deleted: !dry_run,
        };
        if !dry_run {
            for meta in &orphans {
                store.delete(&meta.location).await.map_err(|e| {
                    CatalogError::Config(format!(
                        "cannot delete orphan file {}: {e}",
                        meta.location
                    ))
                })?;
            }
            tracing::info!(table = %ident, files = orphans.len(), "removed orphan files");
        }
        Ok(report)
    }
}
