//! Tests of the commit protocol: files that vanished before the commit, and
//! the retry policy the table's properties set, and what an observer hears.

use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use futures::stream;
use iceberg::TableUpdate;

use super::*;
use crate::commit_observer::CommitObserver;
use crate::data_files::write_data_files;
use crate::history::snapshot_infos;
use crate::schema::{SchemaEvolution, table_ident};
use crate::snapshot::on_current_head;
use crate::target::fit;
use crate::write::WriteMode;

fn batch(keys: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new("key", DataType::Int64, false)]));
    RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(keys))]).unwrap()
}

type Partition = stream::Iter<std::vec::IntoIter<std::result::Result<RecordBatch, std::io::Error>>>;

fn partitions(batches: Vec<RecordBatch>) -> Vec<Partition> {
    batches
        .into_iter()
        .map(|b| stream::iter(vec![Ok(b)]))
        .collect()
}

/// A table `bronze.things` with one appended snapshot.
async fn table_with_rows(lakehouse: &Lakehouse) -> TableIdent {
    let ident = table_ident("bronze.things").unwrap();
    lakehouse
        .write(ident.clone(), WriteMode::Append)
        .execute(batch(0..1).schema(), partitions(vec![batch(0..10)]))
        .await
        .unwrap();
    ident
}

async fn set_properties(lakehouse: &Lakehouse, ident: &TableIdent, properties: &[(&str, &str)]) {
    let table = lakehouse.load_table(ident).await.unwrap();
    let updates = properties
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    lakehouse
        .transport()
        .commit(
            &table,
            on_current_head(table.metadata()),
            vec![TableUpdate::SetProperties { updates }],
            "test",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_write_whose_files_vanished_before_its_commit_commits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
    let ident = table_with_rows(&lakehouse).await;
    let table = lakehouse.load_table(&ident).await.unwrap();
    let written = fit(&table, &batch(0..1).schema(), SchemaEvolution::Fail).unwrap();
    let streams = partitions(vec![batch(10..20), batch(20..30)]);
    let files = write_data_files(&table, &written, None, streams)
        .await
        .unwrap();
    // As a too-young orphan sweep would: one streamed file is deleted.
    table.file_io().delete(files[0].file_path()).await.unwrap();
    let properties = CommitProperties::default();
    let mut planner = SameChange(SnapshotKind::Append);
    let error = commit(
        &lakehouse,
        &ident,
        &properties,
        &written,
        &files,
        &mut planner,
    )
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

/// Appends nothing, and loses every race: while each attempt is planned,
/// another commit moves the table on.
struct AlwaysOvertaken<'a> {
    lakehouse: &'a Lakehouse,
    ident: &'a TableIdent,
    plans: u32,
}

impl AttemptPlanner for AlwaysOvertaken<'_> {
    async fn plan(&mut self, _head: &Table) -> Result<Attempt> {
        self.plans += 1;
        let round = self.plans.to_string();
        set_properties(self.lakehouse, self.ident, &[("overtaken", &round)]).await;
        Ok(Attempt::of(SnapshotKind::Append))
    }
}

/// How many attempts a commit that always loses makes on a table with
/// these properties.
async fn attempts_with(properties: &[(&str, &str)]) -> (u32, u32) {
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
    let ident = table_with_rows(&lakehouse).await;
    set_properties(&lakehouse, &ident, properties).await;
    let table = lakehouse.load_table(&ident).await.unwrap();
    let written = WriteSchema::unchanged(table.metadata());
    let mut planner = AlwaysOvertaken {
        lakehouse: &lakehouse,
        ident: &ident,
        plans: 0,
    };
    let properties = CommitProperties::default();
    let error = commit(&lakehouse, &ident, &properties, &written, &[], &mut planner)
        .await
        .unwrap_err();
    let CatalogError::CommitConflict { attempts, .. } = error else {
        panic!("expected a commit conflict, got {error}");
    };
    (attempts, planner.plans)
}

