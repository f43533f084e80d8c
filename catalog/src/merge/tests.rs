use std::collections::HashMap;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array, StringArray};
use arrow::datatypes::Field;
use futures::stream;

use super::*;
use crate::commit::AttemptPlanner;
use crate::commit::CommitProperties;
use crate::scan::live_files;
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

type Partition = stream::Iter<std::vec::IntoIter<std::result::Result<RecordBatch, std::io::Error>>>;

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
    merge_as(lakehouse, job, batches, delete_flag, None).await
}

async fn merge_on_read(
    lakehouse: &Lakehouse,
    job: &str,
    batches: Vec<RecordBatch>,
) -> CommitOutcome {
    let mode = Some(RowLevelMode::MergeOnRead);
    merge_as(lakehouse, job, batches, false, mode)
        .await
        .unwrap()
}

async fn merge_as(
    lakehouse: &Lakehouse,
    job: &str,
    batches: Vec<RecordBatch>,
    delete_flag: bool,
    row_level: Option<RowLevelMode>,
) -> Result<CommitOutcome> {
    let mut merge = lakehouse
        .merge(table_ident("silver.things").unwrap(), vec!["key".into()])
        .with_options(WriteOptions {
            commit: CommitProperties::default().job_id(job),
            row_level,
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
    let mut planner = MergePlanner {
        ident: &ident,
        job_id: None,
        keys,
        mode: RowLevelMode::CopyOnWrite,
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

/// The current snapshot's summary property `key`, as a number.
async fn summary_count(lakehouse: &Lakehouse, key: &str) -> u64 {
    let table = lakehouse
        .load_table(&table_ident("silver.things").unwrap())
        .await
        .unwrap();
    let snapshot = table.metadata().current_snapshot().unwrap();
    crate::history::summary_number(snapshot.summary(), key).unwrap_or(0)
}

#[tokio::test]
async fn a_merge_on_read_merge_deletes_replaced_rows_by_position_and_keeps_every_data_file() {
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
    let first = vec![
        rows(&[(1, "a"), (2, "b")], None),
        rows(&[(3, "c"), (4, "d")], None),
    ];
    merge_on_read(&lakehouse, "load-1", first).await;
    let (_, files_before) = contents(&lakehouse).await;

    let outcome = merge_on_read(
        &lakehouse,
        "load-2",
        vec![rows(&[(2, "B"), (5, "e")], None)],
    )
    .await;
    let (rows_now, files_now) = contents(&lakehouse).await;
    let expected = [(1, "a"), (2, "B"), (3, "c"), (4, "d"), (5, "e")];
    assert_eq!(rows_now, expected.map(|(k, v)| (k, v.to_string())).into());
    // No file was rewritten: both old files stay, one new file beside them.
    assert!(
        files_before.iter().all(|f| files_now.contains(f)),
        "{files_now:?}"
    );
    assert_eq!(files_now.len(), 3);
    let CommitOutcome::Committed { stats, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!((stats.rows, stats.deleted_rows), (2, 1));
    assert_eq!(summary_count(&lakehouse, "total-position-deletes").await, 1);
    assert_eq!(summary_count(&lakehouse, "total-delete-files").await, 1);
    assert_eq!(summary_count(&lakehouse, "total-records").await, 5 + 1);
}

#[tokio::test]
async fn a_key_merged_twice_on_read_deletes_its_newest_row_and_never_a_deleted_one_again() {
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
    merge_on_read(
        &lakehouse,
        "load-1",
        vec![rows(&[(1, "a"), (2, "b")], None)],
    )
    .await;
    merge_on_read(&lakehouse, "load-2", vec![rows(&[(2, "B")], None)]).await;
    merge_on_read(&lakehouse, "load-3", vec![rows(&[(2, "BB")], None)]).await;
    let (rows_now, _) = contents(&lakehouse).await;
    assert_eq!(
        rows_now,
        [(1, "a"), (2, "BB")]
            .map(|(k, v)| (k, v.to_string()))
            .into()
    );
    // load-1's row of key 2 was deleted once, by load-2; load-3 deleted load-2's.
    assert_eq!(summary_count(&lakehouse, "added-position-deletes").await, 1);
    assert_eq!(summary_count(&lakehouse, "total-position-deletes").await, 2);
}

#[tokio::test]
async fn copy_on_write_merges_and_compaction_fold_the_deletes_of_the_files_they_rewrite() {
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
    let first = vec![rows(&[(1, "a"), (2, "b")], None), rows(&[(3, "c")], None)];
    merge_on_read(&lakehouse, "load-1", first).await;
    merge_on_read(
        &lakehouse,
        "load-2",
        vec![rows(&[(1, "A"), (3, "C")], None)],
    )
    .await;
    assert_eq!(summary_count(&lakehouse, "total-delete-files").await, 2);

    // Copy-on-write: the file of keys 1 and 2 is rewritten with key 1's
    // delete applied; its delete file goes with it, the other stays.
    merge(&lakehouse, "load-3", vec![rows(&[(2, "B")], None)], false)
        .await
        .unwrap();
    assert_eq!(summary_count(&lakehouse, "total-delete-files").await, 1);
    let expected: HashMap<i64, String> = [(1, "A"), (2, "B"), (3, "C")]
        .map(|(k, v)| (k, v.to_string()))
        .into();
    assert_eq!(contents(&lakehouse).await.0, expected);

    let ident = table_ident("silver.things").unwrap();
    lakehouse.compact(&ident, "compact-1").await.unwrap();
    assert_eq!(summary_count(&lakehouse, "total-delete-files").await, 0);
    assert_eq!(summary_count(&lakehouse, "total-position-deletes").await, 0);
    assert_eq!(summary_count(&lakehouse, "total-records").await, 3);
    assert_eq!(contents(&lakehouse).await.0, expected);
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

/// Each live data file's first row id, its own or inherited (v3).
async fn row_ids(lakehouse: &Lakehouse) -> HashMap<String, i64> {
    let table = lakehouse
        .load_table(&table_ident("silver.things").unwrap())
        .await
        .unwrap();
    let snapshot = table.metadata().current_snapshot().unwrap();
    let list = table.manifest_list_reader(snapshot).load().await.unwrap();
    let mut ids = HashMap::new();
    for manifest_file in list.entries() {
        let manifest = manifest_file.load_manifest(table.file_io()).await.unwrap();
        let inherited =
            crate::row_lineage::first_row_ids(manifest_file.first_row_id, manifest.entries());
        for (entry, id) in manifest.entries().iter().zip(inherited) {
            if entry.is_alive()
                && let Some(id) = id
            {
                ids.insert(entry.file_path().to_string(), id);
            }
        }
    }
    ids
}

#[tokio::test]
async fn a_copy_on_write_merge_into_a_v3_table_keeps_the_row_ids_of_the_files_it_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
    let v3_merge = |job: &'static str, batches: Vec<RecordBatch>| {
        let merge = lakehouse
            .merge(table_ident("silver.things").unwrap(), vec!["key".into()])
            .with_options(WriteOptions {
                commit: CommitProperties::default().job_id(job),
                format_version: Some(iceberg::spec::FormatVersion::V3),
                ..WriteOptions::default()
            });
        async move {
            merge
                .execute(batches[0].schema(), partitions(batches))
                .await
                .unwrap()
        }
    };
    // Two files in one manifest; the merge rewrites the first and keeps
    // the second, which moves into a new manifest.
    v3_merge(
        "load-1",
        vec![
            rows(&[(1, "a"), (2, "b")], None),
            rows(&[(3, "c"), (4, "d")], None),
        ],
    )
    .await;
    let before = row_ids(&lakehouse).await;
    assert_eq!(
        before
            .values()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [0, 2].into()
    );
    v3_merge("load-2", vec![rows(&[(1, "a2")], None)]).await;
    let after = row_ids(&lakehouse).await;
    let kept: Vec<_> = before
        .iter()
        .filter(|(path, _)| after.contains_key(*path))
        .collect();
    assert_eq!(kept.len(), 1, "{before:?} {after:?}");
    assert_eq!(
        after[kept[0].0], *kept[0].1,
        "the kept file's rows keep their ids"
    );
    let newest = after.iter().filter(|(path, _)| !before.contains_key(*path));
    assert!(
        newest.clone().count() > 0 && newest.into_iter().all(|(_, id)| *id >= 4),
        "{after:?}"
    );
}
