//! Merge (upsert) on key columns, copy-on-write.
//!
//! The new rows are streamed into data files once, and their keys are kept
//! in memory. Each commit attempt then reads the key columns of the head it
//! builds on, rewrites only the files holding one of those keys (without
//! the matched rows) and replaces them in one snapshot. After a conflict the
//! next attempt does that again on the new head, so a concurrent append of a
//! matching key is rewritten too instead of being duplicated.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, RwLock};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::kernels::boolean::not;
use arrow::compute::{cast, filter_record_batch, prep_null_mask_filter};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::row::{RowConverter, Rows, SortField};
use arrow::util::display::array_value_to_string;
use futures::stream;
use futures::{Stream, StreamExt, TryStreamExt};
use iceberg::TableIdent;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::scan::FileScanTask;
use iceberg::spec::DataFile;
use iceberg::table::Table;

use crate::commit::{Attempt, AttemptPlanner, CommitOutcome, commit};
use crate::connection::Lakehouse;
use crate::data_files::{delete_quietly, write_data_files};
use crate::error::{CatalogError, Context, Result};
use crate::history::may_have_rows;
use crate::scan::{BoxError, live_files, read_file, read_files};
use crate::schema::WriteSchema;
use crate::snapshot::SnapshotKind;
use crate::target::{drop_if_still_empty, ensure_table, fit};
use crate::write::WriteOptions;

/// Files of the head read at once while looking for matching keys.
const READ_CONCURRENCY: usize = 4;

/// A merge of new rows into a table on key columns: a row whose key is in
/// the table replaces it, any other row is added, and a row whose delete
/// flag is true removes its key and is not written.
pub struct MergeWrite {
    lakehouse: Lakehouse,
    ident: TableIdent,
    keys: Vec<String>,
    delete_flag: Option<String>,
    options: WriteOptions,
}

impl Lakehouse {
    pub fn merge(&self, table: TableIdent, keys: Vec<String>) -> MergeWrite {
        MergeWrite {
            lakehouse: self.clone(),
            ident: table,
            keys,
            delete_flag: None,
            options: WriteOptions::default(),
        }
    }
}

impl MergeWrite {
    /// The job id, snapshot properties, partitioning and schema evolution
    /// of the merge, as for any write.
    pub fn with_options(mut self, options: WriteOptions) -> Self {
        self.options = options;
        self
    }

    /// A boolean column of the new rows: where it is true, the key is
    /// deleted from the table. The column itself is not stored.
    pub fn delete_when(mut self, column: impl Into<String>) -> Self {
        self.delete_flag = Some(column.into());
        self
    }

