//! `commit: single` for a sharded job: each shard writes its data files and
//! stages them in a record beside the table's metadata
//! (`metadata/shards-<job id>-<i>-of-<n>.metadata.json`: S3 table buckets,
//! SeaweedFS's among them, refuse other names there); the shard that then
//! finds every record commits all their files in one snapshot with the
//! job id, so readers see the whole load or none of it.
//!
//! Object stores read after write (S3, MinIO, SeaweedFS), so whoever
//! stages last finds every record: its own is written before it looks, and
//! of two shards finishing together at least one sees the other. They meet
//! at the table the catalog kept (see `execute_shard`).
//! Two that both see every record both commit, and the job id makes the
//! second a no-op. A pod retried after staging finds its record and only
//! finalizes; a record half written by a killed pod does not parse and
//! counts as missing, so that shard writes again. Records of a committed
//! job are deleted; files of a job whose shards never all stage stay
//! unreferenced until `remove-orphan-files`.

use std::error::Error as StdError;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::Stream;
use iceberg::spec::{
    DataFile, Schema as IcebergSchema, deserialize_data_file_from_json, serialize_data_file_to_json,
};
use iceberg::table::Table;

use crate::commit::{CommitOutcome, WriteStats, commit_staged};
use crate::data_files::{delete_quietly, write_data_files};
use crate::error::{CatalogError, Context, Result};
use crate::history::SHARDS_PROPERTY;
use crate::schema::StagedSchema;
use crate::shard::Shard;
use crate::target::{ensure_table, fit};
use crate::write::TableWrite;

/// What one shard of a `commit: single` job did.
#[derive(Debug, Clone)]
pub enum ShardOutcome {
    /// This shard's files are staged; the last shard to stage commits them.
    Staged {
        stats: WriteStats,
        /// The shards not staged yet.
        waiting_for: Vec<u32>,
    },
    /// Every shard had staged: all their files are in one snapshot,
    /// committed by this shard or by one that finalized first.
    Finished(CommitOutcome),
}

/// One shard's staged files.
#[derive(serde::Serialize, serde::Deserialize)]
struct StagedShard {
    job_id: String,
    shard: String,
    schema: StagedSchema,
    partition_spec_id: i32,
    /// Each data file as Iceberg's JSON of it.
    data_files: Vec<String>,
}

impl TableWrite {
    /// Writes this shard's rows into data files and stages them; commits
    /// every shard's files in one snapshot once all have staged. Only
    /// appends are sharded.
    pub async fn execute_shard<S, E>(
        self,
        shard: Shard,
        schema: SchemaRef,
        partitions: Vec<S>,
    ) -> Result<ShardOutcome>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
    {
        let job_id = self.options.commit.job().ok_or_else(|| {
            CatalogError::Config("a sharded write needs a job id, the same in every shard".into())
        })?;
        // No purge when a first write fails, as an unsharded write does:
        // other shards may be writing into the table this one created.
        let (table, _) =
            ensure_table(&self.lakehouse, &self.ident, &schema, self.options.layout()).await?;
        if let Some(snapshot_id) = self.options.commit.committed_in(&table) {
            return Ok(ShardOutcome::Finished(CommitOutcome::AlreadyCommitted {
                snapshot_id,
            }));
        }
        let own = Staging {
            table: &table,
            job_id,
            count: shard.count,
        };
        let written = match own.read(shard.index).await? {
            Some(staged) => {
                tracing::info!(table = %table.identifier(), %shard, "this shard's files were staged by an earlier run; not writing them again");
                Written::Before(WriteStats::of(&staged.files))
            }
            None => {
                self.write_files(&table, job_id, shard, &schema, partitions)
                    .await?
            }
        };
        // The shards meet at the table as the catalog has it once this
        // shard's files are written: a create of it by another shard still
        // on its way when `ensure_table` looked has long landed (see there).
        let head = self.lakehouse.load_table(&self.ident).await?;
        let staging = Staging {
            table: &head,
            ..own
        };
        let stats = match written {
            Written::Before(stats) => stats,
            Written::Now { record, files } => {
                if let Err(e) = staging.write(shard.index, &record).await {
                    delete_quietly(&table, files.iter().map(|f| f.file_path().to_string())).await;
                    return Err(e);
                }
                WriteStats::of(&files)
            }
        };
        self.finalize(&staging, stats).await
    }

    /// Writes this shard's rows into data files, and the record that
    /// stages them.
    async fn write_files<S, E>(
        &self,
        table: &Table,
        job_id: &str,
        shard: Shard,
        schema: &SchemaRef,
        partitions: Vec<S>,
    ) -> Result<Written>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
    {
        let written = fit(table, schema, self.options.on_schema_change)?;
        let files = write_data_files(table, &written, Some(job_id), partitions).await?;
        let record = StagedShard {
            job_id: job_id.to_string(),
            shard: shard.to_string(),
            schema: written.staged(),
            partition_spec_id: table.metadata().default_partition_spec_id(),
            data_files: files_as_json(table, &written.schema, &files)?,
        };
        Ok(Written::Now {
            record: Box::new(record),
            files,
        })
    }

