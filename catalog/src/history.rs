//! A table's history as medallion reads and writes it: every snapshot-summary
//! key named once, the lookups over the current branch's snapshots (a job's
//! snapshot, what a job last read), and the one-line views `medallion
//! history` and `medallion tables` print.

use iceberg::spec::{SnapshotRef, Summary};
use iceberg::table::Table;

use crate::shard::Shard;

/// Snapshot-summary key holding the job id of the run that made the snapshot.
pub(crate) const JOB_ID_PROPERTY: &str = "medallion.job-id";

/// Snapshot-summary key naming the shard (`2/4`) whose files a per-shard
/// commit added; a job id commits once per shard.
pub(crate) const SHARD_PROPERTY: &str = "medallion.shard";

/// Snapshot-summary key holding how many shards' files a single commit of a
/// sharded job added.
pub(crate) const SHARDS_PROPERTY: &str = "medallion.shards";

/// Snapshot-summary key holding the name of the job that made the snapshot.
pub(crate) const JOB_PROPERTY: &str = "medallion.job";

/// Snapshot-summary key naming what a maintenance or delete commit did
/// (`compact`, `rewrite-manifests`, `delete`).
pub(crate) const OPERATION_PROPERTY: &str = "medallion.operation";

/// Prefix of the keys recording which snapshot of an input table a job read
/// (`medallion.read.bronze.orders`).
const INPUT_READ_PREFIX: &str = "medallion.read.";

/// The key recording which snapshot of `input` (a table name) a job read.
pub(crate) fn input_read_property(input: &str) -> String {
    format!("{INPUT_READ_PREFIX}{input}")
}

/// Iceberg's standard summary fields that medallion writes and reads.
pub(crate) const ENGINE_NAME: &str = "engine-name";
pub(crate) const ENGINE_VERSION: &str = "engine-version";
pub(crate) const ADDED_RECORDS: &str = "added-records";
pub(crate) const ADDED_DATA_FILES: &str = "added-data-files";
pub(crate) const ADDED_POSITION_DELETES: &str = "added-position-deletes";
pub(crate) const DELETED_DATA_FILES: &str = "deleted-data-files";
pub(crate) const TOTAL_RECORDS: &str = "total-records";
pub(crate) const TOTAL_DATA_FILES: &str = "total-data-files";
pub(crate) const TOTAL_FILES_SIZE: &str = "total-files-size";
pub(crate) const TOTAL_DELETE_FILES: &str = "total-delete-files";
pub(crate) const TOTAL_POSITION_DELETES: &str = "total-position-deletes";
pub(crate) const TOTAL_EQUALITY_DELETES: &str = "total-equality-deletes";

/// A numeric summary field, when the snapshot has it.
pub(crate) fn summary_number(summary: &Summary, key: &str) -> Option<u64> {
    summary
        .additional_properties
        .get(key)
        .and_then(|v| v.parse().ok())
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
    /// Rows the snapshot deleted by position (merge-on-read).
    pub added_position_deletes: Option<u64>,
    /// Rows that the table's delete files delete, and those files.
    pub total_position_deletes: Option<u64>,
    pub total_delete_files: Option<u64>,
    pub is_current: bool,
}

/// The table's snapshots, oldest first.
pub fn snapshot_infos(table: &Table) -> Vec<SnapshotInfo> {
    let metadata = table.metadata();
    let current = metadata.current_snapshot_id();
    let mut infos: Vec<SnapshotInfo> = metadata
        .snapshots()
        .map(|s| SnapshotInfo {
            snapshot_id: s.snapshot_id(),
            parent_id: s.parent_snapshot_id(),
            timestamp_ms: s.timestamp_ms(),
            operation: s.summary().operation.as_str().to_string(),
            job_id: s
                .summary()
                .additional_properties
                .get(JOB_ID_PROPERTY)
                .cloned(),
            added_records: summary_number(s.summary(), ADDED_RECORDS),
            total_records: summary_number(s.summary(), TOTAL_RECORDS),
            added_position_deletes: summary_number(s.summary(), ADDED_POSITION_DELETES),
            total_position_deletes: summary_number(s.summary(), TOTAL_POSITION_DELETES),
            total_delete_files: summary_number(s.summary(), TOTAL_DELETE_FILES),
            is_current: Some(s.snapshot_id()) == current,
        })
        .collect();
    infos.sort_by_key(|i| (i.timestamp_ms, i.snapshot_id));
    infos
}

/// What `medallion tables` shows of one table: its current snapshot and the
/// totals that snapshot's summary records (zero for a table without one).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableInfo {
    pub snapshot_id: Option<i64>,
    /// Rows in its data files, deleted ones included.
    pub records: u64,
    /// Rows that position delete files (of merge-on-read engines) delete.
    pub position_deletes: u64,
    pub delete_files: u64,
    pub data_files: u64,
    pub bytes: u64,
    /// When the current snapshot was committed.
    pub timestamp_ms: Option<i64>,
}

impl TableInfo {
    /// The rows a reader sees: those of its data files less the deleted.
    pub fn live_rows(&self) -> u64 {
        self.records.saturating_sub(self.position_deletes)
    }

    pub fn of(table: &Table) -> Self {
        let current = table.metadata().current_snapshot();
        let total = |key| {
            current
                .and_then(|s| summary_number(s.summary(), key))
                .unwrap_or(0)
        };
        Self {
            snapshot_id: current.map(|s| s.snapshot_id()),
            records: total(TOTAL_RECORDS),
            position_deletes: total(TOTAL_POSITION_DELETES),
            delete_files: total(TOTAL_DELETE_FILES),
            data_files: total(TOTAL_DATA_FILES),
            bytes: total(TOTAL_FILES_SIZE),
            timestamp_ms: current.map(|s| s.timestamp_ms()),
        }
    }
}

