//! `FileTarget`: one write's data files as tasks in other processes write
//! them (the workers of a distributed job). It travels with each task: the
//! table's metadata as the write planned it, the columns the files take and
//! the job id that names them. A task writes its rows with its own storage
//! credentials and answers with the files it wrote, as Iceberg's JSON of
//! each; only the process that made the target commits them
//! ([`crate::TableWrite::execute_elsewhere`]).

use std::error::Error as StdError;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::Stream;
use iceberg::io::FileIO;
use iceberg::spec::{
    DataFile, StructType, TableMetadata, deserialize_data_file_from_json,
    serialize_data_file_to_json,
};
use iceberg::table::Table;
use iceberg::{Runtime, TableIdent};

use crate::data_files::{FileWriters, delete_quietly};
use crate::error::{CatalogError, Context, Result};
use crate::schema::{StagedSchema, WriteSchema};

/// The one column of a task's answer: a written data file as Iceberg's JSON.
const DATA_FILE: &str = "data_file";

/// Where and how one write's data files are written, by whichever process.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FileTarget {
    ident: TableIdent,
    /// The table as the write planned on it: its location, partition spec
    /// and write properties decide where files go and how they roll.
    metadata: TableMetadata,
    schema: StagedSchema,
    /// For each column of `schema`, the output column that fills it.
    sources: Vec<Option<usize>>,
    job_id: Option<String>,
}

impl FileTarget {
    pub(crate) fn new(table: &Table, written: &WriteSchema, job_id: Option<&str>) -> Self {
        Self {
            ident: table.identifier().clone(),
            metadata: table.metadata().clone(),
            schema: written.staged(),
            sources: written.sources.clone(),
            job_id: job_id.map(str::to_string),
        }
    }

    /// The table the files are written to.
    pub fn table(&self) -> &TableIdent {
        &self.ident
    }

