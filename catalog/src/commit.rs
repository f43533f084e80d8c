//! The commit protocol: written data files become one snapshot, or none.
//!
//! Every attempt is planned afresh on the head it builds on (an
//! [`AttemptPlanner`] names the snapshot's [`SnapshotKind`] and may rewrite
//! files for that head), the files it would commit are checked to still be
//! in storage, and the planned snapshot goes to the catalog through the
//! `CommitTransport`. A conflict re-plans on the new head, as often as the
//! table's `commit.retry.*` properties allow. An attempt whose outcome is
//! unknown (the catalog failed to answer) is looked up on the next reload
//! before anything is cleaned: if its snapshot landed, the write is done,
//! and nothing it references is ever deleted.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use iceberg::spec::{DataContentType, DataFile, Struct, TableProperties};
use iceberg::table::Table;
use iceberg::{ErrorKind, TableIdent};
use uuid::Uuid;

use crate::commit_observer::AttemptEnd;
use crate::connection::Lakehouse;
use crate::data_files::delete_quietly;
use crate::error::{CatalogError, Context, Result};
use crate::history::{
    ENGINE_NAME, ENGINE_VERSION, JOB_ID_PROPERTY, JOB_PROPERTY, OPERATION_PROPERTY, SHARD_PROPERTY,
    input_read_property, shards_of_job, snapshot_of_job, snapshot_of_shard,
};
use crate::scan::live_files;
use crate::schema::WriteSchema;
use crate::shard::Shard;
use crate::snapshot::{PlannedSnapshot, SnapshotKind, plan_snapshot};

/// What a commit records besides its files, like delta-rs's
/// `CommitProperties`: the job id that makes it idempotent (a job id
/// commits to a table at most once) and the snapshot-summary properties.
/// How often it retries is the table's to say (`commit.retry.*`).
#[derive(Debug, Clone, Default)]
pub struct CommitProperties {
    job_id: Option<String>,
    /// A per-shard commit: the job id commits once per shard.
    shard: Option<Shard>,
    snapshot_properties: HashMap<String, String>,
}

impl CommitProperties {
    /// Makes the commit idempotent: a job id commits to a table at most once.
    pub fn job_id(mut self, job_id: impl Into<String>) -> Self {
        self.job_id = Some(job_id.into());
        self
    }

    /// Makes the commit one shard's own (`commit: per-shard`): the job id
    /// commits once per shard, each recorded as `medallion.shard`.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = Some(shard);
        self
    }

    pub fn snapshot_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.snapshot_properties.insert(key.into(), value.into());
        self
    }

    /// Records the name of the job that commits.
    pub fn job_name(self, name: impl Into<String>) -> Self {
        self.snapshot_property(JOB_PROPERTY, name)
    }

    /// Records that the job read snapshot `snapshot_id` of table `input`
    /// (read back with [`crate::input_read`]).
    pub fn input_read(self, input: &str, snapshot_id: i64) -> Self {
        self.snapshot_property(input_read_property(input), snapshot_id.to_string())
    }

    /// Records what a maintenance or delete commit did (`compact`, ...).
    pub(crate) fn operation(self, operation: &str) -> Self {
        self.snapshot_property(OPERATION_PROPERTY, operation)
    }

    pub(crate) fn job(&self) -> Option<&str> {
        self.job_id.as_deref()
    }

    pub(crate) fn shard_of_commit(&self) -> Option<Shard> {
        self.shard
    }

    /// The snapshot this job id (this shard of it, for a per-shard commit)
    /// already committed to the table, if any.
    pub(crate) fn committed_in(&self, table: &Table) -> Option<i64> {
        let job_id = self.job()?;
        match self.shard {
            Some(shard) => snapshot_of_shard(table, job_id, shard),
            None => snapshot_of_job(table, job_id),
        }
    }

    /// A whole run of a job id whose shards committed on their own would
    /// load their files again: refused.
    pub(crate) fn check_not_sharded_before(&self, table: &Table) -> Result<()> {
        let Some(job_id) = self.job().filter(|_| self.shard.is_none()) else {
            return Ok(());
        };
        let shards = shards_of_job(table, job_id);
        if shards.is_empty() {
            return Ok(());
        }
        Err(CatalogError::ShardedBefore {
            table: table.identifier().clone(),
            job_id: job_id.to_string(),
            shards: shards.join(", "),
        })
    }

    /// The snapshot summary's own properties.
    fn summary(&self) -> HashMap<String, String> {
        let mut properties = self.snapshot_properties.clone();
        properties.insert(ENGINE_NAME.into(), "medallion".into());
        properties.insert(ENGINE_VERSION.into(), env!("CARGO_PKG_VERSION").into());
        if let Some(job_id) = &self.job_id {
            properties.insert(JOB_ID_PROPERTY.into(), job_id.clone());
        }
        if let Some(shard) = self.shard {
            properties.insert(SHARD_PROPERTY.into(), shard.to_string());
        }
        properties
    }
}