/// Whether the table's current snapshot holds rows (a table without a
/// snapshot holds none; a summary without totals may).
pub(crate) fn may_have_rows(table: &Table) -> bool {
    table.metadata().current_snapshot().is_some_and(|s| {
        s.summary()
            .additional_properties
            .get(TOTAL_RECORDS)
            .map(String::as_str)
            != Some("0")
    })
}

/// The snapshot on the current branch's lineage made by `job_id` as a
/// whole (not one shard of it), if any.
pub fn snapshot_of_job(table: &Table, job_id: &str) -> Option<i64> {
    snapshots_of_job(table, job_id)
        .find(|s| shard_of(s).is_none())
        .map(|s| s.snapshot_id())
}

/// The snapshot holding `shard` of `job_id`: its per-shard commit, or the
/// job's whole commit, which holds every shard.
pub fn snapshot_of_shard(table: &Table, job_id: &str, shard: Shard) -> Option<i64> {
    let shard = shard.to_string();
    snapshots_of_job(table, job_id)
        .find(|s| shard_of(s).is_none_or(|committed| committed == shard))
        .map(|s| s.snapshot_id())
}

/// The shards of `job_id` that committed on their own (per-shard), newest first.
pub fn shards_of_job(table: &Table, job_id: &str) -> Vec<String> {
    snapshots_of_job(table, job_id)
        .filter_map(|s| shard_of(s).map(str::to_string))
        .collect()
}

fn snapshots_of_job<'a>(
    table: &'a Table,
    job_id: &'a str,
) -> impl Iterator<Item = &'a SnapshotRef> {
    lineage(table).filter(move |s| {
        s.summary()
            .additional_properties
            .get(JOB_ID_PROPERTY)
            .map(String::as_str)
            == Some(job_id)
    })
}

fn shard_of(snapshot: &SnapshotRef) -> Option<&str> {
    snapshot
        .summary()
        .additional_properties
        .get(SHARD_PROPERTY)
        .map(String::as_str)
}

/// The rows in `table` as of snapshot `snapshot_id` (its summary's
/// `total-records` less its `total-position-deletes`: medallion's and
/// Iceberg Java's position deletes never name a row twice), when the
/// snapshot records them.
pub fn table_rows(table: &Table, snapshot_id: i64) -> Option<u64> {
    let snapshot = table.metadata().snapshot_by_id(snapshot_id)?;
    let deleted = summary_number(snapshot.summary(), TOTAL_POSITION_DELETES).unwrap_or(0);
    summary_number(snapshot.summary(), TOTAL_RECORDS).map(|rows| rows.saturating_sub(deleted))
}

/// The snapshot of table `input` that the newest job writing `table` read
/// (recorded under [`input_read_property`]), if a job recorded one.
pub fn input_read(table: &Table, input: &str) -> Option<i64> {
    latest_summary_property(table, &input_read_property(input)).and_then(|v| v.parse().ok())
}

/// The newest value of a snapshot-summary property on the current branch's
/// lineage (e.g. what a job recorded about its inputs when it last committed).
fn latest_summary_property<'a>(table: &'a Table, key: &str) -> Option<&'a str> {
    lineage(table).find_map(|s| {
        s.summary()
            .additional_properties
            .get(key)
            .map(String::as_str)
    })
}

/// The current snapshot and its ancestors, newest first.
pub(crate) fn lineage(table: &Table) -> impl Iterator<Item = &SnapshotRef> {
    let metadata = table.metadata();
    std::iter::successors(metadata.current_snapshot(), move |snapshot| {
        snapshot
            .parent_snapshot_id()
            .and_then(|id| metadata.snapshot_by_id(id))
    })
}

/// Whether `snapshot_id` is the current snapshot or one of its ancestors.
pub(crate) fn in_lineage(table: &Table, snapshot_id: i64) -> bool {
    lineage(table).any(|s| s.snapshot_id() == snapshot_id)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::stream;

    use super::*;
    use crate::commit::CommitProperties;
    use crate::connection::Lakehouse;
    use crate::schema::table_ident;
    use crate::write::{WriteMode, WriteOptions};

    fn keys(range: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("key", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(range))]).unwrap()
    }

    #[tokio::test]
    async fn table_info_and_input_reads_come_from_the_newest_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("silver.things").unwrap();
        let writes = [
            (0..10, 7, WriteMode::Overwrite),
            (10..14, 9, WriteMode::Append),
        ];
        for (rows, read, mode) in writes {
            let options = WriteOptions {
                commit: CommitProperties::default().input_read("bronze.things", read),
                ..WriteOptions::default()
            };
            lakehouse
                .write(ident.clone(), mode)
                .with_options(options)
                .execute(
                    keys(0..1).schema(),
                    vec![stream::iter([Ok::<_, std::io::Error>(keys(rows))])],
                )
                .await
                .unwrap();
        }
        let table = lakehouse.load_table(&ident).await.unwrap();
        let info = TableInfo::of(&table);
        assert_eq!((info.records, info.data_files), (14, 2));
        assert!(info.bytes > 0);
        assert_eq!(info.snapshot_id, table.metadata().current_snapshot_id());
        assert_eq!(input_read(&table, "bronze.things"), Some(9));
        assert_eq!(input_read(&table, "bronze.other"), None);
    }
}
