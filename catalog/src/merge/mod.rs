//! Merge (upsert) on key columns.
//!
//! The new rows are streamed into data files once, and their keys are kept
//! in memory. Each commit attempt then reads the key columns of the head it
//! builds on and removes the rows those keys match: copy-on-write rewrites
//! only the files holding one (without the matched rows), merge-on-read
//! writes position deletes for them (`row_level.rs` says which). After a
//! conflict the next attempt does that again on the new head, so a
//! concurrent append of a matching key is matched too instead of being
//! duplicated.

mod copy_on_write;
mod elsewhere;
mod key_scan;
mod key_set;
mod keys;
mod merge_on_read;
mod plan;

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::filter_record_batch;
use arrow::compute::kernels::boolean::not;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use iceberg::TableIdent;
use iceberg::arrow::schema_to_arrow_schema;
use iceberg::scan::FileScanTask;
use iceberg::spec::DataFile;
use iceberg::table::Table;

use crate::commit::{CommitOutcome, commit};
use crate::connection::Lakehouse;
use crate::data_files::{delete_quietly, write_data_files};
use crate::error::BoxError;
use crate::error::{CatalogError, Context, Result};
use crate::history::may_have_rows;
use crate::row_level::{RowLevelMode, RowLevelOperation};
use crate::scan::read_file;
use crate::schema::WriteSchema;
use crate::target::{drop_if_still_empty, ensure_table, fit};
use crate::write::WriteOptions;
use keys::{KeyProblem, MergeKeys, is_true};
use plan::MergePlanner;

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
        self.on_table(&stored_schema, async |table| {
            self.merge_into(table, stored_schema.clone(), stored, flag, partitions)
                .await
        })
        .await
    }

    /// Runs `merge` on the table (created on first write) unless this job
    /// id already committed to it; a table the merge created is dropped
    /// again when the merge fails.
    async fn on_table(
        &self,
        schema: &SchemaRef,
        merge: impl AsyncFnOnce(&Table) -> Result<CommitOutcome>,
    ) -> Result<CommitOutcome> {
        let (lakehouse, ident) = (&self.lakehouse, &self.ident);
        let (table, created) =
            ensure_table(lakehouse, ident, schema, self.options.layout()).await?;
        if let Some(snapshot_id) = self.options.commit.committed_in(&table) {
            return Ok(CommitOutcome::AlreadyCommitted { snapshot_id });
        }
        let result = merge(&table).await;
        if result.is_err() && created {
            drop_if_still_empty(lakehouse, ident).await;
        }
        result
    }

    /// The schema the new rows are written in, and the keys they will be
    /// matched by.
    fn fitted(&self, table: &Table, schema: &SchemaRef) -> Result<(WriteSchema, Arc<MergeKeys>)> {
        let written = fit(table, schema, self.options.on_schema_change)?;
        let columns = schema_to_arrow_schema(&written.schema)
            .context(|| format!("cannot map the schema of {} to Arrow", self.ident))?;
        // Into an empty table a merge inserts: its keys match nothing, so
        // only their hashes are kept, to refuse a repeated key (the first
        // load of a big table needs no full key set).
        let keys = MergeKeys::new(&self.keys, &columns, may_have_rows(table))
            .map_err(|e| self.problem(e))?;
        Ok((written, Arc::new(keys)))
    }

    /// Commits the new rows' files, each attempt matching `keys` against
    /// the head it builds on.
    async fn commit_merge(
        &self,
        table: &Table,
        written: &WriteSchema,
        files: &[DataFile],
        keys: Arc<MergeKeys>,
    ) -> Result<CommitOutcome> {
        let mut planner = MergePlanner {
            ident: &self.ident,
            job_id: self.options.commit.job(),
            keys,
            mode: RowLevelMode::for_table(self.options.row_level, table, RowLevelOperation::Merge),
        };
        let properties = &self.options.commit;
        commit(
            &self.lakehouse,
            &self.ident,
            properties,
            written,
            files,
            &mut planner,
        )
        .await
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
        let (written, keys) = self.fitted(table, &stored_schema)?;
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
        self.commit_merge(table, &written, &files, keys).await
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
        let mut seen = HashSet::new();
        for file in files {
            let mut batches = read_keys(table, written, file, keys)?;
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

/// The key columns of one of the merge's new data files, read back.
fn read_keys(
    table: &Table,
    written: &WriteSchema,
    file: &DataFile,
    keys: &MergeKeys,
) -> Result<BoxStream<'static, Result<RecordBatch>>> {
    let schema = written.schema.clone();
    let key_ids: Vec<i32> = keys
        .names
        .iter()
        .filter_map(|name| schema.field_id_by_name(name))
        .collect();
    let task = FileScanTask::builder()
        .with_file_size_in_bytes(file.file_size_in_bytes())
        .with_start(0)
        .with_length(file.file_size_in_bytes())
        .with_data_file_path(file.file_path().to_string())
        .with_data_file_format(file.file_format())
        .with_schema(schema)
        .with_project_field_ids(key_ids)
        .with_case_sensitive(true)
        .build();
    read_file(table, task)
}

#[cfg(test)]
mod tests;