/// How a commit that lost an optimistic-concurrency race retries, read
/// from the table's `commit.retry.*` properties as Iceberg Java and
/// iceberg-rust read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts after the first (`commit.retry.num-retries`).
    pub retries: u32,
    pub min_wait: Duration,
    pub max_wait: Duration,
    /// No retry starts after this long (`commit.retry.total-timeout-ms`);
    /// `None`: no limit.
    pub total_timeout: Option<Duration>,
}

/// Twenty attempts with backoff up to 5 s give up after about a minute of
/// losing races. Ten were too few for four writers whose merges re-plan on
/// every head: on a loaded 2-core machine one merge lost ten times in a row.
/// Iceberg's own defaults (4 retries, up to 1 min) suit writers that do not
/// re-plan; a table property changes any of these.
impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 19,
            min_wait: Duration::from_millis(50),
            max_wait: Duration::from_secs(5),
            total_timeout: None,
        }
    }
}

impl RetryPolicy {
    /// The policy the table's properties set, today's default otherwise.
    pub(crate) fn of(table: &Table) -> Self {
        let properties = table.metadata().properties();
        let number = |key: &str| -> Option<u64> {
            let value = properties.get(key)?;
            match value.parse() {
                Ok(number) => Some(number),
                Err(_) => {
                    tracing::warn!(table = %table.identifier(), key, value, "ignoring a table property that is not a whole number");
                    None
                }
            }
        };
        let default = Self::default();
        let millis = |key, default| number(key).map(Duration::from_millis).unwrap_or(default);
        Self {
            retries: number(TableProperties::PROPERTY_COMMIT_NUM_RETRIES)
                .map(|n| n.min(u64::from(u32::MAX)) as u32)
                .unwrap_or(default.retries),
            min_wait: millis(
                TableProperties::PROPERTY_COMMIT_MIN_RETRY_WAIT_MS,
                default.min_wait,
            ),
            max_wait: millis(
                TableProperties::PROPERTY_COMMIT_MAX_RETRY_WAIT_MS,
                default.max_wait,
            ),
            total_timeout: number(TableProperties::PROPERTY_COMMIT_TOTAL_RETRY_TIME_MS)
                .map(Duration::from_millis)
                .or(default.total_timeout),
        }
    }

    /// Whether attempt `number` (from 1) may be followed by another.
    pub(crate) fn allows_retry_after(&self, number: u32, elapsed: Duration) -> bool {
        number <= self.retries && self.total_timeout.is_none_or(|limit| elapsed < limit)
    }

    /// Exponential backoff with full jitter, so racing writers spread out.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .min_wait
            .saturating_mul(1 << attempt.min(16))
            .min(self.max_wait);
        let jitter = (Uuid::new_v4().as_u128() % 1000) as u32;
        ceiling
            .mul_f64(f64::from(jitter) / 1000.0)
            .max(self.min_wait)
    }
}

/// What a write put into the table.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WriteStats {
    /// Rows of the data files written.
    pub rows: u64,
    /// Bytes of every file written, data and delete files.
    pub bytes: u64,
    pub files: usize,
    /// Rows the position delete files written delete (merge-on-read).
    pub deleted_rows: u64,
}

