//! `TableWrite`: one write of rows to one table (append, overwrite, or an
//! overwrite of chosen files or partitions), built here and carried out by
//! `data_files.rs` (rows into data files) and `commit.rs` (one snapshot).

use std::error::Error as StdError;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt};
use iceberg::TableIdent;
use iceberg::io::FileIO;
use iceberg::spec::{DataFile, FormatVersion};
use iceberg::table::Table;

use crate::commit::{
    AttemptPlanner, CommitOutcome, CommitProperties, OverwritePartitions, SameChange, commit,
};
use crate::conflicts::{FilterOverwrite, OverwriteByFilter};
use crate::connection::Lakehouse;
use crate::data_files::{delete_quietly, write_data_files};
use crate::error::{CatalogError, Result};
use crate::file_target::FileTarget;
use crate::partition::PartitionField;
use crate::row_level::RowLevelMode;
use crate::schema::{SchemaEvolution, WriteSchema};
use crate::snapshot::SnapshotKind;
use crate::target::{TableLayout, drop_if_still_empty, ensure_table, fit};

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

/// What every write of rows carries, whether it appends, overwrites or
/// merges: one value, handed to [`TableWrite::with_options`] or
/// [`crate::MergeWrite::with_options`].
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Job id and snapshot-summary properties of the commit.
    pub commit: CommitProperties,
    /// The partitioning a new table gets; an existing one must already be
    /// partitioned so. Empty: whatever the table has.
    pub partition_by: Vec<PartitionField>,
    /// What the write may do when the data's columns differ from the table's.
    pub on_schema_change: SchemaEvolution,
    /// How a merge removes the rows its keys replace; `None`: as the
    /// table's `write.merge.mode` says (copy-on-write when unset).
    pub row_level: Option<RowLevelMode>,
    /// The Iceberg format version a new table gets (`None`: v2); an
    /// existing table must already be of it. v3 tables take merge-on-read
    /// deletes as deletion vectors.
    pub format_version: Option<FormatVersion>,
}

impl WriteOptions {
    /// How a table the write creates is laid out.
    pub(crate) fn layout(&self) -> TableLayout<'_> {
        TableLayout {
            partition_by: &self.partition_by,
            format_version: self.format_version,
        }
    }
}

/// One write to one table: data files streamed to storage, then a single
/// atomic snapshot commit. Readers see the old snapshot or the new one.
pub struct TableWrite {
    pub(crate) lakehouse: Lakehouse,
    pub(crate) ident: TableIdent,
    mode: WriteMode,
    pub(crate) options: WriteOptions,
    /// Overwrite by filter: the live files the new rows replace.
    replacing: Option<OverwriteByFilter>,
}

impl Lakehouse {
    /// Starts a write to `table` (created on first write).
    pub fn write(&self, table: TableIdent, mode: WriteMode) -> TableWrite {
        TableWrite {
            lakehouse: self.clone(),
            ident: table,
            mode,
            options: WriteOptions::default(),
            replacing: None,
        }
    }
}

impl TableWrite {
    pub fn with_options(mut self, options: WriteOptions) -> Self {
        self.options = options;
        self
    }

    /// Overwrite by filter: the written rows replace exactly the live files
    /// `overwrite.replaced`, whatever the write mode; every other file
    /// stays. The commit re-plans on a newer head, and fails, asking for a
    /// re-run, only if one of those files is gone or a data file added
    /// since could hold rows the filter matches (they would survive).
    pub fn replacing_files(mut self, overwrite: FilterOverwrite) -> Self {
        self.replacing = Some(OverwriteByFilter {
            overwrite,
            operation: "replace_where",
            by_position: false,
        });
        self
    }

    /// Streams every partition into data files (one writer per partition,
    /// in parallel), then commits them as one snapshot.
    pub async fn execute<S, E>(self, schema: SchemaRef, partitions: Vec<S>) -> Result<CommitOutcome>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
        E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
    {
        self.execute_with(&schema, WrittenHere(partitions)).await
    }

