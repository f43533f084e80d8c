//! `rewrite-manifests`: list the live data files of a table in one manifest
//! instead of one or more per commit, so planning a scan reads one file.
//! The data does not change: the snapshot is a `replace`.

use iceberg::TableIdent;
use iceberg::table::Table;

use crate::commit::{CommitProperties, SameChange, commit};
use crate::connection::Lakehouse;
use crate::error::{Context, Result};
use crate::schema::WriteSchema;
use crate::snapshot::SnapshotKind;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestsReport {
    pub table: String,
    pub manifests_before: usize,
    pub manifests_after: usize,
    pub snapshot_id: Option<i64>,
}

impl Lakehouse {
    pub async fn rewrite_manifests(
        &self,
        ident: &TableIdent,
        job_id: &str,
    ) -> Result<ManifestsReport> {
        let table = self.load_table(ident).await?;
        let manifests_before = manifest_count(&table).await?;
        let mut report = ManifestsReport {
            table: ident.to_string(),
            manifests_before,
            manifests_after: manifests_before,
            snapshot_id: None,
        };
        if manifests_before < 2 {
            return Ok(report);
        }
        let properties = CommitProperties::default()
            .job_id(job_id)
            .operation("rewrite-manifests");
        let unchanged = WriteSchema::unchanged(table.metadata());
        let mut planner = SameChange(SnapshotKind::RewriteManifests);
        let outcome = commit(self, ident, &properties, &unchanged, &[], &mut planner).await?;
        report.snapshot_id = Some(outcome.snapshot_id());
        report.manifests_after = manifest_count(&self.load_table(ident).await?).await?;
        Ok(report)
    }
}

async fn manifest_count(table: &Table) -> Result<usize> {
    let Some(snapshot) = table.metadata().current_snapshot() else {
        return Ok(0);
    };
    Ok(table
        .manifest_list_reader(snapshot)
        .load()
        .await
        .context(|| format!("cannot read the manifest list of {}", table.identifier()))?
        .entries()
        .len())
}
