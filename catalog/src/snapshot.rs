//! Planning one snapshot: the manifests and manifest list of a new snapshot
//! on top of the table's current one (`plan_snapshot`), its summary, and the
//! catalog updates and requirements that make it current.

use std::collections::{BTreeSet, HashMap, HashSet};

use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, FormatVersion, MAIN_BRANCH, ManifestContentType,
    ManifestEntry, ManifestFile, ManifestListWriter, ManifestWriter, ManifestWriterBuilder,
    Operation, PartitionSpecRef, SchemaRef, Snapshot, SnapshotReference, SnapshotRetention,
    SnapshotSummaryCollector, Summary, TableMetadata,
};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, TableRequirement, TableUpdate};
use uuid::Uuid;

use crate::history::{
    TOTAL_DATA_FILES, TOTAL_DELETE_FILES, TOTAL_EQUALITY_DELETES, TOTAL_FILES_SIZE,
    TOTAL_POSITION_DELETES, TOTAL_RECORDS, summary_number,
};
use crate::position_deletes::{covers_none, data_files_named_by, only_data_file_of};
use crate::row_lineage::{first_row_ids, with_first_row_id};
use crate::schema::SchemaCommit;

/// What a snapshot does to the table's files, as the operation that makes
/// it names it. The snapshot's Iceberg operation follows from it and from
/// what the attempt found (see [`SnapshotKind::operation`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnapshotKind {
    /// Add the new files beside every live file.
    Append,
    /// Add the new files beside every live file; the new delete files among
    /// them delete rows of exactly these live files, which must all still be
    /// live (merge-on-read; the planner checks them on the head it builds on).
    RowDelta(HashSet<String>),
    /// Put the new files in place of every live file.
    OverwriteAll,
    /// Put the new files in place of exactly these live files, which must
    /// all still be live; keep the rest.
    Overwrite(HashSet<String>),
    /// The same rows in other files (compaction): the new files take the
    /// place of exactly these live files, which must all still be live.
    Replace(HashSet<String>),
    /// No data change: every live file listed in one new manifest.
    RewriteManifests,
}

impl SnapshotKind {
    /// Whether this live file leaves the table.
    fn removes(&self, path: &str) -> bool {
        match self {
            Self::Append | Self::RowDelta(_) | Self::RewriteManifests => false,
            Self::OverwriteAll => true,
            Self::Overwrite(paths) | Self::Replace(paths) => paths.contains(path),
        }
    }

    /// Whether the snapshot removes no data file.
    fn adds_only(&self) -> bool {
        matches!(self, Self::Append | Self::RowDelta(_))
    }

    /// The files that must be live for the snapshot to apply.
    pub(crate) fn named_files(&self) -> Option<&HashSet<String>> {
        match self {
            Self::Overwrite(paths) | Self::Replace(paths) | Self::RowDelta(paths) => Some(paths),
            _ => None,
        }
    }

    /// The Iceberg operation: what readers and incremental jobs see. A
    /// snapshot that removed nothing appended, one that added nothing
    /// deleted; only a rewrite of the same rows is a `replace`.
    fn operation(&self, removed_any: bool, added_any: bool) -> Operation {
        match self {
            Self::RewriteManifests => Operation::Replace,
            _ if !removed_any => Operation::Append,
            _ if !added_any => Operation::Delete,
            Self::Replace(_) => Operation::Replace,
            _ => Operation::Overwrite,
        }
    }
}

/// A planned snapshot: files already written to storage, plus the catalog
/// updates that make it current.
pub(crate) struct PlannedSnapshot {
    pub snapshot_id: i64,
    pub updates: Vec<TableUpdate>,
    pub requirements: Vec<TableRequirement>,
    /// Manifests and the manifest list written for this attempt; deleted if
    /// the attempt does not commit.
    pub metadata_files: Vec<String>,
}

