//! Snapshots: writing a new snapshot's manifests and manifest list
//! (`plan_snapshot`), and reading a table's history and summary properties.

use std::collections::{HashMap, HashSet};

use iceberg::spec::{
    DataContentType, DataFile, DataFileFormat, FormatVersion, MAIN_BRANCH, ManifestContentType,
    ManifestFile, ManifestListWriter, ManifestWriter, ManifestWriterBuilder, Operation, Snapshot,
    SnapshotReference, SnapshotRetention, SnapshotSummaryCollector, Summary, TableMetadata,
};
use iceberg::table::Table;
use iceberg::{Error, ErrorKind, TableRequirement, TableUpdate};
use uuid::Uuid;

use crate::schema::SchemaCommit;

/// Snapshot-summary key holding the job id of the run that made the snapshot.
pub const JOB_ID_PROPERTY: &str = "medallion.job-id";

/// What a new snapshot does to the table's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileChange<'a> {
    /// Keep every live file, add the new ones.
    Append,
    /// Remove every live file, add the new ones.
    ReplaceAll,
    /// Remove exactly these live files (rewritten copies of them are among
    /// the new ones), keep the rest.
    Replace(&'a HashSet<String>),
    /// Keep every live file, listed in one new manifest instead of many.
    RewriteManifests,
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
    change: FileChange<'_>,
    added: &[DataFile],
    properties: &HashMap<String, String>,
    data_unchanged: bool,
) -> iceberg::Result<PlannedSnapshot> {
    let metadata = table.metadata();
    if metadata.format_version() != FormatVersion::V2 {
        return Err(Error::new(
            ErrorKind::FeatureUnsupported,
            format!(
                "medallion writes Iceberg v2 tables; {} is {}",
                table.identifier(),
                metadata.format_version()
            ),
        ));
    }
    let snapshot_id = unique_snapshot_id(table);
    let commit_uuid = Uuid::now_v7();
    let parent = metadata.current_snapshot();
    let sequence_number = metadata.next_sequence_number();
    let SchemaCommit {
        schema,
        updates: schema_updates,
        requirements: schema_requirements,
    } = schema;
    let spec = metadata.default_partition_spec().clone();

    let mut summary = SnapshotSummaryCollector::default();
    for file in added {
        summary.add_file(file, schema.clone(), spec.clone());
    }

    let mut manifests: Vec<ManifestFile> = Vec::new();
    let mut metadata_files = Vec::new();
    let mut manifest_counter = 0u32;
    let mut new_manifest_writer =
        |content: ManifestContentType| -> iceberg::Result<(String, ManifestWriter)> {
            let path = format!(
                "{}/metadata/{commit_uuid}-m{manifest_counter}.{}",
                metadata.location(),
                DataFileFormat::Avro
            );
            manifest_counter += 1;
            let builder = ManifestWriterBuilder::new(
                table.file_io().new_output(&path)?,
                Some(snapshot_id),
                schema.clone(),
                spec.as_ref().clone(),
            );
            let writer = match content {
                ManifestContentType::Data => builder.build_v2_data(),
                ManifestContentType::Deletes => builder.build_v2_deletes(),
            };
            Ok((path, writer))
        };

    let mut removed = Removed::default();
    if let Some(parent) = parent {
        let list = table.manifest_list_reader(parent).load().await?;
        if change == FileChange::Append {
            manifests.extend(list.consume_entries());
        } else {
            let (deleted_path, mut deleted) = new_manifest_writer(ManifestContentType::Data)?;
            let (kept_path, mut kept) = new_manifest_writer(ManifestContentType::Data)?;
            let mut any_kept = false;
            for manifest_file in list.consume_entries() {
                let manifest = manifest_file.load_manifest(table.file_io()).await?;
                let removes = |path: &str| match change {
                    FileChange::Replace(paths) => paths.contains(path),
                    FileChange::RewriteManifests => false,
                    _ => true,
                };
                let touched = change == FileChange::RewriteManifests
                    || manifest
                        .entries()
                        .iter()
                        .any(|e| e.is_alive() && removes(e.file_path()));
                if !touched {
                    manifests.push(manifest_file);
                    continue;
                }
                for entry in manifest.entries().iter().filter(|e| e.is_alive()) {
                    let file = entry.data_file();
                    if file.content_type() != DataContentType::Data {
                        return Err(Error::new(
                            ErrorKind::FeatureUnsupported,
                            format!(
                                "{} has delete files; medallion cannot rewrite it yet",
                                table.identifier()
                            ),
                        ));
                    }
                    let sequence_number = entry.sequence_number().unwrap_or(0);
                    if removes(file.file_path()) {
                        summary.remove_file(file, schema.clone(), spec.clone());
                        removed.add(file);
                        deleted.add_delete_file(
                            file.clone(),
                            sequence_number,
                            entry.file_sequence_number,
                        )?;
                    } else {
                        kept.add_existing_file(
                            file.clone(),
                            entry.snapshot_id().unwrap_or_default(),
                            sequence_number,
                            entry.file_sequence_number,
                        )?;
                        any_kept = true;
                    }
                }
            }
            if let FileChange::Replace(paths) = change
                && removed.paths.len() != paths.len()
            {
                return Err(Error::new(
                    ErrorKind::DataInvalid,
                    format!(
                        "files to rewrite in {} are gone: a concurrent commit changed them; run again",
                        table.identifier()
                    ),
                ));
            }
            if !removed.paths.is_empty() {
                manifests.push(deleted.write_manifest_file().await?);
                metadata_files.push(deleted_path);
            }
            if any_kept {
                manifests.push(kept.write_manifest_file().await?);
                metadata_files.push(kept_path);
            }
        }
    } else if let FileChange::Replace(paths) = change
        && !paths.is_empty()
    {
        return Err(Error::new(
            ErrorKind::DataInvalid,
            format!("{} has no data to rewrite", table.identifier()),
        ));
    }

    if !added.is_empty() {
        let (path, mut writer) = new_manifest_writer(ManifestContentType::Data)?;
        for file in added {
            writer.add_file(file.clone(), -1)?;
        }
        manifests.push(writer.write_manifest_file().await?);
        metadata_files.push(path);
    }

    let mut additional_properties = properties.clone();
    additional_properties.extend(summary.build());
    additional_properties.extend(totals(parent.map(|p| p.summary()), added, &removed));
    let operation = match (removed.paths.is_empty(), added.is_empty()) {
        _ if change == FileChange::RewriteManifests => Operation::Replace,
        // Compaction: the same rows in other files.
        (false, false) if data_unchanged => Operation::Replace,
        (true, _) => Operation::Append,
        (false, true) => Operation::Delete,
        (false, false) => Operation::Overwrite,
    };

    let list_path = format!(
        "{}/metadata/snap-{snapshot_id}-0-{commit_uuid}.{}",
        metadata.location(),
        DataFileFormat::Avro
    );
    let mut list_writer = ManifestListWriter::v2(
        table.file_io().new_output(&list_path)?.writer().await?,
        snapshot_id,
        metadata.current_snapshot_id(),
        sequence_number,
    );
    list_writer.add_manifests(manifests.into_iter())?;
    list_writer.close().await?;
    metadata_files.push(list_path.clone());

    let snapshot = Snapshot::builder()
        .with_manifest_list(list_path)
        .with_snapshot_id(snapshot_id)
        .with_parent_snapshot_id(metadata.current_snapshot_id())
        .with_sequence_number(sequence_number)
        .with_summary(Summary {
            operation,
            additional_properties,
        })
        .with_schema_id(schema.schema_id())
        .with_timestamp_ms(chrono::Utc::now().timestamp_millis())
        .build();

    let mut updates = schema_updates;
    updates.extend([
        TableUpdate::AddSnapshot { snapshot },
        TableUpdate::SetSnapshotRef {
            ref_name: MAIN_BRANCH.to_string(),
            reference: SnapshotReference::new(
                snapshot_id,
                SnapshotRetention::branch(None, None, None),
            ),
        },
    ]);
    let mut requirements = on_current_head(metadata);
    requirements.extend(schema_requirements);
    Ok(PlannedSnapshot {
        snapshot_id,
        updates,
        requirements,
        metadata_files,
    })
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

/// Live files a snapshot removes.
#[derive(Default)]
struct Removed {
    paths: HashSet<String>,
    records: u64,
    bytes: u64,
}

impl Removed {
    fn add(&mut self, file: &DataFile) {
        self.paths.insert(file.file_path().to_string());
        self.records += file.record_count();
        self.bytes += file.file_size_in_bytes();
    }
}

/// The `total-*` summary fields: the parent's, plus what was added, minus
/// what was removed.
fn totals(
    parent: Option<&Summary>,
    added: &[DataFile],
    removed: &Removed,
) -> HashMap<String, String> {
    let previous = |key: &str| -> u64 {
        parent
            .and_then(|s| s.additional_properties.get(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let added_records: u64 = added.iter().map(|f| f.record_count()).sum();
    let added_size: u64 = added.iter().map(|f| f.file_size_in_bytes()).sum();
    let total = |key: &str, plus: u64, minus: u64| {
        (
            key.to_string(),
            (previous(key) + plus).saturating_sub(minus).to_string(),
        )
    };
    HashMap::from([
        total("total-records", added_records, removed.records),
        total(
            "total-data-files",
            added.len() as u64,
            removed.paths.len() as u64,
        ),
        total("total-files-size", added_size, removed.bytes),
        ("total-delete-files".to_string(), "0".to_string()),
        ("total-position-deletes".to_string(), "0".to_string()),
        ("total-equality-deletes".to_string(), "0".to_string()),
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

/// One line of a table's history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotInfo {
    pub snapshot_id: i64,
    pub parent_id: Option<i64>,
    pub timestamp_ms: i64,
    pub operation: String,
    pub job_id: Option<String>,
    pub added_records: Option<u64>,
    pub total_records: Option<u64>,
    pub is_current: bool,
}

/// The table's snapshots, oldest first.
pub fn snapshot_infos(table: &Table) -> Vec<SnapshotInfo> {
    let metadata = table.metadata();
    let current = metadata.current_snapshot_id();
    let mut infos: Vec<SnapshotInfo> = metadata
        .snapshots()
        .map(|s| {
            let props = &s.summary().additional_properties;
            let number = |key: &str| props.get(key).and_then(|v| v.parse().ok());
            SnapshotInfo {
                snapshot_id: s.snapshot_id(),
                parent_id: s.parent_snapshot_id(),
                timestamp_ms: s.timestamp_ms(),
                operation: s.summary().operation.as_str().to_string(),
                job_id: props.get(JOB_ID_PROPERTY).cloned(),
                added_records: number("added-records"),
                total_records: number("total-records"),
                is_current: Some(s.snapshot_id()) == current,
            }
        })
        .collect();
    infos.sort_by_key(|i| (i.timestamp_ms, i.snapshot_id));
    infos
}

/// The snapshot on the current branch's lineage made by `job_id`, if any.
pub fn snapshot_of_job(table: &Table, job_id: &str) -> Option<i64> {
    lineage(table)
        .find(|s| {
            s.summary()
                .additional_properties
                .get(JOB_ID_PROPERTY)
                .map(String::as_str)
                == Some(job_id)
        })
        .map(|s| s.snapshot_id())
}

/// The newest value of a snapshot-summary property on the current branch's
/// lineage (e.g. what a job recorded about its inputs when it last committed).
pub fn latest_summary_property<'a>(table: &'a Table, key: &str) -> Option<&'a str> {
    lineage(table).find_map(|s| {
        s.summary()
            .additional_properties
            .get(key)
            .map(String::as_str)
    })
}

/// The current snapshot and its ancestors, newest first.
pub(crate) fn lineage(table: &Table) -> impl Iterator<Item = &iceberg::spec::SnapshotRef> {
    let metadata = table.metadata();
    std::iter::successors(metadata.current_snapshot(), move |snapshot| {
        snapshot
            .parent_snapshot_id()
            .and_then(|id| metadata.snapshot_by_id(id))
    })
}