impl WriteStats {
    pub(crate) fn of(files: &[DataFile]) -> Self {
        let is_data = |f: &&DataFile| f.content_type() == DataContentType::Data;
        Self {
            rows: files.iter().filter(is_data).map(|f| f.record_count()).sum(),
            bytes: files.iter().map(|f| f.file_size_in_bytes()).sum(),
            files: files.len(),
            deleted_rows: files
                .iter()
                .filter(|f| !is_data(f))
                .map(|f| f.record_count())
                .sum(),
        }
    }
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

impl CommitOutcome {
    /// The snapshot that holds the write, whoever committed it.
    pub fn snapshot_id(&self) -> i64 {
        match self {
            Self::Committed { snapshot_id, .. } | Self::AlreadyCommitted { snapshot_id } => {
                *snapshot_id
            }
        }
    }
}

/// What one commit attempt does on the head it builds on, besides adding
/// the files the write streamed.
pub(crate) struct Attempt {
    pub kind: SnapshotKind,
    /// Files written for this head only (rewritten copies of replaced files).
    pub rewritten: Vec<DataFile>,
}

impl Attempt {
    pub(crate) fn of(kind: SnapshotKind) -> Self {
        Self {
            kind,
            rewritten: Vec::new(),
        }
    }
}

/// Prepares each commit attempt against the head it will build on. A plain
/// write changes the same files every time; a merge re-reads the head to
/// find which files its keys touch now.
pub(crate) trait AttemptPlanner {
    async fn plan(&mut self, head: &Table) -> Result<Attempt>;
}

/// The same change on whatever head: an append, a whole overwrite, a
/// compaction or a delete of chosen files, a rewrite of the manifests.
pub(crate) struct SameChange(pub SnapshotKind);

impl AttemptPlanner for SameChange {
    async fn plan(&mut self, _head: &Table) -> Result<Attempt> {
        Ok(Attempt::of(self.0.clone()))
    }
}

/// Dynamic partition overwrite: on each head, the live files of the
/// partitions the new rows fall in (every file, for an unpartitioned table).
pub(crate) struct OverwritePartitions(pub HashSet<Struct>);

impl AttemptPlanner for OverwritePartitions {
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
        Ok(Attempt::of(SnapshotKind::Overwrite(replaced)))
    }
}

/// Commits `files` (streamed in `written`'s schema) to `ident` as one
/// snapshot, each attempt planned by `planner` on the head it builds on.
pub(crate) async fn commit(
    lakehouse: &Lakehouse,
    ident: &TableIdent,
    properties: &CommitProperties,
    written: &WriteSchema,
    files: &[DataFile],
    planner: &mut impl AttemptPlanner,
) -> Result<CommitOutcome> {
    Commit::new(lakehouse, ident, properties, written, files, true)
        .run(planner)
        .await
}

/// Commits files staged by the shards of a job as one append. Unlike
/// [`commit`], a lost race or a failure leaves `files` in storage: another
/// shard may be committing the same files, and a re-run commits them.
pub(crate) async fn commit_staged(
    lakehouse: &Lakehouse,
    ident: &TableIdent,
    properties: &CommitProperties,
    written: &WriteSchema,
    files: &[DataFile],
) -> Result<CommitOutcome> {
    Commit::new(lakehouse, ident, properties, written, files, false)
        .run(&mut SameChange(SnapshotKind::Append))
        .await
}

/// One commit in progress.
struct Commit<'a> {
    lakehouse: &'a Lakehouse,
    ident: &'a TableIdent,
    properties: &'a CommitProperties,
    /// The snapshot summary's own properties.
    summary: HashMap<String, String>,
    written: &'a WriteSchema,
    files: &'a [DataFile],
    /// Whether `files` are this commit's to delete when it does not land.
    owns_files: bool,
}

/// A commit attempt that may or may not have landed.
struct PastAttempt {
    snapshot_id: i64,
    /// Manifests, manifest list and rewritten data files: referenced only
    /// if this attempt landed.
    own_files: Vec<String>,
    stats: WriteStats,
}

impl<'a> Commit<'a> {
    fn new(
        lakehouse: &'a Lakehouse,
        ident: &'a TableIdent,
        properties: &'a CommitProperties,
        written: &'a WriteSchema,
        files: &'a [DataFile],
        owns_files: bool,
    ) -> Self {
        Self {
            lakehouse,
            ident,
            properties,
            summary: properties.summary(),
            written,
            files,
            owns_files,
        }
    }