    /// What [`Self::write`] answers: one row per data file written.
    pub fn answer_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new(
            DATA_FILE,
            DataType::Utf8,
            false,
        )]))
    }

    /// Writes `rows` into data files of the table through `file_io` (this
    /// process's storage); answers with the files, in [`Self::answer_schema`].
    /// Each call names its files apart, so tasks never overwrite each other.
    pub async fn write<S, E>(&self, file_io: FileIO, rows: S) -> Result<RecordBatch>
    where
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
        E: Into<Box<dyn StdError + Send + Sync>>,
    {
        let table = Table::builder()
            .identifier(self.ident.clone())
            .metadata(self.metadata.clone())
            .file_io(file_io)
            .readonly(true)
            .runtime(Runtime::current())
            .build()
            .context(|| format!("cannot open {} to write its data files", self.ident))?;
        let mut written = self.schema.for_commit();
        written.sources = self.sources.clone();
        let files = FileWriters::new(&table, &written, self.job_id.as_deref())?
            .write(0, rows)
            .await?;
        let answer = self.answer(&files);
        if answer.is_err() {
            let paths: Vec<String> = files.iter().map(|f| f.file_path().to_string()).collect();
            delete_quietly(&table, paths).await;
        }
        answer
    }

    fn answer(&self, files: &[DataFile]) -> Result<RecordBatch> {
        let partition_type = self.partition_type()?;
        let json = files
            .iter()
            .map(|file| {
                serialize_data_file_to_json(
                    file.clone(),
                    &partition_type,
                    self.metadata.format_version(),
                )
                .context(|| format!("cannot describe data file {}", file.file_path()))
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(
            Self::answer_schema(),
            vec![Arc::new(StringArray::from(json))],
        )
        .context(|| format!("cannot answer with the data files of {}", self.ident))
    }

    /// The data files one answer of [`Self::write`] names.
    pub(crate) fn files_of(&self, answer: &RecordBatch) -> Result<Vec<DataFile>> {
        let json = answer
            .column_by_name(DATA_FILE)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>())
            .ok_or_else(|| {
                CatalogError::Config(format!(
                    "a task writing {} answered without a `{DATA_FILE}` column",
                    self.ident
                ))
            })?;
        let partition_type = self.partition_type()?;
        let spec_id = self.metadata.default_partition_spec_id();
        (0..json.len())
            .map(|i| {
                deserialize_data_file_from_json(
                    json.value(i),
                    spec_id,
                    &partition_type,
                    self.schema.schema(),
                )
                .context(|| format!("cannot read a data file a task wrote to {}", self.ident))
            })
            .collect()
    }

    fn partition_type(&self) -> Result<StructType> {
        self.metadata
            .default_partition_spec()
            .partition_type(self.schema.schema())
            .context(|| format!("cannot partition the data files of {}", self.ident))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use arrow::array::Int64Array;
    use futures::{StreamExt, stream};

    use super::*;
    use crate::commit::CommitOutcome;
    use crate::connection::Lakehouse;
    use crate::history::snapshot_infos;
    use crate::object_storage::{ObjectStores, S3Settings};
    use crate::schema::table_ident;
    use crate::write::WriteMode;

    fn batch(keys: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("key", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(keys))]).unwrap()
    }

    /// Each batch written by a task of its own, as a worker would: the
    /// target read back from its JSON, the storage the worker's own.
    pub(crate) fn tasks(
        target: FileTarget,
        batches: Vec<RecordBatch>,
    ) -> impl Stream<Item = Result<RecordBatch>> + Unpin {
        let json = serde_json::to_vec(&target).unwrap();
        Box::pin(stream::iter(batches).then(move |rows| {
            let target: FileTarget = serde_json::from_slice(&json).unwrap();
            let file_io = ObjectStores::new(S3Settings::default()).file_io();
            async move {
                let rows = stream::iter([Ok::<_, CatalogError>(rows)]);
                target.write(file_io, rows).await
            }
        }))
    }

    #[tokio::test]
    async fn files_written_by_tasks_elsewhere_commit_as_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("gold.things").unwrap();
        let outcome = lakehouse
            .write(ident.clone(), WriteMode::Overwrite)
            .execute_elsewhere(batch(0..1).schema(), |target, _| {
                Ok::<_, CatalogError>(tasks(
                    target,
                    vec![batch(0..10), batch(10..30), batch(30..31)],
                ))
            })
            .await
            .unwrap();
        let CommitOutcome::Committed { stats, .. } = outcome else {
            panic!("expected a commit, got {outcome:?}");
        };
        assert_eq!((stats.rows, stats.files), (31, 3));
        let table = lakehouse.load_table(&ident).await.unwrap();
        let history = snapshot_infos(&table);
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].total_records, Some(31));
    }

    #[tokio::test]
    async fn a_task_failing_after_others_answered_deletes_their_files_and_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let ident = table_ident("gold.things").unwrap();
        lakehouse
            .write(ident.clone(), WriteMode::Append)
            .execute(
                batch(0..1).schema(),
                vec![stream::iter([Ok::<_, CatalogError>(batch(0..5))])],
            )
            .await
            .unwrap();
        let mut answered = Vec::new();
        let error = lakehouse
            .write(ident.clone(), WriteMode::Overwrite)
            .execute_elsewhere(batch(0..1).schema(), |target, _| {
                let lost = stream::iter([Err(CatalogError::Config("a worker was lost".into()))]);
                Ok::<_, CatalogError>(
                    tasks(target, vec![batch(0..10)])
                        .inspect(|answer| {
                            let files = answer
                                .as_ref()
                                .unwrap()
                                .column(0)
                                .as_any()
                                .downcast_ref::<StringArray>()
                                .unwrap();
                            answered.push(files.value(0).to_string());
                        })
                        .chain(lost),
                )
            })
            .await
            .unwrap_err();
        assert!(matches!(error, CatalogError::Source { .. }), "{error}");
        let table = lakehouse.load_table(&ident).await.unwrap();
        assert_eq!(snapshot_infos(&table).len(), 1, "the overwrite committed");
        let path = serde_json::from_str::<serde_json::Value>(&answered[0]).unwrap()["file_path"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            !table.file_io().exists(&path).await.unwrap(),
            "{path} is left behind"
        );
    }
}