    pub async fn execute<S, E>(self, schema: SchemaRef, partitions: Vec<S>) -> Result<CommitOutcome>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let flag = self.flag_column(&schema)?;
        let stored: Vec<usize> = (0..schema.fields().len())
            .filter(|&i| Some(i) != flag)
            .collect();
        let stored_schema = Arc::new(schema.project(&stored).expect("indices of the schema"));
        let (lakehouse, ident) = (&self.lakehouse, &self.ident);
        let partition_by = &self.options.partition_by;
        let (table, created) = ensure_table(lakehouse, ident, &stored_schema, partition_by).await?;
        if let Some(snapshot_id) = self.options.commit.committed_in(&table) {
            return Ok(CommitOutcome::AlreadyCommitted { snapshot_id });
        }
        let result = self
            .merge_into(&table, stored_schema, stored, flag, partitions)
            .await;
        if result.is_err() && created {
            drop_if_still_empty(lakehouse, ident).await;
        }
        result
    }

    fn flag_column(&self, schema: &Schema) -> Result<Option<usize>> {
        let Some(name) = &self.delete_flag else {
            return Ok(None);
        };
        let index = schema.index_of(name).map_err(|_| {
            self.problem(format!(
                "the delete flag column `{name}` is not in the new rows; add it to the job's query"
            ))
        })?;
        if schema.field(index).data_type() != &DataType::Boolean {
            return Err(self.problem(format!(
                "the delete flag column `{name}` is {}, not a boolean",
                schema.field(index).data_type()
            )));
        }
        Ok(Some(index))
    }

    fn problem(&self, detail: String) -> CatalogError {
        CatalogError::Merge {
            table: self.ident.clone(),
            detail,
        }
    }

    async fn merge_into<S, E>(
        &self,
        table: &Table,
        stored_schema: SchemaRef,
        stored: Vec<usize>,
        flag: Option<usize>,
        partitions: Vec<S>,
    ) -> Result<CommitOutcome>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Send + Unpin + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let written = fit(table, &stored_schema, self.options.on_schema_change)?;
        let columns = schema_to_arrow_schema(&written.schema)
            .context(|| format!("cannot map the schema of {} to Arrow", self.ident))?;
        // Into an empty table a merge inserts: its keys match nothing, so
        // only their hashes are kept, to refuse a repeated key (the first
        // load of a big table needs no full key set).
        let keys = Arc::new(
            MergeKeys::new(&self.keys, &columns, may_have_rows(table))
                .map_err(|e| self.problem(e))?,
        );
        let stored = Arc::new(stored);
        let sources = partitions
            .into_iter()
            .map(|partition| {
                let keys = keys.clone();
                let stored = stored.clone();
                partition
                    .map(move |batch| -> std::result::Result<RecordBatch, BoxError> {
                        let batch = batch.map_err(Into::into)?;
                        keys.remember(&batch)?;
                        let batch = match flag {
                            Some(flag) => {
                                filter_record_batch(&batch, &not(&is_true(batch.column(flag)))?)?
                            }
                            None => batch,
                        };
                        Ok(batch.project(&stored)?)
                    })
                    .boxed()
            })
            .collect();
        let job_id = self.options.commit.job();
        let files = write_data_files(table, &written, job_id, sources)
            .await
            .map_err(|e| self.merge_error(e))?;
        if !keys.kept
            && let Err(e) = self
                .refuse_repeated_keys(table, &written, &files, &keys)
                .await
        {
            delete_quietly(table, files.iter().map(|f| f.file_path().to_string())).await;
            return Err(e);
        }
        let mut planner = Rewrite {
            ident: &self.ident,
            job_id,
            keys,
        };
        let properties = &self.options.commit;
        commit(
            &self.lakehouse,
            &self.ident,
            properties,
            &written,
            &files,
            &mut planner,
        )
        .await
    }

    /// Into an empty table, the keys whose hash repeated are looked up in
    /// the files just written: a real repeat is refused like any other (a
    /// hash collision alone is not).
    async fn refuse_repeated_keys(
        &self,
        table: &Table,
        written: &WriteSchema,
        files: &[DataFile],
        keys: &MergeKeys,
    ) -> Result<()> {
        let suspects = keys.repeated_hashes();
        if suspects.is_empty() {
            return Ok(());
        }
        let schema = written.schema.clone();
        let key_ids: Vec<i32> = keys
            .names
            .iter()
            .filter_map(|name| schema.field_id_by_name(name))
            .collect();
        let mut seen = HashSet::new();
        for file in files {
            let task = FileScanTask::builder()
                .with_file_size_in_bytes(file.file_size_in_bytes())
                .with_start(0)
                .with_length(file.file_size_in_bytes())
                .with_data_file_path(file.file_path().to_string())
                .with_data_file_format(file.file_format())
                .with_schema(schema.clone())
                .with_project_field_ids(key_ids.clone())
                .with_case_sensitive(true)
                .build();
            let mut batches = read_file(table, task)?;
            while let Some(batch) = batches.next().await {
                let repeat = keys
                    .first_repeat(&batch?, &suspects, &mut seen)
                    .map_err(|e| self.problem(e.to_string()))?;
                if let Some(repeat) = repeat {
                    return Err(self.problem(repeat.to_string()));
                }
            }
        }
        Ok(())
    }

    /// A problem with the new rows' keys is the job's to fix: say so
    /// instead of calling it a query failure.
    fn merge_error(&self, error: CatalogError) -> CatalogError {
        match error {
            CatalogError::Source { source, .. } if source.is::<KeyProblem>() => {
                self.problem(source.to_string())
            }
            other => other,
        }
    }
}

/// Finds, on each head, the files holding a merged key and writes their
/// rows that stay.
struct Rewrite<'a> {
    ident: &'a TableIdent,
    /// Names the rewritten files.
    job_id: Option<&'a str>,
    keys: Arc<MergeKeys>,
}

