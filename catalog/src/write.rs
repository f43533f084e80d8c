//! `TableWrite`: one write to one table, its rows streamed into data files
//! and committed as one snapshot, re-planned and retried on conflicts.

use std::collections::{HashMap, HashSet};
use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::{Schema, SchemaRef};
use futures::{Stream, StreamExt};
use iceberg::arrow::{
    RecordBatchPartitionSplitter, arrow_schema_to_schema_auto_assign_ids, schema_to_arrow_schema,
};
use iceberg::spec::{DataFile, DataFileFormat, Struct, TableMetadata, TableProperties};
use iceberg::table::Table;
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::{ErrorKind, TableCreation, TableIdent};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::connection::Lakehouse;
use crate::error::{CatalogError, Context, Result};
use crate::fanout::PartitionWriters;
use crate::partition::{PartitionField, check_spec, unbound_spec};
use crate::scan::{live_files, snapshot_files};
use crate::schema::{SchemaEvolution, WriteSchema, fit_schema, normalize_arrow_schema};
use crate::snapshot::{FileChange, JOB_ID_PROPERTY, plan_snapshot, snapshot_of_job};

/// How a write changes the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Add the new rows; keep every existing row (bronze loads).
    Append,
    /// Replace the whole table with the new rows (gold aggregates, silver rebuilds).
    Overwrite,
    /// Replace the partitions the new rows fall in; keep the others.
    OverwritePartitions,
}

/// Retries of a commit that lost an optimistic-concurrency race.
#[derive(Debug, Clone)]
pub struct CommitPolicy {
    pub max_attempts: u32,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

/// Twenty attempts with backoff up to 5 s give up after about a minute of
/// losing races. Ten were too few for four writers whose merges re-plan on
/// every head: on a loaded 2-core machine one merge lost ten times in a row.
impl Default for CommitPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 20,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl CommitPolicy {
    /// Exponential backoff with full jitter, so racing writers spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .min_backoff
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_backoff);
        let jitter = (Uuid::new_v4().as_u128() % 1000) as u32;
        ceiling
            .mul_f64(f64::from(jitter) / 1000.0)
            .max(self.min_backoff)
    }
}

/// What a write put into the table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteStats {
    pub rows: u64,
    pub bytes: u64,
    pub files: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommitOutcome {
    Committed {
        snapshot_id: i64,
        stats: WriteStats,
        attempts: u32,
    },
    /// The job id had already committed to this table; nothing was written.
    AlreadyCommitted { snapshot_id: i64 },
}

/// One write to one table: data files streamed to storage, then a single
/// atomic snapshot commit. Readers see the old snapshot or the new one.
pub struct TableWrite {
    lakehouse: Lakehouse,
    ident: TableIdent,
    mode: WriteMode,
    job_id: Option<String>,
    policy: CommitPolicy,
    snapshot_properties: HashMap<String, String>,
    /// Copy-on-write: the live files the new data replaces.
    replaced: Option<HashSet<String>>,
    /// The snapshot `replaced` was chosen on, when files added after it
    /// may hold rows the write should have replaced (`None`: no snapshot).
    replaced_as_of: Option<Option<i64>>,
    /// The written rows are the replaced files' rows (compaction).
    data_unchanged: bool,
    /// The partitioning the job asks for; `None`: whatever the table has.
    partition_by: Option<Vec<PartitionField>>,
    /// No data change: list the live files in one new manifest.
    manifests_only: bool,
    /// What the write may do to the table's schema.
    evolution: SchemaEvolution,
}

const ROW_GROUP_ROWS: usize = 256 * 1024;

/// A column's dictionary is given up beyond this size. Parquet's default
/// (1 MiB) keeps interning unique keys and comments for 100,000+ rows per
/// row group before falling back to plain encoding; at 64 KiB only columns
/// of few values (dates, statuses, clerks) stay dictionary-encoded, and the
/// bronze orders encode 37% faster into a 12% smaller file
/// (the `write` group of `engine/benches/hot_paths.rs`).
const DICTIONARY_PAGE_LIMIT: usize = 64 * 1024;

/// How every data file medallion writes is encoded: zstd (level 1 compresses
/// as well as 3 on this data, faster), row groups of at most 256Ki rows.
pub fn data_file_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(1).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_LIMIT)
        .build()
}

impl Lakehouse {
    /// Starts a write to `table` (created on first write).
    pub fn write(&self, table: TableIdent, mode: WriteMode) -> TableWrite {
        TableWrite::new(self.clone(), table, mode)
    }
}

impl TableWrite {
    fn new(lakehouse: Lakehouse, ident: TableIdent, mode: WriteMode) -> Self {
        Self {
            lakehouse,
            ident,
            mode,
            job_id: None,
            policy: CommitPolicy::default(),
            snapshot_properties: HashMap::new(),
            replaced: None,
            replaced_as_of: None,
            data_unchanged: false,
            partition_by: None,
            manifests_only: false,
            evolution: SchemaEvolution::default(),
        }
    }