/// Writes the manifests and manifest list of one snapshot on top of the
/// table's current snapshot, with the table's schema as `schema` makes it.
pub(crate) async fn plan_snapshot(
    table: &Table,
    schema: SchemaCommit,
    kind: &SnapshotKind,
    added: &[DataFile],
    properties: &HashMap<String, String>,
) -> iceberg::Result<PlannedSnapshot> {
    let metadata = table.metadata();
    require_writable(table)?;
    let SchemaCommit {
        schema,
        updates: schema_updates,
        requirements: schema_requirements,
    } = schema;
    let mut plan = Plan::new(table, schema);
    plan.superseded = vectors_added_for(added);
    for file in added {
        plan.summary
            .add_file(file, plan.schema.clone(), plan.spec.clone());
    }
    let (data, deletes): (Vec<DataFile>, Vec<DataFile>) = added
        .iter()
        .cloned()
        .partition(|f| f.content_type() == DataContentType::Data);
    let mut manifests = plan.carry_over(kind).await?;
    if !data.is_empty() {
        manifests.push(
            plan.added_manifest(ManifestContentType::Data, &data)
                .await?,
        );
    }
    if !deletes.is_empty() {
        manifests.push(
            plan.added_manifest(ManifestContentType::Deletes, &deletes)
                .await?,
        );
    }
    let (list_path, row_range) = plan.write_manifest_list(manifests).await?;

    let mut additional_properties = properties.clone();
    let parent = metadata.current_snapshot();
    additional_properties.extend(std::mem::take(&mut plan.summary).build());
    additional_properties.extend(totals(parent.map(|p| p.summary()), added, &plan.removed));
    let removed_rows = !plan.removed.paths.is_empty() || !deletes.is_empty();
    let operation = kind.operation(removed_rows, !data.is_empty());
    let snapshot = Snapshot::builder()
        .with_manifest_list(list_path)
        .with_snapshot_id(plan.snapshot_id)
        .with_parent_snapshot_id(metadata.current_snapshot_id())
        .with_sequence_number(metadata.next_sequence_number())
        .with_summary(Summary {
            operation,
            additional_properties,
        })
        .with_schema_id(plan.schema.schema_id())
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis());
    let snapshot = match row_range {
        Some((first_row_id, added_rows)) => {
            snapshot.with_row_range(first_row_id, added_rows).build()
        }
        None => snapshot.build(),
    };

    let mut updates = schema_updates;
    updates.extend(make_current(snapshot));
    let mut requirements = on_current_head(metadata);
    requirements.extend(schema_requirements);
    Ok(PlannedSnapshot {
        snapshot_id: plan.snapshot_id,
        updates,
        requirements,
        metadata_files: plan.metadata_files,
    })
}

fn require_writable(table: &Table) -> iceberg::Result<()> {
    let version = table.metadata().format_version();
    if version != FormatVersion::V1 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::FeatureUnsupported,
        format!(
            "medallion writes Iceberg v2 and v3 tables; {} is {version}: upgrade it (Spark: \
             ALTER TABLE ... SET TBLPROPERTIES ('format-version'='2'))",
            table.identifier()
        ),
    ))
}

/// Adds the snapshot and points the main branch at it.
fn make_current(snapshot: Snapshot) -> [TableUpdate; 2] {
    let snapshot_id = snapshot.snapshot_id();
    [
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: MAIN_BRANCH.to_string(),
            reference: SnapshotReference::new(
                snapshot_id,
                SnapshotRetention::branch(None, None, None),
            ),
        },
    ]
}

/// A commit built on this metadata applies only while the table is still
/// the same table at the same main-branch snapshot.
pub(crate) fn on_current_head(metadata: &TableMetadata) -> Vec<TableRequirement> {
    vec![
        TableRequirement::UuidMatch {
            uuid: metadata.uuid(),
        },
        TableRequirement::RefSnapshotIdMatch {
            r#ref: MAIN_BRANCH.to_string(),
            snapshot_id: metadata.current_snapshot_id(),
        },
    ]
}