impl AttemptPlanner for Rewrite<'_> {
    async fn plan(&mut self, head: &Table) -> Result<Attempt> {
        // No file holds a merged key: the new rows are appended.
        let unchanged = || Attempt::of(SnapshotKind::Append);
        if !self.keys.kept {
            if live_files(head).await?.is_empty() {
                return Ok(unchanged());
            }
            return Err(CatalogError::Merge {
                table: self.ident.clone(),
                detail: "another job committed rows while this merge into the empty table ran; \
                         re-run the job (the same job id is safe to re-run)"
                    .into(),
            });
        }
        if self.keys.is_empty() {
            return Ok(unchanged());
        }
        let tasks = live_files(head).await?;
        let schema = head.metadata().current_schema();
        let key_ids: Vec<i32> = self
            .keys
            .names
            .iter()
            .map(|name| {
                schema
                    .field_by_name(name)
                    .map(|f| f.id)
                    .ok_or_else(|| CatalogError::Merge {
                        table: self.ident.clone(),
                        detail: format!("key column `{name}` is no longer in the table"),
                    })
            })
            .collect::<Result<_>>()?;

        let keys = &self.keys;
        let touched: Vec<FileScanTask> = stream::iter(tasks)
            .map(|task| {
                let mut keys_only = task.clone();
                keys_only.project_field_ids = key_ids.clone();
                async move {
                    let mut batches = read_file(head, keys_only)?;
                    while let Some(batch) = batches.next().await {
                        let batch = batch?;
                        let matches = keys.matches(&batch).map_err(|e| CatalogError::Merge {
                            table: head.identifier().clone(),
                            detail: e.to_string(),
                        })?;
                        if matches.true_count() > 0 {
                            return Ok(Some(task));
                        }
                    }
                    Ok(None)
                }
            })
            .buffer_unordered(READ_CONCURRENCY)
            .try_filter_map(|task| async move { Ok::<_, CatalogError>(task) })
            .try_collect()
            .await?;
        if touched.is_empty() {
            return Ok(unchanged());
        }

        let replaced: HashSet<String> = touched.iter().map(|t| t.data_file_path.clone()).collect();
        let writers = READ_CONCURRENCY.min(touched.len());
        let mut groups: Vec<Vec<FileScanTask>> = vec![Vec::new(); writers];
        for (index, task) in touched.into_iter().enumerate() {
            groups[index % writers].push(task);
        }
        let streams: Vec<_> = groups
            .into_iter()
            .map(|group| {
                let keys = self.keys.clone();
                read_files(head, group)
                    .map(move |batch| -> std::result::Result<RecordBatch, BoxError> {
                        let batch = batch?;
                        let stays = not(&keys.matches(&batch)?)?;
                        Ok(filter_record_batch(&batch, &stays)?)
                    })
                    .boxed()
            })
            .collect();
        // The rows that stay come in the head's schema and are written in it.
        let unchanged = WriteSchema::unchanged(head.metadata());
        let rewritten = write_data_files(head, &unchanged, self.job_id, streams).await?;
        Ok(Attempt {
            kind: SnapshotKind::Overwrite(replaced),
            rewritten,
        })
    }
}

/// The keys of the new rows, in Arrow's row format so that any key columns
/// hash and compare the same way.
struct MergeKeys {
    names: Vec<String>,
    /// Whether keys are kept (the table had rows when the merge started).
    kept: bool,
    types: Vec<DataType>,
    converter: RowConverter,
    seen: RwLock<HashSet<Box<[u8]>>>,
    /// When keys are not kept: each new key's 64-bit hash (8 bytes a key
    /// instead of ~60), so that a repeated key is still found.
    hashes: Mutex<Vec<u64>>,
    hasher: RandomState,
}

/// The new rows' keys are not usable: a key is null or repeated.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct KeyProblem(String);