    /// What the write may do when the data's columns differ from the table's.
    pub fn on_schema_change(mut self, evolution: SchemaEvolution) -> Self {
        self.evolution = evolution;
        self
    }

    /// Makes the commit a rewrite of the manifests only (rewrite-manifests).
    pub(crate) fn manifests_only(mut self) -> Self {
        self.manifests_only = true;
        self
    }

    /// Partitions a new table so; an existing one must already be.
    pub fn partition_by(mut self, fields: Vec<PartitionField>) -> Self {
        self.partition_by = Some(fields);
        self
    }

    /// Marks the write as a rewrite of the same rows (compaction): its
    /// snapshot is a `replace`, which readers and incremental jobs skip.
    pub(crate) fn data_unchanged(mut self) -> Self {
        self.data_unchanged = true;
        self
    }

    /// Copy-on-write: the written data replaces exactly these live files
    /// (by path), whatever the write mode; every other file stays.
    pub fn replacing_files(mut self, paths: HashSet<String>) -> Self {
        self.replaced = Some(paths);
        self
    }

    /// Overwrite by filter: the replaced files were chosen on `snapshot_id`
    /// (`None`: the table had none). The commit fails, asking for a re-run,
    /// if data files were added since, since they may hold rows the filter
    /// matches that would otherwise survive the overwrite.
    pub fn replaced_as_of(mut self, snapshot_id: Option<i64>) -> Self {
        self.replaced_as_of = Some(snapshot_id);
        self
    }

    /// Makes the write idempotent: a job id commits to a table at most once.
    pub fn job_id(mut self, job_id: impl Into<String>) -> Self {
        self.job_id = Some(job_id.into());
        self
    }

    pub fn commit_policy(mut self, policy: CommitPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn snapshot_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.snapshot_properties.insert(key.into(), value.into());
        self
    }

    /// Streams every partition into data files (one writer per partition,
    /// in parallel), then commits them as one snapshot.
    pub async fn execute<S, E>(self, schema: SchemaRef, partitions: Vec<S>) -> Result<CommitOutcome>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
    {
        let (table, created) = self.ensure_table(&schema).await?;
        if let Some(snapshot_id) = self.committed_by_job(&table) {
            return Ok(CommitOutcome::AlreadyCommitted { snapshot_id });
        }
        let result = async {
            let written = self.fit(&table, &schema)?;
            let files = self.write_files(&table, &written, partitions).await?;
            if self.mode == WriteMode::OverwritePartitions && self.replaced.is_none() {
                let partitions = files.iter().map(|f| f.partition().clone()).collect();
                self.commit(&written, &files, &mut ReplacePartitions(partitions))
                    .await
            } else if let (Some(replaced), Some(as_of)) = (&self.replaced, self.replaced_as_of) {
                let mut planner = ReplaceWithoutNewFiles {
                    ident: self.ident.clone(),
                    replaced: replaced.clone(),
                    as_of,
                };
                self.commit(&written, &files, &mut planner).await
            } else {
                self.commit(&written, &files, &mut SameChange(self.replaced.clone()))
                    .await
            }
        }
        .await;
        if result.is_err() && created {
            self.drop_if_still_empty().await;
        }
        result
    }

    /// A failed first write leaves no empty table behind, nor its first
    /// metadata file: the table is purged, not only dropped.
    pub(crate) async fn drop_if_still_empty(&self) {
        if let Ok(table) = self.lakehouse.load_table(&self.ident).await
            && table.metadata().snapshots().len() == 0
            && let Err(e) = self.lakehouse.catalog().purge_table(&self.ident).await
        {
            tracing::warn!(table = %self.ident, error = %e, "could not drop the table created by a failed write");
        }
    }

    /// How data of this schema lands in the table (see [`fit_schema`]).
    pub(crate) fn fit(&self, table: &Table, data: &Schema) -> Result<WriteSchema> {
        let written = fit_schema(&self.ident, table.metadata(), data, self.evolution)?;
        let nulls: Vec<&str> = written
            .schema
            .as_struct()
            .fields()
            .iter()
            .zip(&written.sources)
            .filter(|(_, source)| source.is_none())
            .map(|(field, _)| field.name.as_str())
            .collect();
        if !nulls.is_empty() {
            tracing::info!(table = %self.ident, columns = nulls.join(", "), "columns missing from the data are written as nulls");
        }
        Ok(written)
    }

    pub(crate) fn committed_by_job(&self, table: &Table) -> Option<i64> {
        self.job_id
            .as_deref()
            .and_then(|job_id| snapshot_of_job(table, job_id))
    }