    /// Has tasks elsewhere write the data files (the workers of a
    /// distributed job): `start` gets where they go, and the storage of
    /// this process for tasks that run here; it returns the stream of the
    /// tasks' answers ([`FileTarget::write`]). Then commits every file
    /// answered as one snapshot, as [`Self::execute`] does; when a task
    /// fails, the files answered so far are deleted.
    pub async fn execute_elsewhere<F, S, E>(
        self,
        schema: SchemaRef,
        start: F,
    ) -> Result<CommitOutcome>
    where
        F: FnOnce(FileTarget, FileIO) -> std::result::Result<S, E>,
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        self.execute_with(&schema, WrittenElsewhere(start)).await
    }

    async fn execute_with(
        mut self,
        schema: &SchemaRef,
        writers: impl Writers,
    ) -> Result<CommitOutcome> {
        let options = &self.options;
        let (table, created) =
            ensure_table(&self.lakehouse, &self.ident, schema, options.layout()).await?;
        if let Some(snapshot_id) = options.commit.committed_in(&table) {
            return Ok(CommitOutcome::AlreadyCommitted { snapshot_id });
        }
        options.commit.check_not_sharded_before(&table)?;
        // Other shards may be writing into the table a shard created.
        let purge_on_failure = created && options.commit.shard_of_commit().is_none();
        let result = self.write_and_commit(&table, schema, writers).await;
        if result.is_err() && purge_on_failure {
            drop_if_still_empty(&self.lakehouse, &self.ident).await;
        }
        result
    }

    async fn write_and_commit(
        &mut self,
        table: &Table,
        schema: &SchemaRef,
        writers: impl Writers,
    ) -> Result<CommitOutcome> {
        let written = fit(table, schema, self.options.on_schema_change)?;
        let job_id = self.options.commit.job();
        let files = writers.write(table, &written, job_id).await?;
        let (written, files) = (&written, &files[..]);
        match (self.replacing.take(), self.mode) {
            (Some(mut replacing), _) => self.commit(written, files, &mut replacing).await,
            (None, WriteMode::Append) => {
                let mut planner = SameChange(SnapshotKind::Append);
                self.commit(written, files, &mut planner).await
            }
            (None, WriteMode::Overwrite) => {
                let mut planner = SameChange(SnapshotKind::OverwriteAll);
                self.commit(written, files, &mut planner).await
            }
            (None, WriteMode::OverwritePartitions) => {
                let partitions = files.iter().map(|f| f.partition().clone()).collect();
                self.commit(written, files, &mut OverwritePartitions(partitions))
                    .await
            }
        }
    }

    async fn commit(
        &self,
        written: &WriteSchema,
        files: &[DataFile],
        planner: &mut impl AttemptPlanner,
    ) -> Result<CommitOutcome> {
        let properties = &self.options.commit;
        commit(
            &self.lakehouse,
            &self.ident,
            properties,
            written,
            files,
            planner,
        )
        .await
    }
}

/// Who writes a write's data files.
pub(crate) trait Writers {
    async fn write(
        self,
        table: &Table,
        written: &WriteSchema,
        job_id: Option<&str>,
    ) -> Result<Vec<DataFile>>;
}

/// This process's writer tasks, one per stream.
struct WrittenHere<S>(Vec<S>);

impl<S, E> Writers for WrittenHere<S>
where
    S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
    E: Into<Box<dyn StdError + Send + Sync>> + Send + 'static,
{
    async fn write(
        self,
        table: &Table,
        written: &WriteSchema,
        job_id: Option<&str>,
    ) -> Result<Vec<DataFile>> {
        write_data_files(table, written, job_id, self.0).await
    }
}

/// Tasks elsewhere, started by the function held, answering in a stream.
pub(crate) struct WrittenElsewhere<F>(pub(crate) F);