    async fn run(&self, planner: &mut impl AttemptPlanner) -> Result<CommitOutcome> {
        let started = Instant::now();
        let mut retry = None;
        let mut attempts: Vec<PastAttempt> = Vec::new();
        let mut last_error = None;
        loop {
            let table = self.lakehouse.load_table(self.ident).await?;
            let retry = *retry.get_or_insert_with(|| RetryPolicy::of(&table));
            if let Some(outcome) = landed(&table, &mut attempts).await {
                return Ok(outcome);
            }
            if let Some(snapshot_id) = self.properties.committed_in(&table) {
                // A concurrent run of the same job won the race.
                self.abandon(&table, attempts).await;
                return Ok(CommitOutcome::AlreadyCommitted { snapshot_id });
            }
            if let Some(error) = last_error.take() {
                self.abandon(&table, attempts).await;
                return Err(error);
            }
            let number = attempts.len() as u32 + 1;
            let planned = match self.plan(&table, planner, &mut attempts).await {
                Ok(planned) => planned,
                Err(e)
                    if may_pass_on_a_new_head(&e)
                        && retry.allows_retry_after(number, started.elapsed())
                        && self.head_moved(&table).await =>
                {
                    // What it read belonged to a head that is gone (expired
                    // meanwhile, say): the new head decides.
                    tracing::debug!(table = %self.ident, attempt = number, error = %e, "planning failed on a head that moved, re-planning");
                    tokio::time::sleep(retry.backoff(number)).await;
                    continue;
                }
                Err(e) => {
                    self.abandon(&table, attempts).await;
                    return Err(e);
                }
            };
            let snapshot_id = planned.snapshot_id;
            let sent = Instant::now();
            let result = self.send(&table, planned).await;
            // Decided once, so the observer hears what the loop then does.
            let may_retry = retry.allows_retry_after(number, started.elapsed());
            self.observe(number, &result, may_retry, started);
            match result {
                Ok(()) => {
                    self.log_commit(snapshot_id, number, sent);
                    let attempt = attempts.pop().expect("the attempt just made");
                    delete_quietly(&table, attempts.into_iter().flat_map(|a| a.own_files)).await;
                    return Ok(CommitOutcome::Committed {
                        snapshot_id: attempt.snapshot_id,
                        stats: attempt.stats,
                        attempts: number,
                    });
                }
                Err(e) if e.kind() == ErrorKind::CatalogCommitConflicts && may_retry => {
                    tracing::debug!(table = %self.ident, attempt = number, "commit conflict, retrying on the new head");
                    tokio::time::sleep(retry.backoff(number)).await;
                }
                Err(e) => last_error = Some(self.failure(e, number)),
            }
        }
    }

    /// Plans one attempt on `table` and records it among `attempts` (its
    /// files are cleaned up unless it lands), then checks that every data
    /// file it would commit is still stored.
    async fn plan(
        &self,
        table: &Table,
        planner: &mut impl AttemptPlanner,
        attempts: &mut Vec<PastAttempt>,
    ) -> Result<PlannedSnapshot> {
        let schema = self.written.on_head(self.ident, table.metadata())?;
        let attempt = planner.plan(table).await?;
        let added: Vec<DataFile> = self
            .files
            .iter()
            .chain(&attempt.rewritten)
            .cloned()
            .collect();
        let rewritten_paths = attempt.rewritten.iter().map(|f| f.file_path().to_string());
        let planned = match plan_snapshot(table, schema, &attempt.kind, &added, &self.summary).await
        {
            Ok(planned) => planned,
            Err(e) => {
                delete_quietly(table, rewritten_paths).await;
                return Err(e).context(|| format!("cannot prepare the commit to {}", self.ident));
            }
        };
        attempts.push(PastAttempt {
            snapshot_id: planned.snapshot_id,
            own_files: planned
                .metadata_files
                .iter()
                .cloned()
                .chain(rewritten_paths)
                .collect(),
            stats: WriteStats::of(&added),
        });
        check_still_stored(table, &added).await?;
        Ok(planned)
    }