    /// The target table, and whether this write created it.
    pub(crate) async fn ensure_table(&self, schema: &Schema) -> Result<(Table, bool)> {
        if let Some(table) = self.lakehouse.try_load_table(&self.ident).await? {
            if let Some(wanted) = &self.partition_by {
                let metadata = table.metadata();
                check_spec(
                    &self.ident,
                    metadata.current_schema(),
                    metadata.default_partition_spec(),
                    wanted,
                )?;
            }
            return Ok((table, false));
        }
        self.lakehouse
            .ensure_namespace(self.ident.namespace())
            .await?;
        let iceberg_schema = arrow_schema_to_schema_auto_assign_ids(&normalize_arrow_schema(
            schema,
        ))
        .context(|| {
            format!(
                "the output of the job cannot be stored in Iceberg table {}",
                self.ident
            )
        })?;
        let partition_spec = unbound_spec(
            &self.ident,
            &iceberg_schema,
            self.partition_by.as_deref().unwrap_or_default(),
        )?;
        let creation = TableCreation::builder()
            .name(self.ident.name().to_string())
            .schema(iceberg_schema)
            .partition_spec(partition_spec)
            .properties(HashMap::from([
                (
                    TableProperties::PROPERTY_DEFAULT_FILE_FORMAT.to_string(),
                    "parquet".to_string(),
                ),
                (
                    "write.parquet.compression-codec".to_string(),
                    "zstd".to_string(),
                ),
            ]))
            .build();
        match self
            .lakehouse
            .catalog()
            .create_table(self.ident.namespace(), creation)
            .await
        {
            Ok(table) => {
                tracing::info!(table = %self.ident, "created table");
                Ok((table, true))
            }
            // A concurrent writer may have created it first; catalogs say so
            // differently (SQLite: a unique-constraint error), so look.
            Err(e) => match self.lakehouse.try_load_table(&self.ident).await? {
                Some(table) => Ok((table, false)),
                None => Err(e).context(|| format!("cannot create table {}", self.ident)),
            },
        }
    }