/// One snapshot being planned: the files written for it so far and what
/// its summary counts.
struct Plan<'a> {
    table: &'a Table,
    snapshot_id: i64,
    commit_uuid: Uuid,
    schema: SchemaRef,
    spec: PartitionSpecRef,
    summary: SnapshotSummaryCollector,
    removed: Removed,
    /// The live data files the snapshot keeps (known once the data
    /// manifests are carried over), sorted for range lookups.
    kept: BTreeSet<String>,
    /// The least data sequence number of the kept data files: equality
    /// deletes apply only to data older than they are.
    oldest_kept: Option<i64>,
    /// The data files the snapshot adds a deletion vector for: their
    /// earlier vectors and file-scoped delete files leave (the new vector
    /// holds their positions too).
    superseded: HashSet<String>,
    /// Manifest writers opened so far, which numbers their files.
    manifests_opened: u32,
    /// Manifests and manifest list written.
    metadata_files: Vec<String>,
}

impl<'a> Plan<'a> {
    fn new(table: &'a Table, schema: SchemaRef) -> Self {
        Self {
            table,
            snapshot_id: unique_snapshot_id(table),
            commit_uuid: Uuid::now_v7(),
            schema,
            spec: table.metadata().default_partition_spec().clone(),
            summary: SnapshotSummaryCollector::default(),
            removed: Removed::default(),
            kept: BTreeSet::new(),
            oldest_kept: None,
            superseded: HashSet::new(),
            manifests_opened: 0,
            metadata_files: Vec::new(),
        }
    }

    /// A writer of a new manifest of data or of delete files, and its path.
    fn manifest_writer(
        &mut self,
        content: ManifestContentType,
    ) -> iceberg::Result<(String, ManifestWriter)> {
        let path = format!(
            "{}/metadata/{}-m{}.{}",
            self.table.metadata().location(),
            self.commit_uuid,
            self.manifests_opened,
            DataFileFormat::Avro
        );
        self.manifests_opened += 1;
        let builder = ManifestWriterBuilder::new(
            self.table.file_io().new_output(&path)?,
            Some(self.snapshot_id),
            self.schema.clone(),
            self.spec.as_ref().clone(),
        );
        let v3 = self.table.metadata().format_version() == FormatVersion::V3;
        let writer = match (content, v3) {
            (ManifestContentType::Data, false) => builder.build_v2_data(),
            (ManifestContentType::Deletes, false) => builder.build_v2_deletes(),
            (ManifestContentType::Data, true) => builder.build_v3_data(),
            (ManifestContentType::Deletes, true) => builder.build_v3_deletes(),
        };
        Ok((path, writer))
    }

    /// Finishes a manifest, and records its file as this attempt's.
    async fn finish(
        &mut self,
        path: String,
        writer: ManifestWriter,
    ) -> iceberg::Result<ManifestFile> {
        let manifest = writer.write_manifest_file().await?;
        self.metadata_files.push(path);
        Ok(manifest)
    }

    /// The parent's manifests as the new snapshot keeps them: untouched
    /// ones as they are, the live files of touched ones split into a
    /// manifest of removed files and one of kept files; delete files leave
    /// with the data files they belong to.
    async fn carry_over(&mut self, kind: &SnapshotKind) -> iceberg::Result<Vec<ManifestFile>> {
        let Some(parent) = self.table.metadata().current_snapshot() else {
            if kind.named_files().is_some_and(|paths| !paths.is_empty()) {
                return Err(Error::new(
                    ErrorKind::DataInvalid,
                    format!("{} has no data to rewrite", self.table.identifier()),
                ));
            }
            return Ok(Vec::new());
        };
        let list = self.table.manifest_list_reader(parent).load().await?;
        let adds_only = kind.adds_only();
        if adds_only && self.superseded.is_empty() {
            return Ok(list.consume_entries().into_iter().collect());
        }
        let (data, deletes): (Vec<ManifestFile>, Vec<ManifestFile>) = list
            .consume_entries()
            .into_iter()
            .partition(|m| m.content == ManifestContentType::Data);
        let mut manifests = match adds_only {
            true => data,
            false => self.carry_data(data, kind).await?,
        };
        manifests.extend(self.carry_deletes(deletes, kind).await?);
        Ok(manifests)
    }