#[tokio::test]
async fn the_tables_retry_properties_set_how_often_a_losing_commit_tries() {
    let quick = [
        (TableProperties::PROPERTY_COMMIT_MIN_RETRY_WAIT_MS, "1"),
        (TableProperties::PROPERTY_COMMIT_MAX_RETRY_WAIT_MS, "1"),
    ];
    let retries = |n| {
        let mut properties = quick.to_vec();
        properties.push((TableProperties::PROPERTY_COMMIT_NUM_RETRIES, n));
        properties
    };
    assert_eq!(attempts_with(&retries("0")).await, (1, 1));
    assert_eq!(attempts_with(&retries("3")).await, (4, 4));
    // A total timeout shorter than one attempt stops after the first.
    let mut timed = retries("3");
    timed.push((TableProperties::PROPERTY_COMMIT_TOTAL_RETRY_TIME_MS, "0"));
    assert_eq!(attempts_with(&timed).await, (1, 1));
}

#[tokio::test]
async fn without_retry_properties_a_commit_tries_twenty_times_with_backoff_up_to_five_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let lakehouse = Lakehouse::in_test_folder(dir.path()).await;
    let ident = table_with_rows(&lakehouse).await;
    let policy = RetryPolicy::of(&lakehouse.load_table(&ident).await.unwrap());
    assert_eq!(
        policy,
        RetryPolicy {
            retries: 19,
            min_wait: Duration::from_millis(50),
            max_wait: Duration::from_secs(5),
            total_timeout: None,
        }
    );
    set_properties(
        &lakehouse,
        &ident,
        &[(TableProperties::PROPERTY_COMMIT_NUM_RETRIES, "many")],
    )
    .await;
    let policy = RetryPolicy::of(&lakehouse.load_table(&ident).await.unwrap());
    assert_eq!(policy.retries, 19, "a value that is no number is ignored");
}

/// Every attempt an observer heard about, in order.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<(u32, AttemptEnd)>>);

impl CommitObserver for Heard {
    fn attempt(&self, table: &TableIdent, number: u32, end: AttemptEnd, _elapsed: Duration) {
        assert_eq!(table.to_string(), "bronze.things");
        self.0.lock().unwrap().push((number, end));
    }
}

#[tokio::test]
async fn the_commit_observer_hears_each_conflict_then_the_one_that_gave_up_then_a_landed_commit() {
    let dir = tempfile::tempdir().unwrap();
    let heard = Arc::new(Heard::default());
    let lakehouse = Lakehouse::in_test_folder(dir.path())
        .await
        .with_commit_observer(heard.clone());
    let ident = table_with_rows(&lakehouse).await;
    set_properties(
        &lakehouse,
        &ident,
        &[
            (TableProperties::PROPERTY_COMMIT_NUM_RETRIES, "2"),
            (TableProperties::PROPERTY_COMMIT_MIN_RETRY_WAIT_MS, "1"),
            (TableProperties::PROPERTY_COMMIT_MAX_RETRY_WAIT_MS, "1"),
        ],
    )
    .await;
    heard.0.lock().unwrap().clear();
    let table = lakehouse.load_table(&ident).await.unwrap();
    let written = WriteSchema::unchanged(table.metadata());
    let properties = CommitProperties::default();
    let mut overtaken = AlwaysOvertaken {
        lakehouse: &lakehouse,
        ident: &ident,
        plans: 0,
    };
    let lost = commit(
        &lakehouse,
        &ident,
        &properties,
        &written,
        &[],
        &mut overtaken,
    )
    .await;
    assert!(lost.is_err());
    let mut alone = SameChange(SnapshotKind::Append);
    commit(&lakehouse, &ident, &properties, &written, &[], &mut alone)
        .await
        .unwrap();
    assert_eq!(
        *heard.0.lock().unwrap(),
        [
            (1, AttemptEnd::Conflict),
            (2, AttemptEnd::Conflict),
            (3, AttemptEnd::ConflictGaveUp),
            (1, AttemptEnd::Committed),
        ]
    );
}