    pub(crate) async fn write_files<S, E>(
        &self,
        table: &Table,
        written: &WriteSchema,
        partitions: Vec<S>,
    ) -> Result<Vec<DataFile>>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
    {
        let metadata = table.metadata();
        let target = Arc::new(
            schema_to_arrow_schema(&written.schema)
                .context(|| format!("cannot map the schema of {} to Arrow", self.ident))?,
        );
        let sources = Arc::new(written.sources.clone());
        let target_file_size = target_file_size(metadata);
        let properties = data_file_properties();
        // Every write gets its own file-name prefix: iceberg-rust's name
        // generator restarts its counter per generator, so a shared prefix
        // would let two writes overwrite each other's files.
        let prefix = format!(
            "{}-{}",
            self.job_id
                .as_deref()
                .map(sanitize)
                .unwrap_or_else(|| "write".into()),
            Uuid::now_v7()
        );
        let rolling = RollingFileWriterBuilder::new(
            ParquetWriterBuilder::new(properties, written.schema.clone()),
            target_file_size,
            table.file_io().clone(),
            DefaultLocationGenerator::new(metadata)
                .context(|| format!("cannot place data files of {}", self.ident))?,
            DefaultFileNameGenerator::new(prefix, None, DataFileFormat::Parquet),
        );

        let spec = metadata.default_partition_spec();
        let splitter = if spec.is_unpartitioned() {
            None
        } else {
            Some(Arc::new(
                RecordBatchPartitionSplitter::try_new_with_computed_values(
                    written.schema.clone(),
                    spec.clone(),
                )
                .context(|| format!("cannot partition the data of {}", self.ident))?,
            ))
        };

        let mut tasks = JoinSet::new();
        for (index, mut stream) in partitions.into_iter().enumerate() {
            let rolling = rolling.clone();
            let target = target.clone();
            let sources = sources.clone();
            let ident = self.ident.clone();
            let splitter = splitter.clone();
            tasks.spawn(async move {
                let mut writer =
                    PartitionWriters::new(DataFileWriterBuilder::new(rolling), splitter);
                while let Some(batch) = stream.next().await {
                    let batch = batch.map_err(|e| CatalogError::Source {
                        partition: index,
                        source: e.into(),
                    })?;
                    if batch.num_rows() == 0 {
                        continue;
                    }
                    let batch = conform(&batch, &sources, &target).context(|| {
                        format!("cannot convert the job's output to the columns of {ident}")
                    })?;
                    writer
                        .write(batch)
                        .await
                        .context(|| format!("cannot write a data file of {ident}"))?;
                }
                writer
                    .close()
                    .await
                    .context(|| format!("cannot finish a data file of {ident}"))
            });
        }
        let mut files = Vec::new();
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(written)) => files.extend(written),
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                    tasks.abort_all();
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => {
                    failure
                        .get_or_insert(CatalogError::Config(format!("a writer task failed: {e}")));
                    tasks.abort_all();
                }
            }
        }
        if let Some(e) = failure {
            delete_quietly(table, files.iter().map(|f| f.file_path().to_string())).await;
            return Err(e);
        }
        Ok(files)
    }

    /// Commits the written files as one snapshot, re-planning on the new
    /// head after a conflict. An attempt whose outcome is unknown (the
    /// catalog failed to answer) is checked on the next reload: if its
    /// snapshot landed, the write is done, and nothing it references is
    /// ever deleted.
    pub(crate) async fn commit(
        &self,
        written: &WriteSchema,
        files: &[DataFile],
        planner: &mut impl AttemptPlanner,
    ) -> Result<CommitOutcome> {
        let mut properties = self.snapshot_properties.clone();
        properties.insert("engine-name".into(), "medallion".into());
        properties.insert("engine-version".into(), env!("CARGO_PKG_VERSION").into());
        if let Some(job_id) = &self.job_id {
            properties.insert(JOB_ID_PROPERTY.into(), job_id.clone());
        }
        let data_paths = || files.iter().map(|f| f.file_path().to_string());

        let mut attempts: Vec<PastAttempt> = Vec::new();
        let mut last_error = None;
        loop {
            let table = self.lakehouse.load_table(&self.ident).await?;
            let landed = attempts
                .iter()
                .position(|a| table.metadata().snapshot_by_id(a.snapshot_id).is_some());
            if let Some(index) = landed {
                let attempt = attempts.swap_remove(index);
                delete_quietly(&table, attempts.into_iter().flat_map(|a| a.own_files)).await;
                return Ok(CommitOutcome::Committed {
                    snapshot_id: attempt.snapshot_id,
                    stats: attempt.stats,
                    attempts: index as u32 + 1,
                });
            }
            let abandon = |table: Table, attempts: Vec<PastAttempt>| async move {
                delete_quietly(&table, attempts.into_iter().flat_map(|a| a.own_files)).await;
                delete_quietly(&table, data_paths()).await;
            };
            if let Some(snapshot_id) = self.committed_by_job(&table) {
                // A concurrent run of the same job won the race.
                abandon(table, attempts).await;
                return Ok(CommitOutcome::AlreadyCommitted { snapshot_id });
            }
            if let Some(error) = last_error.take() {
                abandon(table, attempts).await;
                return Err(error);
            }
            let number = attempts.len() as u32 + 1;
            let schema = match written.on_head(&self.ident, table.metadata()) {
                Ok(schema) => schema,
                Err(e) => {
                    abandon(table, attempts).await;
                    return Err(e);
                }
            };
            let attempt = match planner.plan(&table).await {
                Ok(attempt) => attempt,
                Err(e) => {
                    abandon(table, attempts).await;
                    return Err(e);
                }
            };
            let change = match (&attempt.replaced, self.mode) {
                _ if self.manifests_only => FileChange::RewriteManifests,
                (Some(paths), _) => FileChange::Replace(paths),
                (None, WriteMode::Append) => FileChange::Append,
                (None, WriteMode::Overwrite | WriteMode::OverwritePartitions) => {
                    FileChange::ReplaceAll
                }
            };
            let added: Vec<DataFile> = files.iter().chain(&attempt.rewritten).cloned().collect();
            let rewritten_paths = attempt.rewritten.iter().map(|f| f.file_path().to_string());
            let planned = match plan_snapshot(
                &table,
                schema,
                change,
                &added,
                &properties,
                self.data_unchanged,
            )
            .await
            {
                Ok(planned) => planned,
                Err(e) => {
                    delete_quietly(&table, rewritten_paths).await;
                    abandon(table, attempts).await;
                    return Err(e)
                        .context(|| format!("cannot prepare the commit to {}", self.ident));
                }
            };
            attempts.push(PastAttempt {
                snapshot_id: planned.snapshot_id,
                own_files: planned
                    .metadata_files
                    .into_iter()
                    .chain(rewritten_paths)
                    .collect(),
                stats: WriteStats::of(&added),
            });
            if let Err(e) = self.check_still_stored(&table, &added).await {
                abandon(table, attempts).await;
                return Err(e);
            }
            let started = Instant::now();
            let result = self
                .lakehouse
                .transport()
                .commit(
                    &table,
                    planned.requirements,
                    planned.updates,
                    &Uuid::now_v7().to_string(),
                )
                .await;
            match result {
                Ok(()) => {
                    tracing::info!(
                        table = %self.ident,
                        snapshot_id = planned.snapshot_id,
                        attempt = number,
                        commit_ms = started.elapsed().as_millis() as u64,
                        "committed"
                    );
                    if !written.changes.is_empty() {
                        tracing::info!(table = %self.ident, changes = written.changes.join("; "), "evolved the schema");
                    }
                    let attempt = attempts.pop().expect("the attempt just made");
                    delete_quietly(&table, attempts.into_iter().flat_map(|a| a.own_files)).await;
                    return Ok(CommitOutcome::Committed {
                        snapshot_id: attempt.snapshot_id,
                        stats: attempt.stats,
                        attempts: number,
                    });
                }
                Err(e)
                    if e.kind() == ErrorKind::CatalogCommitConflicts
                        && number < self.policy.max_attempts =>
                {
                    tracing::debug!(table = %self.ident, attempt = number, "commit conflict, retrying on the new head");
                    tokio::time::sleep(self.policy.backoff(number)).await;
                }
                Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts => {
                    last_error = Some(CatalogError::CommitConflict {
                        table: self.ident.clone(),
                        attempts: number,
                    });
                }
                Err(e) => {
                    last_error = Some(CatalogError::Iceberg {
                        context: format!("the commit to {} failed", self.ident),
                        source: Box::new(e),
                    });
                }
            }
        }
    }
}