    /// The parent's data manifests, without the files `kind` removes.
    async fn carry_data(
        &mut self,
        data: Vec<ManifestFile>,
        kind: &SnapshotKind,
    ) -> iceberg::Result<Vec<ManifestFile>> {
        let (deleted_path, mut deleted) = self.manifest_writer(ManifestContentType::Data)?;
        let (kept_path, mut kept) = self.manifest_writer(ManifestContentType::Data)?;
        let mut manifests = Vec::new();
        let mut any_kept = false;
        for manifest_file in data {
            let manifest = manifest_file.load_manifest(self.table.file_io()).await?;
            let alive = manifest.entries().iter().filter(|e| e.is_alive());
            for entry in alive.filter(|e| !kind.removes(e.file_path())) {
                self.kept.insert(entry.file_path().to_string());
                let sequence_number = entry.sequence_number().unwrap_or(0);
                let oldest = self
                    .oldest_kept
                    .map_or(sequence_number, |o| o.min(sequence_number));
                self.oldest_kept = Some(oldest);
            }
            let touched = *kind == SnapshotKind::RewriteManifests
                || manifest
                    .entries()
                    .iter()
                    .any(|e| e.is_alive() && kind.removes(e.file_path()));
            if !touched {
                manifests.push(manifest_file);
                continue;
            }
            let first_row_id = manifest_file.first_row_id;
            any_kept |= self.split(&manifest, first_row_id, kind, &mut deleted, &mut kept)?;
        }
        self.require_named_files_removed(kind)?;
        if !self.removed.paths.is_empty() {
            manifests.push(self.finish(deleted_path, deleted).await?);
        }
        if any_kept {
            manifests.push(self.finish(kept_path, kept).await?);
        }
        Ok(manifests)
    }

    /// The parent's delete manifests, without the delete files that belong
    /// only to data files this snapshot removed (every one, when it removes
    /// every data file): a removed data file needs no deletes. A delete
    /// file of several data files leaves once none it may cover is kept.
    async fn carry_deletes(
        &mut self,
        deletes: Vec<ManifestFile>,
        kind: &SnapshotKind,
    ) -> iceberg::Result<Vec<ManifestFile>> {
        if self.removed.paths.is_empty() && self.superseded.is_empty() {
            return Ok(deletes);
        }
        let (deleted_path, mut deleted) = self.manifest_writer(ManifestContentType::Deletes)?;
        let (kept_path, mut kept) = self.manifest_writer(ManifestContentType::Deletes)?;
        let (mut any_deleted, mut any_kept) = (false, false);
        let mut manifests = Vec::new();
        for manifest_file in deletes {
            let manifest = manifest_file.load_manifest(self.table.file_io()).await?;
            let alive: Vec<_> = manifest.entries().iter().filter(|e| e.is_alive()).collect();
            let mut leaving = Vec::with_capacity(alive.len());
            for entry in &alive {
                leaving.push(self.delete_file_leaves(entry, kind).await?);
            }
            if !leaving.contains(&true) {
                manifests.push(manifest_file);
                continue;
            }
            for (entry, leaves) in alive.into_iter().zip(leaving) {
                let file = entry.data_file().clone();
                self.carry_entry(entry, file, leaves, &mut deleted, &mut kept)?;
                any_deleted |= leaves;
                any_kept |= !leaves;
            }
        }
        if any_deleted {
            manifests.push(self.finish(deleted_path, deleted).await?);
        }
        if any_kept {
            manifests.push(self.finish(kept_path, kept).await?);
        }
        Ok(manifests)
    }

    /// Whether a delete file leaves with the data files the snapshot removes:
    /// by its metadata (`referenced_data_file`, `file_path` bounds), else by
    /// the data files its rows name. An equality delete file leaves once
    /// every kept data file is at least as new as it is. A snapshot that
    /// removes no data file removes only the deletes its vectors replace.
    async fn delete_file_leaves(
        &self,
        entry: &ManifestEntry,
        kind: &SnapshotKind,
    ) -> iceberg::Result<bool> {
        if *kind == SnapshotKind::OverwriteAll {
            return Ok(true);
        }
        let file = entry.data_file();
        if kind.adds_only() {
            let replaced = |path: String| self.superseded.contains(&path);
            return Ok(file.content_type() == DataContentType::PositionDeletes
                && only_data_file_of(file).is_some_and(replaced));
        }
        if file.content_type() == DataContentType::EqualityDeletes {
            let sequence_number = entry.sequence_number().unwrap_or(0);
            return Ok(self
                .oldest_kept
                .is_none_or(|oldest| oldest >= sequence_number));
        }
        if let Some(path) = only_data_file_of(file) {
            return Ok(self.removed.paths.contains(&path));
        }
        if let Some(none) = covers_none(file, &self.kept) {
            return Ok(none);
        }
        let named = data_files_named_by(self.table, file).await?;
        Ok(named.iter().all(|path| !self.kept.contains(path)))
    }