    /// Tells the lakehouse's observer how attempt `number` ended.
    fn observe(
        &self,
        number: u32,
        result: &iceberg::Result<()>,
        may_retry: bool,
        started: Instant,
    ) {
        let Some(observer) = self.lakehouse.commit_observer() else {
            return;
        };
        let end = match result {
            Ok(()) => AttemptEnd::Committed,
            Err(e) if e.kind() != ErrorKind::CatalogCommitConflicts => AttemptEnd::Failed,
            Err(_) if may_retry => AttemptEnd::Conflict,
            Err(_) => AttemptEnd::ConflictGaveUp,
        };
        observer.attempt(self.ident, number, end, started.elapsed());
    }

    /// Whether the table's head is no longer the one `table` holds.
    async fn head_moved(&self, table: &Table) -> bool {
        match self.lakehouse.load_table(self.ident).await {
            Ok(now) => now.metadata_location() != table.metadata_location(),
            Err(_) => false,
        }
    }

    /// Sends the planned snapshot to the catalog.
    async fn send(&self, table: &Table, planned: PlannedSnapshot) -> iceberg::Result<()> {
        self.lakehouse
            .transport()
            .commit(
                table,
                planned.requirements,
                planned.updates,
                &Uuid::now_v7().to_string(),
            )
            .await
    }

    /// What a failed attempt `number` returns, once the next reload shows
    /// it did not land after all.
    fn failure(&self, error: iceberg::Error, number: u32) -> CatalogError {
        if error.kind() == ErrorKind::CatalogCommitConflicts {
            return CatalogError::CommitConflict {
                table: self.ident.clone(),
                attempts: number,
            };
        }
        CatalogError::Iceberg {
            context: format!("the commit to {} failed", self.ident),
            source: Box::new(error),
        }
    }

    /// Gives the write up: every file of every attempt, and the streamed
    /// files, are deleted (none of them is referenced by a snapshot).
    async fn abandon(&self, table: &Table, attempts: Vec<PastAttempt>) {
        delete_quietly(table, attempts.into_iter().flat_map(|a| a.own_files)).await;
        if self.owns_files {
            delete_quietly(table, self.files.iter().map(|f| f.file_path().to_string())).await;
        }
    }

    fn log_commit(&self, snapshot_id: i64, number: u32, sent: Instant) {
        tracing::info!(
            table = %self.ident,
            snapshot_id,
            attempt = number,
            commit_ms = sent.elapsed().as_millis() as u64,
            "committed"
        );
        if !self.written.changes.is_empty() {
            tracing::info!(table = %self.ident, changes = self.written.changes.join("; "), "evolved the schema");
        }
    }
}

/// The outcome, when an earlier attempt whose answer was lost is in the
/// table after all; the other attempts' files are deleted.
async fn landed(table: &Table, attempts: &mut Vec<PastAttempt>) -> Option<CommitOutcome> {
    let index = attempts
        .iter()
        .position(|a| table.metadata().snapshot_by_id(a.snapshot_id).is_some())?;
    let attempt = attempts.swap_remove(index);
    let others = std::mem::take(attempts);
    delete_quietly(table, others.into_iter().flat_map(|a| a.own_files)).await;
    Some(CommitOutcome::Committed {
        snapshot_id: attempt.snapshot_id,
        stats: attempt.stats,
        attempts: index as u32 + 1,
    })
}

/// Whether planning that failed so may succeed on a newer head: reading
/// the old head's manifests or files failed (an expiry or a rewrite took
/// them meanwhile). A conflict found on the head itself stays final.
fn may_pass_on_a_new_head(error: &CatalogError) -> bool {
    matches!(
        error,
        CatalogError::Iceberg { .. } | CatalogError::MissingDataFile(_)
    )
}

/// Existence checks of written files sent at once before a commit.
const EXISTENCE_CHECKS: usize = 16;

/// Fails when a data file the attempt would commit is gone from storage
/// (an orphan-file sweep with too short an age took it while the write
/// ran): a snapshot must never name a file storage lacks.
async fn check_still_stored(table: &Table, files: &[DataFile]) -> Result<()> {
    let io = table.file_io();
    let ident = table.identifier();
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
        .context(|| format!("cannot check the written files of {ident}"))?;
    match gone.first() {
        None => Ok(()),
        Some(file) => Err(CatalogError::WrittenFilesGone {
            table: ident.clone(),
            count: gone.len(),
            file: file.clone(),
        }),
    }
}

#[cfg(test)]
#[path = "commit_tests.rs"]
mod tests;