impl MergeKeys {
    fn new(
        names: &[String],
        table_schema: &Schema,
        kept: bool,
    ) -> std::result::Result<Self, String> {
        if names.is_empty() {
            return Err("a merge needs at least one key column".into());
        }
        let types = names
            .iter()
            .map(|name| {
                table_schema
                    .field_with_name(name)
                    .map(|f| f.data_type().clone())
                    .map_err(|_| format!("key column `{name}` is not in the table"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let converter = RowConverter::new(types.iter().cloned().map(SortField::new).collect())
            .map_err(|e| format!("cannot compare keys of these types: {e}"))?;
        Ok(Self {
            names: names.to_vec(),
            kept,
            types,
            converter,
            seen: RwLock::default(),
            hashes: Mutex::default(),
            hasher: RandomState::new(),
        })
    }

    fn is_empty(&self) -> bool {
        self.seen.read().expect("key set lock").is_empty()
    }

    fn columns(&self, batch: &RecordBatch) -> std::result::Result<Vec<ArrayRef>, BoxError> {
        self.names
            .iter()
            .zip(&self.types)
            .map(|(name, data_type)| {
                let column = batch.column_by_name(name).ok_or_else(|| {
                    KeyProblem(format!("key column `{name}` is not in the new rows"))
                })?;
                Ok(cast(column, data_type)?)
            })
            .collect()
    }

    fn rows(&self, columns: &[ArrayRef]) -> std::result::Result<Rows, BoxError> {
        Ok(self.converter.convert_columns(columns)?)
    }

    /// Adds the batch's keys (when kept); a null or repeated key is
    /// refused, since it could not say which table row it replaces.
    fn remember(&self, batch: &RecordBatch) -> std::result::Result<(), BoxError> {
        let columns = self.columns(batch)?;
        for (name, column) in self.names.iter().zip(&columns) {
            if column.null_count() > 0 {
                return Err(KeyProblem(format!(
                    "key column `{name}` is null in {} of the new rows; filter them out first",
                    column.null_count()
                ))
                .into());
            }
        }
        let rows = self.rows(&columns)?;
        if !self.kept {
            let hashes = rows.iter().map(|row| self.hasher.hash_one(row.as_ref()));
            self.hashes.lock().expect("key hash lock").extend(hashes);
            return Ok(());
        }
        let mut seen = self.seen.write().expect("key set lock");
        for (index, row) in rows.iter().enumerate() {
            if !seen.insert(row.as_ref().into()) {
                return Err(self.repeated(&columns, index).into());
            }
        }
        Ok(())
    }

    fn repeated(&self, columns: &[ArrayRef], index: usize) -> KeyProblem {
        let key: Vec<String> = self
            .names
            .iter()
            .zip(columns)
            .map(|(name, column)| {
                let value = array_value_to_string(column, index).unwrap_or_default();
                format!("{name} = {value}")
            })
            .collect();
        KeyProblem(format!(
            "the new rows hold the key ({}) more than once; deduplicate them first (a `dedup` step)",
            key.join(", ")
        ))
    }

    /// The key hashes seen more than once (their memory is given back).
    fn repeated_hashes(&self) -> HashSet<u64> {
        let mut hashes = std::mem::take(&mut *self.hashes.lock().expect("key hash lock"));
        hashes.sort_unstable();
        hashes
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0])
            .collect()
    }

    /// The first key of `batch` whose hash is a suspect and that `seen`
    /// already holds (then it is a real repeat, named).
    fn first_repeat(
        &self,
        batch: &RecordBatch,
        suspects: &HashSet<u64>,
        seen: &mut HashSet<Box<[u8]>>,
    ) -> std::result::Result<Option<KeyProblem>, BoxError> {
        let columns = self.columns(batch)?;
        let rows = self.rows(&columns)?;
        for (index, row) in rows.iter().enumerate() {
            let suspect = suspects.contains(&self.hasher.hash_one(row.as_ref()));
            if suspect && !seen.insert(row.as_ref().into()) {
                return Ok(Some(self.repeated(&columns, index)));
            }
        }
        Ok(None)
    }

    /// Which rows of a table batch have a key of the new rows.
    fn matches(&self, batch: &RecordBatch) -> std::result::Result<BooleanArray, BoxError> {
        let rows = self.rows(&self.columns(batch)?)?;
        let seen = self.seen.read().expect("key set lock");
        Ok(rows
            .iter()
            .map(|row| Some(seen.contains(row.as_ref())))
            .collect())
    }
}

/// True where the flag is true; null counts as false.
fn is_true(column: &ArrayRef) -> BooleanArray {
    let flags = column.as_boolean();
    match flags.nulls() {
        Some(_) => prep_null_mask_filter(flags),
        None => flags.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use arrow::array::{BooleanArray, Int64Array, StringArray};
    use arrow::datatypes::Field;
    use futures::stream;

    use super::*;
    use crate::commit::CommitProperties;
    use crate::schema::table_ident;

    /// Rows (key, name), plus a `deleted` flag when given.
    fn rows(rows: &[(i64, &str)], deleted: Option<&[bool]>) -> RecordBatch {
        let mut fields = vec![
            Field::new("key", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ];
        if let Some(deleted) = deleted {
            fields.push(Field::new("deleted", DataType::Boolean, true));
            columns.push(Arc::new(BooleanArray::from(deleted.to_vec())));
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
    }

    type Partition =
        stream::Iter<std::vec::IntoIter<std::result::Result<RecordBatch, std::io::Error>>>;

    /// Each batch is one partition, so each becomes its own data file.
    fn partitions(batches: Vec<RecordBatch>) -> Vec<Partition> {
        batches
            .into_iter()
            .map(|b| stream::iter(vec![Ok(b)]))
            .collect()
    }

    async fn merge(
        lakehouse: &Lakehouse,
        job: &str,
        batches: Vec<RecordBatch>,
        delete_flag: bool,
    ) -> Result<CommitOutcome> {
        let mut merge = lakehouse
            .merge(table_ident("silver.things").unwrap(), vec!["key".into()])
            .with_options(WriteOptions {
                commit: CommitProperties::default().job_id(job),
                ..WriteOptions::default()
            });
        if delete_flag {
            merge = merge.delete_when("deleted");
        }
        merge
            .execute(batches[0].schema(), partitions(batches))
            .await
    }

    /// The table's rows by key, and its live data files.
    async fn contents(lakehouse: &Lakehouse) -> (HashMap<i64, String>, Vec<String>) {
        let table = lakehouse
            .load_table(&table_ident("silver.things").unwrap())
            .await
            .unwrap();
        let files = live_files(&table)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.data_file_path)
            .collect();
        let batches = crate::scan::read_with_iceberg(&table).await;
        let mut by_key = HashMap::new();
        for batch in batches {
            let keys = batch
                .column(0)
                .as_primitive::<arrow::datatypes::Int64Type>();
            let names = batch.column(1).as_string::<i32>();
            for i in 0..batch.num_rows() {
                let previous = by_key.insert(keys.value(i), names.value(i).to_string());
                assert!(previous.is_none(), "key {} twice", keys.value(i));
            }
        }
        (by_key, files)
    }

    #[tokio::test]
    async fn a_merge_replaces_matching_keys_adds_the_rest_and_rewrites_only_files_it_touches() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        merge(
            &lakehouse,
            "load-1",
            vec![
                rows(&[(1, "a"), (2, "b")], None),
                rows(&[(3, "c"), (4, "d")], None),
            ],
            false,
        )
        .await
        .unwrap();
        let (_, files_before) = contents(&lakehouse).await;
        assert_eq!(files_before.len(), 2);

        let outcome = merge(
            &lakehouse,
            "load-2",
            vec![rows(&[(2, "B"), (5, "e")], None)],
            false,
        )
        .await
        .unwrap();
        let (rows_now, files_now) = contents(&lakehouse).await;
        assert_eq!(
            rows_now,
            HashMap::from(
                [1, 2, 3, 4, 5].map(|k| (k, ["a", "B", "c", "d", "e"][k as usize - 1].to_string()))
            )
        );
        // The file of keys 3 and 4 held no merged key: it is kept as it was.
        let untouched: Vec<_> = files_before
            .iter()
            .filter(|f| files_now.contains(f))
            .collect();
        assert_eq!(untouched.len(), 1, "{files_before:?} -> {files_now:?}");
        let CommitOutcome::Committed { stats, .. } = outcome else {
            panic!("{outcome:?}");
        };
        // Two new rows plus key 1, copied out of the rewritten file.
        assert_eq!(stats.rows, 3);

        let again = merge(&lakehouse, "load-2", vec![rows(&[(2, "X")], None)], false)
            .await
            .unwrap();
        assert!(
            matches!(again, CommitOutcome::AlreadyCommitted { .. }),
            "{again:?}"
        );
        assert_eq!(contents(&lakehouse).await.0[&2], "B");
    }

    #[tokio::test]
    async fn a_delete_flag_removes_the_key_and_is_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        merge(
            &lakehouse,
            "load-1",
            vec![rows(
                &[(1, "a"), (2, "b"), (3, "c")],
                Some(&[false, false, false]),
            )],
            true,
        )
        .await
        .unwrap();
        merge(
            &lakehouse,
            "load-2",
            vec![rows(
                &[(1, "gone"), (3, "C"), (9, "never")],
                Some(&[true, false, true]),
            )],
            true,
        )
        .await
        .unwrap();
        let (rows_now, _) = contents(&lakehouse).await;
        assert_eq!(
            rows_now,
            HashMap::from([(2, "b".to_string()), (3, "C".to_string())])
        );
        let table = lakehouse
            .load_table(&table_ident("silver.things").unwrap())
            .await
            .unwrap();
        assert!(
            table
                .metadata()
                .current_schema()
                .field_by_name("deleted")
                .is_none()
        );
    }

    #[tokio::test]
    async fn repeated_or_null_keys_are_refused_and_nothing_is_committed() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        merge(&lakehouse, "load-1", vec![rows(&[(1, "a")], None)], false)
            .await
            .unwrap();
        let error = merge(
            &lakehouse,
            "load-2",
            vec![rows(&[(7, "x")], None), rows(&[(7, "y")], None)],
            false,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("cannot merge into silver.things") && error.contains("key = 7"),
            "{error}"
        );
        assert_eq!(contents(&lakehouse).await.0.len(), 1);

        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let nulls = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![Some(2), None])),
                Arc::new(StringArray::from(vec!["b", "c"])),
            ],
        )
        .unwrap();
        let error = lakehouse
            .merge(table_ident("silver.things").unwrap(), vec!["key".into()])
            .execute(schema, partitions(vec![nulls]))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`key` is null in 1 of the new rows"),
            "{error}"
        );
        assert_eq!(contents(&lakehouse).await.0.len(), 1);
    }

    #[tokio::test]
    async fn a_merge_begun_on_an_empty_table_fails_when_rows_land_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        merge(&lakehouse, "load-1", vec![rows(&[(1, "a")], None)], false)
            .await
            .unwrap();
        let ident = table_ident("silver.things").unwrap();
        let head = lakehouse.load_table(&ident).await.unwrap();
        let table_schema = schema_to_arrow_schema(head.metadata().current_schema()).unwrap();
        // Keys not kept: the merge saw an empty table when it started.
        let keys = Arc::new(MergeKeys::new(&["key".into()], &table_schema, false).unwrap());
        let mut planner = Rewrite {
            ident: &ident,
            job_id: None,
            keys,
        };
        let Err(error) = planner.plan(&head).await else {
            panic!("a merge that kept no keys must not commit over rows it never matched");
        };
        assert!(error.to_string().contains("re-run the job"), "{error}");
    }

    #[tokio::test]
    async fn a_first_merge_into_an_empty_table_refuses_a_repeated_key_and_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let twice = vec![rows(&[(1, "a"), (2, "b")], None), rows(&[(1, "c")], None)];
        let error = merge(&lakehouse, "load-1", twice, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("the key (key = 1) more than once"),
            "{error}"
        );
        let table = lakehouse
            .try_load_table(&table_ident("silver.things").unwrap())
            .await
            .unwrap();
        assert!(table.is_none(), "the table the merge created is gone");
        let leftovers: Vec<_> = walk(dir.path().join("warehouse"))
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_key_hash_seen_twice_without_its_key_repeating_is_not_a_repeat() {
        let batch = rows(&[(1, "a"), (2, "b"), (3, "c")], None);
        let keys = MergeKeys::new(&["key".into()], &batch.schema(), false).unwrap();
        keys.remember(&batch).unwrap();
        // A collision: another key's hash equal to key 2's.
        let collided = keys.hashes.lock().unwrap()[1];
        keys.hashes.lock().unwrap().push(collided);
        let suspects = keys.repeated_hashes();
        assert_eq!(suspects, HashSet::from([collided]));
        let mut seen = HashSet::new();
        let repeat = keys.first_repeat(&batch, &suspects, &mut seen).unwrap();
        assert!(repeat.is_none(), "{repeat:?}");
        // The same key twice is one.
        let repeat = keys.first_repeat(&batch, &suspects, &mut seen).unwrap();
        assert!(repeat.unwrap().to_string().contains("key = 2"));
    }

    /// Every file below `dir`.
    fn walk(dir: std::path::PathBuf) -> impl Iterator<Item = std::path::PathBuf> {
        let mut stack = vec![dir];
        std::iter::from_fn(move || {
            while let Some(path) = stack.pop() {
                if path.is_dir() {
                    stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                } else {
                    return Some(path);
                }
            }
            None
        })
    }
}
