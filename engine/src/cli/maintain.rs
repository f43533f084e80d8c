//! `compact`, `rewrite-manifests`, `expire-snapshots` and
//! `remove-orphan-files`: one maintenance task on one table, now. The same
//! tasks run on a schedule as `mode: maintain` jobs (`crate::maintain`).

use anyhow::Result;
use clap::Args;
use medallion_catalog::{
    CompactReport, ExpireOptions, ExpireReport, ManifestsReport, OrphanOptions, OrphanReport,
    table_ident,
};

use super::job_id::JobIdArg;
use super::output::{Report, pretty};
use crate::engine::Engine;

#[derive(Debug, Args)]
pub struct CompactArgs {
    pub table: String,
    #[command(flatten)]
    job_id: JobIdArg,
}

#[derive(Debug, Args)]
pub struct RewriteManifestsArgs {
    pub table: String,
    #[command(flatten)]
    job_id: JobIdArg,
}

#[derive(Debug, Args)]
pub struct ExpireSnapshotsArgs {
    pub table: String,
    /// Expire only snapshots older than this (e.g. 5d, 12h, 30m, 0s).
    #[arg(long, value_name = "AGE", default_value = "5d", value_parser = medallion_jobs::parse_age)]
    older_than: std::time::Duration,
    #[arg(long, default_value_t = 1)]
    retain_last: usize,
}

#[derive(Debug, Args)]
pub struct RemoveOrphanFilesArgs {
    pub table: String,
    /// Safety age (e.g. 3d, 36h); younger files stay. At least 1d.
    #[arg(long, value_name = "AGE", default_value = "3d", value_parser = medallion_jobs::parse_age)]
    older_than: std::time::Duration,
    /// List the orphans without deleting them.
    #[arg(long)]
    dry_run: bool,
    /// Allow --older-than under a day. A write in progress streams
    /// files it has not committed yet; a sweep this young can take
    /// them and make that write fail (never a committed table).
    #[arg(long)]
    force_unsafe_age: bool,
}

pub async fn compact(engine: &Engine, args: CompactArgs) -> Result<CompactReport> {
    let ident = table_ident(&args.table)?;
    let job_id = args.job_id.or_new();
    Ok(engine.lakehouse.compact(&ident, &job_id).await?)
}

pub async fn rewrite_manifests(
    engine: &Engine,
    args: RewriteManifestsArgs,
) -> Result<ManifestsReport> {
    let ident = table_ident(&args.table)?;
    let job_id = args.job_id.or_new();
    Ok(engine.lakehouse.rewrite_manifests(&ident, &job_id).await?)
}

pub async fn expire_snapshots(engine: &Engine, args: ExpireSnapshotsArgs) -> Result<ExpireReport> {
    let ident = table_ident(&args.table)?;
    let options = ExpireOptions {
        retain_last: args.retain_last,
        older_than: args.older_than,
    };
    Ok(engine.lakehouse.expire_snapshots(&ident, &options).await?)
}

pub async fn remove_orphan_files(
    engine: &Engine,
    args: RemoveOrphanFilesArgs,
) -> Result<OrphanReport> {
    let ident = table_ident(&args.table)?;
    let options = OrphanOptions {
        older_than: args.older_than,
        dry_run: args.dry_run,
        force_unsafe_age: args.force_unsafe_age,
    };
    Ok(engine
        .lakehouse
        .remove_orphan_files(&ident, &options)
        .await?)
}

impl Report for CompactReport {
    fn text(&self) -> String {
        match self.snapshot_id {
            Some(snapshot_id) => format!(
                "compacted {}: {} small files rewritten into {} ({} rows) in snapshot {snapshot_id}\n",
                self.table, self.files_rewritten, self.files_written, self.rows
            ),
            None => format!(
                "{} has fewer than two small files; nothing to compact\n",
                self.table
            ),
        }
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

impl Report for ManifestsReport {
    fn text(&self) -> String {
        match self.snapshot_id {
            Some(snapshot_id) => format!(
                "rewrote the {} manifests of {} into {} in snapshot {snapshot_id}\n",
                self.manifests_before, self.table, self.manifests_after
            ),
            None => format!(
                "{} has {} manifest(s); nothing to rewrite\n",
                self.table, self.manifests_before
            ),
        }
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

impl Report for ExpireReport {
    fn text(&self) -> String {
        format!(
            "{}: expired {} snapshots, kept {}, deleted {} files\n",
            self.table, self.snapshots_expired, self.snapshots_kept, self.files_deleted
        )
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}

impl Report for OrphanReport {
    fn text(&self) -> String {
        let mut text: String = self
            .orphans
            .iter()
            .map(|path| format!("{path}\n"))
            .collect();
        let verb = if self.deleted {
            "deleted"
        } else {
            "would delete"
        };
        text.push_str(&format!(
            "{}: {verb} {} orphan files ({} bytes)\n",
            self.table,
            self.orphans.len(),
            self.bytes
        ));
        text
    }

    fn json(&self) -> Result<String> {
        pretty(self)
    }
}