impl TableWrite {
    /// Fails when a data file the attempt would commit is gone from storage
    /// (an orphan-file sweep with too short an age took it while the write
    /// ran): a snapshot must never name a file storage lacks.
    async fn check_still_stored(&self, table: &Table, files: &[DataFile]) -> Result<()> {
        let io = table.file_io();
        let gone: Vec<String> = futures::stream::iter(files)
            .map(|file| async move {
                match io.exists(file.file_path()).await {
                    Ok(true) => Ok(None),
                    Ok(false) => Ok(Some(file.file_path().to_string())),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(EXISTENCE_CHECKS)
            .filter_map(|found| async move { found.transpose() })
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<iceberg::Result<_>>()
            .context(|| format!("cannot check the written files of {}", self.ident))?;
        match gone.first() {
            None => Ok(()),
            Some(file) => Err(CatalogError::WrittenFilesGone {
                table: self.ident.clone(),
                count: gone.len(),
                file: file.clone(),
            }),
        }
    }
}

/// Existence checks of written files sent at once before a commit.
const EXISTENCE_CHECKS: usize = 16;

/// What one commit attempt does on the head it builds on, besides adding
/// the files the write streamed.
pub(crate) struct Attempt {
    /// The live files it removes; `None`: as the write mode says.
    pub replaced: Option<HashSet<String>>,
    /// Files written for this head only (rewritten copies of replaced files).
    pub rewritten: Vec<DataFile>,
}

/// Prepares each commit attempt against the head it will build on. A plain
/// write changes the same files every time; a merge re-reads the head to
/// find which files its keys touch now.
pub(crate) trait AttemptPlanner {
    async fn plan(&mut self, head: &Table) -> Result<Attempt>;
}

/// The plain write: the same change on whatever head.
pub(crate) struct SameChange(pub Option<HashSet<String>>);

impl AttemptPlanner for SameChange {
    async fn plan(&mut self, _head: &Table) -> Result<Attempt> {
        Ok(Attempt {
            replaced: self.0.clone(),
            rewritten: Vec::new(),
        })
    }
}

/// Overwrite by filter: the same files are replaced on every head, but only
/// while no data file was added after the snapshot they were chosen on.
struct ReplaceWithoutNewFiles {
    ident: TableIdent,
    replaced: HashSet<String>,
    as_of: Option<i64>,
}

impl AttemptPlanner for ReplaceWithoutNewFiles {
    async fn plan(&mut self, head: &Table) -> Result<Attempt> {
        if head.metadata().current_snapshot_id() != self.as_of {
            let seen: HashSet<String> = match self.as_of {
                Some(id) => snapshot_files(head, id)
                    .await?
                    .into_iter()
                    .map(|t| t.data_file_path)
                    .collect(),
                None => HashSet::new(),
            };
            let added = live_files(head)
                .await?
                .into_iter()
                .filter(|t| !seen.contains(&t.data_file_path))
                .count();
            if added > 0 {
                return Err(CatalogError::ReplaceConflict {
                    table: self.ident.clone(),
                    detail: format!(
                        "{added} data file(s) were committed after the rows to replace were \
                         chosen, and rows in them that match the filter would survive"
                    ),
                });
            }
        }
        Ok(Attempt {
            replaced: Some(self.replaced.clone()),
            rewritten: Vec::new(),
        })
    }
}

/// Dynamic partition overwrite: on each head, the live files of the
/// partitions the new rows fall in (every file, for an unpartitioned table).
struct ReplacePartitions(HashSet<Struct>);

impl AttemptPlanner for ReplacePartitions {
    async fn plan(&mut self, head: &Table) -> Result<Attempt> {
        let replaced = live_files(head)
            .await?
            .into_iter()
            .filter(|t| {
                self.0
                    .contains(t.partition.as_ref().unwrap_or(&Struct::empty()))
            })
            .map(|t| t.data_file_path)
            .collect();
        Ok(Attempt {
            replaced: Some(replaced),
            rewritten: Vec::new(),
        })
    }
}

/// A commit attempt that may or may not have landed.
struct PastAttempt {
    snapshot_id: i64,
    /// Manifests, manifest list and rewritten data files: referenced only
    /// if this attempt landed.
    own_files: Vec<String>,
    stats: WriteStats,
}

impl WriteStats {
    fn of(files: &[DataFile]) -> Self {
        Self {
            rows: files.iter().map(|f| f.record_count()).sum(),
            bytes: files.iter().map(|f| f.file_size_in_bytes()).sum(),
            files: files.len(),
        }
    }
}

/// The table's `write.target-file-size-bytes`, or Iceberg's default.
pub(crate) fn target_file_size(metadata: &TableMetadata) -> usize {
    metadata
        .properties()
        .get(TableProperties::PROPERTY_WRITE_TARGET_FILE_SIZE_BYTES)
        .and_then(|v| v.parse().ok())
        .unwrap_or(TableProperties::PROPERTY_WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT)
}

/// Reorders and casts a batch into the written Arrow schema (which carries
/// the Iceberg field ids the writers need); columns without a source are
/// null.
fn conform(
    batch: &RecordBatch,
    sources: &[Option<usize>],
    target: &SchemaRef,
) -> arrow::error::Result<RecordBatch> {
    let columns = sources
        .iter()
        .zip(target.fields())
        .map(|(source, field)| match source {
            None => Ok(new_null_array(field.data_type(), batch.num_rows())),
            Some(index) => {
                let column = batch.column(*index);
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    cast(column, field.data_type())
                }
            }
        })
        .collect::<arrow::error::Result<Vec<ArrayRef>>>()?;
    RecordBatch::try_new(target.clone(), columns)
}

fn sanitize(job_id: &str) -> String {
    job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Removes files that no snapshot references. Failure only leaves orphans,
/// which orphan-file removal collects, so it is logged and not raised.
pub(crate) async fn delete_quietly(table: &Table, paths: impl IntoIterator<Item = String>) {
    for path in paths {
        if let Err(e) = table.file_io().delete(&path).await {
            tracing::warn!(path, error = %e, "could not delete an unreferenced file");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use futures::stream;

    use super::*;
    use crate::schema::table_ident;
    use crate::snapshot::{lineage, snapshot_infos};

    fn batch(keys: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Int64, false),
            Field::new("name", DataType::Utf8View, true),
        ]));
        let names: StringArray = keys.clone().map(|k| Some(format!("n{k}"))).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(keys)),
                Arc::new(arrow::compute::cast(&names, &DataType::Utf8View).unwrap()),
            ],
        )
        .unwrap()
    }

    type Partition =
        stream::Iter<std::vec::IntoIter<std::result::Result<RecordBatch, std::io::Error>>>;

    fn partitions(batches: Vec<Vec<RecordBatch>>) -> Vec<Partition> {
        batches
            .into_iter()
            .map(|p| stream::iter(p.into_iter().map(Ok).collect::<Vec<_>>()))
            .collect()
    }

    async fn data_files(lakehouse: &Lakehouse, name: &str) -> Vec<String> {
        let table = lakehouse
            .load_table(&table_ident(name).unwrap())
            .await
            .unwrap();
        let snapshot = table.metadata().current_snapshot().unwrap();
        let list = table.manifest_list_reader(snapshot).load().await.unwrap();
        let mut paths = Vec::new();
        for manifest in list.entries() {
            let manifest = manifest.load_manifest(table.file_io()).await.unwrap();
            paths.extend(
                manifest
                    .entries()
                    .iter()
                    .filter(|e| e.is_alive())
                    .map(|e| e.file_path().to_string()),
            );
        }
        paths
    }

    #[tokio::test]
    async fn appends_keep_every_file_and_never_reuse_a_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        let mut metadata_files = Vec::new();
        for round in 0..2 {
            let schema = batch(0..1).schema();
            let outcome = lakehouse
                .write(ident.clone(), WriteMode::Append)
                .execute(
                    schema,
                    partitions(vec![
                        vec![batch(round * 100..round * 100 + 10)],
                        vec![batch(round * 100 + 10..round * 100 + 30)],
                    ]),
                )
                .await
                .unwrap();
            let CommitOutcome::Committed { stats, .. } = outcome else {
                panic!("expected a commit, got {outcome:?}");
            };
            assert_eq!((stats.rows, stats.files), (30, 2));
            let table = lakehouse.load_table(&ident).await.unwrap();
            metadata_files.push(table.metadata_location().unwrap().to_string());
        }
        // Every commit writes a new metadata file; the old ones stay for
        // readers that still hold them (the swap is a real compare-and-swap).
        assert_ne!(metadata_files[0], metadata_files[1]);
        let table = lakehouse.load_table(&ident).await.unwrap();
        assert!(table.file_io().exists(&metadata_files[0]).await.unwrap());
        let files = data_files(&lakehouse, "bronze.things").await;
        assert_eq!(files.len(), 4);
        assert_eq!(files.iter().collect::<HashSet<_>>().len(), 4, "{files:?}");
        let table = lakehouse.load_table(&ident).await.unwrap();
        let history = snapshot_infos(&table);
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].total_records, Some(60));
        assert!(history.iter().all(|s| s.operation == "append"));
    }

    #[tokio::test]
    async fn overwrite_replaces_every_file_and_records_the_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("gold.things").unwrap();
        let schema = batch(0..1).schema();
        for keys in [0..50, 50..60] {
            lakehouse
                .write(ident.clone(), WriteMode::Overwrite)
                .execute(schema.clone(), partitions(vec![vec![batch(keys)]]))
                .await
                .unwrap();
        }
        let files = data_files(&lakehouse, "gold.things").await;
        assert_eq!(files.len(), 1);
        let table = lakehouse.load_table(&ident).await.unwrap();
        let current = table.metadata().current_snapshot().unwrap();
        let summary = &current.summary().additional_properties;
        assert_eq!(current.summary().operation.as_str(), "overwrite");
        assert_eq!(summary["total-records"], "10");
        assert_eq!(summary["deleted-records"], "50");
        assert_eq!(summary["added-records"], "10");
    }

    #[tokio::test]
    async fn an_overwrite_by_filter_refuses_files_added_after_it_chose_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("gold.things").unwrap();
        let schema = batch(0..1).schema();
        let append = |keys| {
            lakehouse
                .write(ident.clone(), WriteMode::Append)
                .execute(schema.clone(), partitions(vec![vec![batch(keys)]]))
        };
        append(0..10).await.unwrap();
        let chosen_on = lakehouse.load_table(&ident).await.unwrap();
        let as_of = chosen_on.metadata().current_snapshot_id();
        let replaced: HashSet<String> = data_files(&lakehouse, "gold.things")
            .await
            .into_iter()
            .collect();
        let overwrite = || {
            lakehouse
                .write(ident.clone(), WriteMode::Append)
                .replacing_files(replaced.clone())
                .replaced_as_of(as_of)
                .execute(schema.clone(), partitions(vec![vec![batch(100..105)]]))
        };

        // Rows committed after the rows to replace were chosen: refused.
        append(10..20).await.unwrap();
        let error = overwrite().await.unwrap_err().to_string();
        assert!(
            error.contains("1 data file(s) were committed after"),
            "{error}"
        );
        assert!(error.contains("re-run the job"), "{error}");
        let table = lakehouse.load_table(&ident).await.unwrap();
        assert_eq!(snapshot_infos(&table).len(), 2, "nothing was committed");

        // Chosen on the head itself, the same overwrite lands.
        let as_of = table.metadata().current_snapshot_id();
        let replaced: HashSet<String> = data_files(&lakehouse, "gold.things")
            .await
            .into_iter()
            .collect();
        let outcome = lakehouse
            .write(ident.clone(), WriteMode::Append)
            .replacing_files(replaced)
            .replaced_as_of(as_of)
            .execute(schema.clone(), partitions(vec![vec![batch(100..105)]]))
            .await
            .unwrap();
        let CommitOutcome::Committed { .. } = outcome else {
            panic!("expected a commit, got {outcome:?}");
        };
        let table = lakehouse.load_table(&ident).await.unwrap();
        let current = table.metadata().current_snapshot().unwrap();
        assert_eq!(
            current.summary().additional_properties["total-records"],
            "5"
        );
    }

    #[tokio::test]
    async fn a_job_id_commits_once() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        let schema = batch(0..1).schema();
        let first = lakehouse
            .write(ident.clone(), WriteMode::Append)
            .job_id("load-1")
            .execute(schema.clone(), partitions(vec![vec![batch(0..5)]]))
            .await
            .unwrap();
        let CommitOutcome::Committed { snapshot_id, .. } = first else {
            panic!("{first:?}");
        };
        let again = lakehouse
            .write(ident.clone(), WriteMode::Append)
            .job_id("load-1")
            .execute(schema, partitions(vec![vec![batch(0..5)]]))
            .await
            .unwrap();
        assert!(
            matches!(again, CommitOutcome::AlreadyCommitted { snapshot_id: s } if s == snapshot_id),
            "{again:?}"
        );
        assert_eq!(data_files(&lakehouse, "bronze.things").await.len(), 1);
    }

    /// Rows of (key, name[, coupon]) with `key` of the given integer type.
    fn keyed(key_type: DataType, rows: &[(i64, &str)], coupon: Option<&str>) -> RecordBatch {
        let mut fields = vec![
            Field::new("key", key_type.clone(), true),
            Field::new("name", DataType::Utf8, true),
        ];
        let keys = Int64Array::from_iter_values(rows.iter().map(|r| r.0));
        let mut columns: Vec<ArrayRef> = vec![
            cast(&keys, &key_type).unwrap(),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ];
        if let Some(coupon) = coupon {
            fields.push(Field::new("coupon", DataType::Utf8, true));
            columns.push(Arc::new(StringArray::from_iter_values(
                rows.iter().map(|_| coupon),
            )));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    /// The table's rows as iceberg-rust's reader returns them: key, name,
    /// coupon (null when the column is absent), sorted by key.
    async fn iceberg_rows(lakehouse: &Lakehouse, ident: &TableIdent) -> Vec<String> {
        use arrow::util::display::array_value_to_string;
        let table = lakehouse.load_table(ident).await.unwrap();
        let batches = crate::scan::read_with_iceberg(&table).await;
        let mut rows = Vec::new();
        for batch in batches {
            assert_eq!(batch.schema().field(0).data_type(), &DataType::Int64);
            for i in 0..batch.num_rows() {
                let cells: Vec<String> = batch
                    .columns()
                    .iter()
                    .map(|c| array_value_to_string(c, i).unwrap())
                    .collect();
                rows.push(cells.join(","));
            }
        }
        rows.sort();
        rows
    }

    #[tokio::test]
    async fn an_evolving_write_changes_the_schema_in_its_own_commit_and_old_files_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        let write = |batch: RecordBatch| {
            lakehouse
                .write(ident.clone(), WriteMode::Append)
                .on_schema_change(SchemaEvolution::Evolve)
                .execute(batch.schema(), partitions(vec![vec![batch]]))
        };
        write(keyed(DataType::Int32, &[(1, "a"), (2, "b")], None))
            .await
            .unwrap();
        write(keyed(
            DataType::Int64,
            &[(3_000_000_000, "c")],
            Some("SPRING"),
        ))
        .await
        .unwrap();

        let table = lakehouse.load_table(&ident).await.unwrap();
        let metadata = table.metadata();
        let schema = metadata.current_schema();
        assert_eq!(schema.field_id_by_name("key"), Some(1));
        assert_eq!(
            schema.field_by_name("key").unwrap().field_type.to_string(),
            "long"
        );
        assert_eq!(schema.field_id_by_name("coupon"), Some(3));
        let snapshots: Vec<_> = lineage(&table).collect();
        assert_eq!(
            snapshots.len(),
            2,
            "one commit per write, the schema change in it"
        );
        assert_eq!(snapshots[0].schema_id(), Some(schema.schema_id()));
        assert_ne!(snapshots[1].schema_id(), Some(schema.schema_id()));

        // iceberg-rust reads the int file as long and the missing column as null.
        assert_eq!(
            iceberg_rows(&lakehouse, &ident).await,
            vec!["1,a,", "2,b,", "3000000000,c,SPRING"]
        );

        // A merge on the widened key rewrites the old int file by field id.
        lakehouse
            .merge(ident.clone(), vec!["key".into()])
            .on_schema_change(SchemaEvolution::Evolve)
            .execute(
                keyed(DataType::Int64, &[(2, "B")], Some("FALL")).schema(),
                partitions(vec![vec![keyed(
                    DataType::Int64,
                    &[(2, "B")],
                    Some("FALL"),
                )]]),
            )
            .await
            .unwrap();
        assert_eq!(
            iceberg_rows(&lakehouse, &ident).await,
            vec!["1,a,", "2,B,FALL", "3000000000,c,SPRING"]
        );
    }

    #[tokio::test]
    async fn data_that_does_not_fit_the_table_is_refused_with_the_columns_named() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        lakehouse
            .write(ident.clone(), WriteMode::Append)
            .execute(batch(0..1).schema(), partitions(vec![vec![batch(0..5)]]))
            .await
            .unwrap();
        let other = Arc::new(Schema::new(vec![Field::new("key", DataType::Utf8, true)]));
        let err = lakehouse
            .write(ident, WriteMode::Append)
            .execute(other, partitions(vec![]))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("column `key` is Int64 in the table but Utf8 in the data"),
            "{err}"
        );
        assert!(err.contains("column `name` is missing"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_first_write_leaves_no_table_and_no_file_behind() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        let failing: Vec<std::result::Result<RecordBatch, std::io::Error>> = vec![
            Ok(batch(0..10)),
            Err(std::io::Error::other("the raw file is corrupt")),
        ];
        let error = lakehouse
            .write(ident.clone(), WriteMode::Append)
            .execute(batch(0..1).schema(), vec![stream::iter(failing)])
            .await
            .unwrap_err();
        assert!(matches!(error, CatalogError::Source { .. }), "{error}");
        assert!(lakehouse.try_load_table(&ident).await.unwrap().is_none());
        let left = files_under(&dir.path().join("warehouse"));
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn a_write_whose_files_vanished_before_its_commit_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("bronze.things").unwrap();
        let schema = batch(0..1).schema();
        lakehouse
            .write(ident.clone(), WriteMode::Append)
            .execute(schema.clone(), partitions(vec![vec![batch(0..10)]]))
            .await
            .unwrap();
        let write = lakehouse.write(ident.clone(), WriteMode::Append);
        let table = lakehouse.load_table(&ident).await.unwrap();
        let written = write.fit(&table, &schema).unwrap();
        let files = write
            .write_files(
                &table,
                &written,
                partitions(vec![vec![batch(10..20)], vec![batch(20..30)]]),
            )
            .await
            .unwrap();
        // As a too-young orphan sweep would: one streamed file is deleted.
        table.file_io().delete(files[0].file_path()).await.unwrap();
        let error = write
            .commit(&written, &files, &mut SameChange(None))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("1 data file(s) that this write streamed to bronze.things are gone"),
            "{error}"
        );
        let table = lakehouse.load_table(&ident).await.unwrap();
        assert_eq!(snapshot_infos(&table).len(), 1, "nothing was committed");
        assert!(!table.file_io().exists(files[1].file_path()).await.unwrap());
    }

    fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().path())
            .flat_map(|p| if p.is_dir() { files_under(&p) } else { vec![p] })
            .collect()
    }
}