    /// Sorts the live files of one touched data manifest (whose first row
    /// id is `first_row_id`) into removed and kept, with the row ids they
    /// inherited written out; whether any was kept.
    fn split(
        &mut self,
        manifest: &iceberg::spec::Manifest,
        first_row_id: Option<u64>,
        kind: &SnapshotKind,
        deleted: &mut ManifestWriter,
        kept: &mut ManifestWriter,
    ) -> iceberg::Result<bool> {
        let mut any_kept = false;
        let spec_id = manifest.metadata().partition_spec().spec_id();
        let row_ids = first_row_ids(first_row_id, manifest.entries());
        for (entry, row_id) in manifest.entries().iter().zip(row_ids) {
            if !entry.is_alive() {
                continue;
            }
            let leaves = kind.removes(entry.file_path());
            let file = with_first_row_id(entry.data_file(), spec_id, row_id);
            self.carry_entry(entry, file, leaves, deleted, kept)?;
            any_kept |= !leaves;
        }
        Ok(any_kept)
    }

    /// One live entry of the parent (its `file` as the new manifests list
    /// it), into the new snapshot's manifests: as deleted (counted as
    /// removed) when it `leaves`, else as existing, keeping its sequence
    /// numbers either way.
    fn carry_entry(
        &mut self,
        entry: &ManifestEntry,
        file: DataFile,
        leaves: bool,
        deleted: &mut ManifestWriter,
        kept: &mut ManifestWriter,
    ) -> iceberg::Result<()> {
        let sequence_number = entry.sequence_number().unwrap_or(0);
        if !leaves {
            let snapshot_id = entry.snapshot_id().unwrap_or_default();
            let file_sequence_number = entry.file_sequence_number;
            return kept.add_existing_file(
                file,
                snapshot_id,
                sequence_number,
                file_sequence_number,
            );
        }
        self.summary
            .remove_file(&file, self.schema.clone(), self.spec.clone());
        self.removed.add(&file);
        deleted.add_delete_file(file, sequence_number, entry.file_sequence_number)
    }