impl<F, S, E> Writers for WrittenElsewhere<F>
where
    F: FnOnce(FileTarget, FileIO) -> std::result::Result<S, E>,
    S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    async fn write(
        self,
        table: &Table,
        written: &WriteSchema,
        job_id: Option<&str>,
    ) -> Result<Vec<DataFile>> {
        let target = FileTarget::new(table, written, job_id);
        let failed = |e: E| CatalogError::Source {
            partition: 0,
            source: e.into(),
        };
        let mut answers = (self.0)(target.clone(), table.file_io().clone()).map_err(failed)?;
        let mut files = Vec::new();
        while let Some(answer) = answers.next().await {
            match answer.map_err(failed).and_then(|a| target.files_of(&a)) {
                Ok(answered) => files.extend(answered),
                Err(e) => {
                    delete_quietly(table, files.iter().map(|f| f.file_path().to_string())).await;
                    return Err(e);
                }
            }
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::compute::cast;
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::stream;
    use iceberg::expr::Reference;
    use iceberg::spec::Datum;

    use super::*;
    use crate::history::{lineage, snapshot_infos};
    use crate::schema::table_ident;

    fn job(job_id: &str) -> WriteOptions {
        WriteOptions {
            commit: CommitProperties::default().job_id(job_id),
            ..WriteOptions::default()
        }
    }

    fn evolving() -> WriteOptions {
        WriteOptions {
            on_schema_change: SchemaEvolution::Evolve,
            ..WriteOptions::default()
        }
    }

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

    /// The live files of `gold.things`, chosen for a filter overwrite of
    /// the rows with `key < 10`.
    async fn keys_under_ten(lakehouse: &Lakehouse) -> FilterOverwrite {
        let files: HashSet<String> = data_files(lakehouse, "gold.things")
            .await
            .into_iter()
            .collect();
        let ident = table_ident("gold.things").unwrap();
        let table = lakehouse.load_table(&ident).await.unwrap();
        FilterOverwrite {
            replaced: files,
            chosen_on: table.metadata().current_snapshot_id(),
            could_match: Reference::new("key").less_than(Datum::long(10)),
        }
    }

    #[tokio::test]
    async fn an_overwrite_by_filter_refuses_only_added_files_that_could_hold_matching_rows() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("gold.things").unwrap();
        let schema = batch(0..1).schema();
        let append = |keys| {
            lakehouse
                .write(ident.clone(), WriteMode::Append)
                .execute(schema.clone(), partitions(vec![vec![batch(keys)]]))
        };
        let overwrite = |chosen: FilterOverwrite| {
            lakehouse
                .write(ident.clone(), WriteMode::Append)
                .replacing_files(chosen)
                .execute(schema.clone(), partitions(vec![vec![batch(100..105)]]))
        };
        append(0..10).await.unwrap();
        let chosen = keys_under_ten(&lakehouse).await;

        // Rows committed meanwhile that could match the filter: refused.
        append(5..7).await.unwrap();
        let error = overwrite(chosen).await.unwrap_err().to_string();
        assert!(
            error.contains("1 data file(s) committed after the rows to replace were chosen"),
            "{error}"
        );
        assert!(error.contains("re-run the job"), "{error}");
        let table = lakehouse.load_table(&ident).await.unwrap();
        assert_eq!(snapshot_infos(&table).len(), 2, "nothing was committed");

        // Rows committed meanwhile whose bounds lie outside it: the overwrite
        // re-plans on the new head and lands, keeping them.
        let chosen = keys_under_ten(&lakehouse).await;
        append(10..20).await.unwrap();
        let outcome = overwrite(chosen).await.unwrap();
        let CommitOutcome::Committed { .. } = outcome else {
            panic!("expected a commit, got {outcome:?}");
        };
        let table = lakehouse.load_table(&ident).await.unwrap();
        let current = table.metadata().current_snapshot().unwrap();
        assert_eq!(
            current.summary().additional_properties["total-records"],
            "15"
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
            .with_options(job("load-1"))
            .execute(schema.clone(), partitions(vec![vec![batch(0..5)]]))
            .await
            .unwrap();
        let CommitOutcome::Committed { snapshot_id, .. } = first else {
            panic!("{first:?}");
        };
        let again = lakehouse
            .write(ident.clone(), WriteMode::Append)
            .with_options(job("load-1"))
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
                .with_options(evolving())
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
            .with_options(evolving())
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
