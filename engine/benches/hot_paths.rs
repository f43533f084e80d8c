//! Micro benchmarks of the paths a profile of the reference pipeline shows
//! hot: Parquet decode and encode, the bronze projection (cast, trim,
//! stamp), the dedup of silver and a copy-on-write merge. Each works on
//! 150,000 TPC-H orders (scale 0.1), generated once into a temp folder.
//!
//! `cargo bench -p medallion-engine -p medallion-bench --bench hot_paths`

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::SchemaRef;
use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use medallion_catalog::{CommitOutcome, data_file_properties, table_ident};
use medallion_engine::config::{Config, Overrides};
use medallion_engine::engine::Engine;
use medallion_engine::storage::list_raw_files;
use medallion_jobs::{
    DedupStep, JobSpec, RawFile, RawFormat, RunParameters, StepKind, bronze_frame, keep_latest,
};
use parquet::arrow::ArrowWriter;
use tokio::runtime::Runtime;

const SCALE: f64 = 0.1;
const ORDERS: usize = 150_000;

struct Fixture {
    _dir: tempfile::TempDir,
    lakehouse: PathBuf,
    raw_orders: Vec<RawFile>,
    bronze_spec: JobSpec,
    /// bronze.orders as the bronze step makes it, in one batch per raw batch.
    bronze: Vec<RecordBatch>,
}

fn fixture(runtime: &Runtime) -> Fixture {
    let dir = tempfile::tempdir().expect("a temp folder");
    let raw = dir.path().join("raw");
    runtime
        .block_on(medallion_engine::tpch::generate(&raw, SCALE))
        .expect("TPC-H data");
    let ctx = SessionContext::new();
    let orders = format!("file://{}", raw.join("tpch/orders").display());
    let raw_orders = runtime
        .block_on(list_raw_files(&ctx, &orders, RawFormat::Parquet))
        .expect("the orders folder")
        .files;
    let bronze_spec = JobSpec::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs/reference/bronze/orders.yaml"),
    )
    .expect("the bronze orders spec");
    let bronze = runtime.block_on(async {
        bronze_orders(&ctx, &bronze_spec, &raw_orders)
            .await
            .collect()
            .await
            .expect("bronze rows")
    });
    Fixture {
        lakehouse: dir.path().join("lakehouse"),
        _dir: dir,
        raw_orders,
        bronze_spec,
        bronze,
    }
}

async fn bronze_orders(
    ctx: &SessionContext,
    spec: &JobSpec,
    files: &[RawFile],
) -> datafusion::prelude::DataFrame {
    let StepKind::Bronze(step) = &spec.steps[0].kind else {
        panic!("the bronze orders spec starts with a bronze step");
    };
    let run = RunParameters {
        job_id: "bench".into(),
        loaded_at_micros: 1_764_000_000_000_000,
        raw_inputs: Default::default(),
        ..Default::default()
    };
    bronze_frame(ctx, spec, step, files, &run)
        .await
        .expect("the bronze step plans")
}

fn schema_of(batches: &[RecordBatch]) -> SchemaRef {
    batches[0].schema()
}

/// Every tenth order: the rows a later load updates.
fn every_tenth(batches: &[RecordBatch]) -> Vec<RecordBatch> {
    batches
        .iter()
        .map(|batch| {
            let keys = batch
                .column_by_name("order_key")
                .expect("order_key")
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("int64 keys");
            let tenth = keys.iter().map(|k| k.map(|k| k % 10 == 0)).collect();
            filter_record_batch(batch, &tenth).expect("a filter")
        })
        .filter(|batch| batch.num_rows() > 0)
        .collect()
}