    /// Commits every shard's files when all have staged.
    async fn finalize(&self, staging: &Staging<'_>, stats: WriteStats) -> Result<ShardOutcome> {
        let mut staged = Vec::new();
        let mut waiting_for = Vec::new();
        for index in 0..staging.count {
            match staging.read(index).await? {
                Some(shard) => staged.push(shard),
                None => waiting_for.push(index),
            }
        }
        if !waiting_for.is_empty() {
            // The records go once their files are committed: a shard that
            // finalized first may have just removed them.
            let head = self.lakehouse.load_table(&self.ident).await?;
            if let Some(snapshot_id) = self.options.commit.committed_in(&head) {
                let outcome = CommitOutcome::AlreadyCommitted { snapshot_id };
                return Ok(ShardOutcome::Finished(outcome));
            }
            return Ok(ShardOutcome::Staged { stats, waiting_for });
        }
        let schema = staging.one_schema(&staged)?;
        let files: Vec<DataFile> = staged.into_iter().flat_map(|s| s.files).collect();
        let properties = self
            .options
            .commit
            .clone()
            .snapshot_property(SHARDS_PROPERTY, staging.count.to_string());
        let outcome = commit_staged(
            &self.lakehouse,
            &self.ident,
            &properties,
            &schema.for_commit(),
            &files,
        )
        .await?;
        staging.remove().await;
        Ok(ShardOutcome::Finished(outcome))
    }
}

/// This shard's files: staged by an earlier run of it, or written now.
enum Written {
    Before(WriteStats),
    Now {
        record: Box<StagedShard>,
        files: Vec<DataFile>,
    },
}

/// The staged records of one job's shards.
struct Staging<'a> {
    table: &'a Table,
    job_id: &'a str,
    count: u32,
}

impl Staging<'_> {
    fn path(&self, index: u32) -> String {
        format!(
            "{}/metadata/shards-{}-{index}-of-{}.metadata.json",
            self.table.metadata().location().trim_end_matches('/'),
            self.job_id,
            self.count
        )
    }

    async fn write(&self, index: u32, record: &StagedShard) -> Result<()> {
        let path = self.path(index);
        let bytes = serde_json::to_vec(record).map_err(|e| CatalogError::Config(e.to_string()))?;
        self.table
            .file_io()
            .new_output(&path)
            .context(|| format!("cannot stage the files of a shard at {path}"))?
            .write(bytes.into())
            .await
            .context(|| format!("cannot stage the files of a shard at {path}"))
    }

    /// Shard `index`'s record and its files, if it staged them; a record
    /// that does not parse (its pod was killed writing it) counts as none.
    async fn read(&self, index: u32) -> Result<Option<StagedFiles>> {
        let path = self.path(index);
        let io = self.table.file_io();
        let context = || format!("cannot read the staged files of a shard at {path}");
        if !io.exists(&path).await.context(context)? {
            return Ok(None);
        }
        let bytes = io
            .new_input(&path)
            .context(context)?
            .read()
            .await
            .context(context)?;
        let record: StagedShard = match serde_json::from_slice(&bytes) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(path, error = %e, "a shard's staged record is incomplete; that shard counts as not staged");
                return Ok(None);
            }
        };
        let files = files_from_json(self.table, &record)?;
        Ok(Some(StagedFiles {
            schema: record.schema,
            partition_spec_id: record.partition_spec_id,
            files,
        }))
    }

    /// The schema every shard wrote in; shards whose files differ in
    /// columns (raw files that drifted) cannot share one snapshot.
    fn one_schema(&self, staged: &[StagedFiles]) -> Result<StagedSchema> {
        let first = &staged[0];
        let same = |other: &StagedFiles| {
            other.schema == first.schema && other.partition_spec_id == first.partition_spec_id
        };
        if let Some(index) = staged.iter().position(|other| !same(other)) {
            return Err(CatalogError::Shards {
                table: self.table.identifier().clone(),
                job_id: self.job_id.to_string(),
                detail: format!(
                    "shard {index} wrote other columns than shard 0 (their raw files differ); \
                     give the raw files one schema, or use `commit: per-shard`"
                ),
            });
        }
        Ok(first.schema.clone())
    }

    /// The records of a committed job are no longer needed.
    async fn remove(&self) {
        delete_quietly(self.table, (0..self.count).map(|index| self.path(index))).await;
    }
}

/// One shard's staged files, read back: the schema and partition spec
/// they were written in.
struct StagedFiles {
    schema: StagedSchema,
    partition_spec_id: i32,
    files: Vec<DataFile>,
}

fn files_as_json(table: &Table, schema: &IcebergSchema, files: &[DataFile]) -> Result<Vec<String>> {
    let metadata = table.metadata();
    let partition_type = metadata
        .default_partition_spec()
        .partition_type(schema)
        .context(|| format!("cannot stage the files of {}", table.identifier()))?;
    files
        .iter()
        .map(|file| {
            serialize_data_file_to_json(file.clone(), &partition_type, metadata.format_version())
                .context(|| format!("cannot stage data file {}", file.file_path()))
        })
        .collect()
}

fn files_from_json(table: &Table, record: &StagedShard) -> Result<Vec<DataFile>> {
    let schema = record.schema.schema();
    let spec = table
        .metadata()
        .partition_spec_by_id(record.partition_spec_id)
        .ok_or_else(|| CatalogError::Shards {
            table: table.identifier().clone(),
            job_id: record.job_id.clone(),
            detail: format!(
                "shard {} wrote its files in partition spec {}, which the table no longer has",
                record.shard, record.partition_spec_id
            ),
        })?;
    let partition_type = spec
        .partition_type(schema)
        .context(|| format!("cannot read the staged files of {}", table.identifier()))?;
    record
        .data_files
        .iter()
        .map(|json| {
            deserialize_data_file_from_json(json, record.partition_spec_id, &partition_type, schema)
                .context(|| format!("cannot read a staged data file of shard {}", record.shard))
        })
        .collect()
}
