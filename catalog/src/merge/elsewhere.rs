//! A merge whose new rows are written by tasks elsewhere (the workers of a
//! distributed job). Only the files' descriptions come back, so the new
//! rows' keys are read back from those files, key columns only, and kept
//! as a merge in this process keeps them while its rows stream past. From
//! there it is the same merge: a repeated or null key is refused, and each
//! commit attempt matches the keys against the head it builds on.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use futures::{Stream, StreamExt};
use iceberg::io::FileIO;
use iceberg::spec::DataFile;
use iceberg::table::Table;

use super::keys::MergeKeys;
use super::{MergeWrite, read_keys};
use crate::commit::CommitOutcome;
use crate::data_files::delete_quietly;
use crate::error::{BoxError, Result};
use crate::file_target::FileTarget;
use crate::schema::WriteSchema;
use crate::write::{Writers, WrittenElsewhere};

impl MergeWrite {
    /// Has tasks elsewhere write the new rows' data files, as
    /// [`crate::TableWrite::execute_elsewhere`] does, then merges them in.
    /// Not with a delete flag: its rows are not stored, but their keys
    /// are needed.
    pub async fn execute_elsewhere<F, S, E>(
        self,
        schema: SchemaRef,
        start: F,
    ) -> Result<CommitOutcome>
    where
        F: FnOnce(FileTarget, FileIO) -> std::result::Result<S, E>,
        S: Stream<Item = std::result::Result<RecordBatch, E>> + Unpin,
        E: Into<BoxError>,
    {
        if let Some(flag) = &self.delete_flag {
            return Err(self.problem(format!(
                "a merge with a delete flag (`{flag}`) writes its new rows in the job's process"
            )));
        }
        self.on_table(&schema, async |table| {
            let (written, keys) = self.fitted(table, &schema)?;
            let job_id = self.options.commit.job();
            let files = WrittenElsewhere(start)
                .write(table, &written, job_id)
                .await?;
            if let Err(e) = self.remember_keys(table, &written, &files, &keys).await {
                let paths: Vec<String> = files.iter().map(|f| f.file_path().to_string()).collect();
                delete_quietly(table, paths).await;
                return Err(e);
            }
            self.commit_merge(table, &written, &files, keys).await
        })
        .await
    }

    /// Reads the keys of the files the tasks wrote into `keys`; a null or
    /// repeated key is refused.
    async fn remember_keys(
        &self,
        table: &Table,
        written: &WriteSchema,
        files: &[DataFile],
        keys: &MergeKeys,
    ) -> Result<()> {
        for file in files {
            let mut batches = read_keys(table, written, file, keys)?;
            while let Some(batch) = batches.next().await {
                keys.remember(&batch?)
                    .map_err(|e| self.problem(e.to_string()))?;
            }
        }
        if keys.kept {
            return Ok(());
        }
        self.refuse_repeated_keys(table, written, files, keys).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    use super::*;
    use crate::commit::CommitProperties;
    use crate::connection::Lakehouse;
    use crate::error::CatalogError;
    use crate::file_target::tests::tasks;
    use crate::schema::table_ident;
    use crate::write::WriteOptions;

    fn rows(rows: &[(i64, &str)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("key", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]);
        let keys = Int64Array::from_iter_values(rows.iter().map(|r| r.0));
        let names = StringArray::from_iter_values(rows.iter().map(|r| r.1));
        RecordBatch::try_new(Arc::new(schema), vec![Arc::new(keys), Arc::new(names)]).unwrap()
    }

    /// Each batch written by a task of its own, then merged on `key`.
    async fn merge(
        lakehouse: &Lakehouse,
        job: &str,
        batches: Vec<RecordBatch>,
    ) -> Result<CommitOutcome> {
        lakehouse
            .merge(table_ident("silver.things").unwrap(), vec!["key".into()])
            .with_options(WriteOptions {
                commit: CommitProperties::default().job_id(job),
                ..WriteOptions::default()
            })
            .execute_elsewhere(batches[0].schema(), |target, _| {
                Ok::<_, CatalogError>(tasks(target, batches))
            })
            .await
    }

    async fn contents(lakehouse: &Lakehouse) -> BTreeMap<i64, String> {
        let table = lakehouse
            .load_table(&table_ident("silver.things").unwrap())
            .await
            .unwrap();
        let mut by_key = BTreeMap::new();
        for batch in crate::scan::read_with_iceberg(&table).await {
            let (keys, names) = (
                batch.column(0).as_primitive::<Int64Type>(),
                batch.column(1).as_string::<i32>(),
            );
            for i in 0..batch.num_rows() {
                assert!(
                    by_key
                        .insert(keys.value(i), names.value(i).to_string())
                        .is_none()
                );
            }
        }
        by_key
    }

    fn parquet_files(dir: &std::path::Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .map(|e| e.unwrap().path())
            .map(|p| {
                if p.is_dir() {
                    parquet_files(&p)
                } else {
                    usize::from(p.extension().is_some_and(|e| e == "parquet"))
                }
            })
            .sum()
    }

    #[tokio::test]
    async fn new_rows_written_elsewhere_merge_by_their_keys_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        merge(
            &lakehouse,
            "load-1",
            vec![rows(&[(1, "a"), (2, "b")]), rows(&[(3, "c")])],
        )
        .await
        .unwrap();
        merge(
            &lakehouse,
            "load-2",
            vec![rows(&[(2, "B")]), rows(&[(4, "d")])],
        )
        .await
        .unwrap();
        let expected = BTreeMap::from(
            [(1, "a"), (2, "B"), (3, "c"), (4, "d")].map(|(k, v)| (k, v.to_string())),
        );
        assert_eq!(contents(&lakehouse).await, expected);
        // Into a table with rows, a key twice among the new rows is refused too.
        let error = merge(
            &lakehouse,
            "load-3",
            vec![rows(&[(5, "e")]), rows(&[(5, "E")])],
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("(key = 5) more than once"),
            "{error}"
        );
        assert_eq!(contents(&lakehouse).await, expected);
    }

    #[tokio::test]
    async fn a_key_written_twice_elsewhere_into_an_empty_table_is_refused_and_its_files_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
        let error = merge(
            &lakehouse,
            "load-1",
            vec![rows(&[(1, "a"), (2, "b")]), rows(&[(1, "c")])],
        )
        .await
        .unwrap_err();
        assert!(
            error.to_string().contains("(key = 1) more than once"),
            "{error}"
        );
        let ident = table_ident("silver.things").unwrap();
        assert!(lakehouse.try_load_table(&ident).await.unwrap().is_none());
        assert_eq!(parquet_files(&dir.path().join("warehouse")), 0);
    }
}