fn decode_and_project(c: &mut Criterion, runtime: &Runtime, fixture: &Fixture) {
    let mut group = c.benchmark_group("read");
    group.sample_size(10);
    group.bench_function("parquet_decode_raw_orders", |b| {
        b.to_async(runtime).iter(|| async {
            let ctx = SessionContext::new();
            let mut rows = 0;
            for file in &fixture.raw_orders {
                let batches = ctx
                    .read_parquet(file.uri.as_str(), ParquetReadOptions::default())
                    .await
                    .expect("a raw file")
                    .collect()
                    .await
                    .expect("its rows");
                rows += batches.iter().map(RecordBatch::num_rows).sum::<usize>();
            }
            assert_eq!(rows, ORDERS);
        })
    });
    group.bench_function("bronze_projection_orders", |b| {
        b.to_async(runtime).iter(|| async {
            let ctx = SessionContext::new();
            let batches = bronze_orders(&ctx, &fixture.bronze_spec, &fixture.raw_orders)
                .await
                .collect()
                .await
                .expect("bronze rows");
            assert_eq!(
                batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
                ORDERS
            );
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion, fixture: &Fixture) {
    let mut group = c.benchmark_group("write");
    group.sample_size(10);
    let batch = concat_batches(&schema_of(&fixture.bronze), &fixture.bronze).expect("one batch");
    group.bench_function("parquet_encode_bronze_orders", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(16 << 20);
            let mut writer =
                ArrowWriter::try_new(&mut out, batch.schema(), Some(data_file_properties()))
                    .expect("a writer");
            writer.write(&batch).expect("the rows");
            writer.close().expect("the footer");
            out.len()
        })
    });
    group.finish();
}

fn dedup(c: &mut Criterion, runtime: &Runtime, fixture: &Fixture) {
    let mut group = c.benchmark_group("dedup");
    group.sample_size(10);
    let step = DedupStep {
        from: "orders".into(),
        keys: vec!["order_key".into()],
        latest_by: vec!["loaded_at".into(), "source_file".into()],
    };
    let repeated = [fixture.bronze.clone(), every_tenth(&fixture.bronze)].concat();
    for (name, batches) in [
        ("no_repeated_keys", fixture.bronze.clone()),
        ("every_tenth_key_twice", repeated),
    ] {
        let table = Arc::new(
            MemTable::try_new(schema_of(&batches), vec![batches]).expect("a memory table"),
        );
        group.bench_function(name, |b| {
            b.to_async(runtime).iter(|| async {
                let ctx = SessionContext::new();
                ctx.register_table("orders", table.clone())
                    .expect("registered");
                let rows = keep_latest(&ctx, &step)
                    .await
                    .expect("dedup plans")
                    .count()
                    .await
                    .expect("dedup runs");
                assert_eq!(rows, ORDERS);
            })
        });
    }
    group.finish();
}

/// Merges every tenth order (15,000 rows) into a 150,000-row table: the
/// key set, the key scan of the table's files and their rewrite.
fn merge(c: &mut Criterion, runtime: &Runtime, fixture: &Fixture) {
    let mut group = c.benchmark_group("merge");
    group.sample_size(10);
    let config = Config::resolve(&Overrides {
        lakehouse: Some(fixture.lakehouse.clone()),
        ..Overrides::default()
    })
    .expect("a local configuration");
    let engine = runtime
        .block_on(Engine::open(config))
        .expect("the lakehouse");
    let ident = table_ident("silver.orders").expect("a table name");
    let schema = schema_of(&fixture.bronze);
    let stream = |batches: Vec<RecordBatch>| {
        vec![futures::stream::iter(
            batches.into_iter().map(Ok::<_, DataFusionError>),
        )]
    };
    runtime
        .block_on(
            engine
                .lakehouse
                .merge(ident.clone(), vec!["order_key".into()])
                .execute(schema.clone(), stream(fixture.bronze.clone())),
        )
        .expect("the table to merge into");
    let updates = every_tenth(&fixture.bronze);
    group.bench_function("every_tenth_key_into_150k_rows", |b| {
        b.to_async(runtime).iter(|| async {
            let outcome = engine
                .lakehouse
                .merge(ident.clone(), vec!["order_key".into()])
                .execute(schema.clone(), stream(updates.clone()))
                .await
                .expect("the merge commits");
            assert!(matches!(outcome, CommitOutcome::Committed { .. }));
        })
    });
    group.finish();
}

fn hot_paths(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a tokio runtime");
    let fixture = fixture(&runtime);
    decode_and_project(c, &runtime, &fixture);
    encode(c, &fixture);
    dedup(c, &runtime, &fixture);
    merge(c, &runtime, &fixture);
}

criterion_group!(benches, hot_paths);
criterion_main!(benches);