    /// Fails when a file the snapshot rewrites is no longer live.
    fn require_named_files_removed(&self, kind: &SnapshotKind) -> iceberg::Result<()> {
        let rewritten = match kind {
            SnapshotKind::RowDelta(_) => None,
            _ => kind.named_files(),
        };
        match rewritten {
            Some(paths) if self.removed.paths.len() != paths.len() => Err(Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "files to rewrite in {} are gone: a concurrent commit changed them; run again",
                    self.table.identifier()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The manifest listing the data or delete files the snapshot adds.
    async fn added_manifest(
        &mut self,
        content: ManifestContentType,
        added: &[DataFile],
    ) -> iceberg::Result<ManifestFile> {
        let (path, mut writer) = self.manifest_writer(content)?;
        for file in added {
            writer.add_file(file.clone(), -1)?;
        }
        self.finish(path, writer).await
    }

    /// Writes the manifest list; its path, and on a v3 table the row ids
    /// it assigned (the first, and how many: v3's row lineage).
    async fn write_manifest_list(
        &mut self,
        manifests: Vec<ManifestFile>,
    ) -> iceberg::Result<(String, Option<(u64, u64)>)> {
        let metadata = self.table.metadata();
        let path = format!(
            "{}/metadata/snap-{}-0-{}.{}",
            metadata.location(),
            self.snapshot_id,
            self.commit_uuid,
            DataFileFormat::Avro
        );
        let output = self.table.file_io().new_output(&path)?.writer().await?;
        let (snapshot_id, parent) = (self.snapshot_id, metadata.current_snapshot_id());
        let sequence_number = metadata.next_sequence_number();
        let first_row_id = metadata.next_row_id();
        let mut writer = match metadata.format_version() {
            FormatVersion::V3 => ManifestListWriter::v3(
                output,
                snapshot_id,
                parent,
                sequence_number,
                Some(first_row_id),
            ),
            _ => ManifestListWriter::v2(output, snapshot_id, parent, sequence_number),
        };
        writer.add_manifests(manifests.into_iter())?;
        let row_range = writer
            .next_row_id()
            .map(|next| (first_row_id, next - first_row_id));
        writer.close().await?;
        self.metadata_files.push(path.clone());
        Ok((path, row_range))
    }
}

/// The data files that deletion vectors among `added` delete rows of.
fn vectors_added_for(added: &[DataFile]) -> HashSet<String> {
    added
        .iter()
        .filter(|f| f.file_format() == DataFileFormat::Puffin)
        .filter_map(|f| f.referenced_data_file())
        .collect()
}

/// Live files a snapshot removes.
#[derive(Default)]
struct Removed {
    /// The data files.
    paths: HashSet<String>,
    records: u64,
    /// Of data and delete files.
    bytes: u64,
    delete_files: u64,
    position_deletes: u64,
    equality_deletes: u64,
}

impl Removed {
    /// A data or delete file the snapshot removes.
    fn add(&mut self, file: &DataFile) {
        self.bytes += file.file_size_in_bytes();
        match file.content_type() {
            DataContentType::Data => {
                self.paths.insert(file.file_path().to_string());
                self.records += file.record_count();
            }
            DataContentType::EqualityDeletes => {
                self.delete_files += 1;
                self.equality_deletes += file.record_count();
            }
            DataContentType::PositionDeletes => {
                self.delete_files += 1;
                self.position_deletes += file.record_count();
            }
        }
    }
}

/// The `total-*` summary fields: the parent's, plus what was added, minus
/// what was removed.
fn totals(
    parent: Option<&Summary>,
    added: &[DataFile],
    removed: &Removed,
) -> HashMap<String, String> {
    let previous = |key: &str| parent.and_then(|s| summary_number(s, key)).unwrap_or(0);
    let added_of = |content: DataContentType, count: fn(&DataFile) -> u64| -> u64 {
        added
            .iter()
            .filter(|f| f.content_type() == content)
            .map(count)
            .sum()
    };
    let records = |f: &DataFile| f.record_count();
    let one = |_: &DataFile| 1;
    let added_size: u64 = added.iter().map(|f| f.file_size_in_bytes()).sum();
    let added_delete_files = added_of(DataContentType::PositionDeletes, one)
        + added_of(DataContentType::EqualityDeletes, one);
    let total = |key: &str, plus: u64, minus: u64| {
        (
            key.to_string(),
            (previous(key) + plus).saturating_sub(minus).to_string(),
        )
    };
    HashMap::from([
        total(
            TOTAL_RECORDS,
            added_of(DataContentType::Data, records),
            removed.records,
        ),
        total(
            TOTAL_DATA_FILES,
            added_of(DataContentType::Data, one),
            removed.paths.len() as u64,
        ),
        total(TOTAL_FILES_SIZE, added_size, removed.bytes),
        total(TOTAL_DELETE_FILES, added_delete_files, removed.delete_files),
        total(
            TOTAL_POSITION_DELETES,
            added_of(DataContentType::PositionDeletes, records),
            removed.position_deletes,
        ),
        total(
            TOTAL_EQUALITY_DELETES,
            added_of(DataContentType::EqualityDeletes, records),
            removed.equality_deletes,
        ),
    ])
}

fn unique_snapshot_id(table: &Table) -> i64 {
    loop {
        let (high, low) = Uuid::new_v4().as_u64_pair();
        let id = ((high ^ low) >> 1) as i64;
        if id != 0 && table.metadata().snapshot_by_id(id).is_none() {
            return id;
        }
    }
}
