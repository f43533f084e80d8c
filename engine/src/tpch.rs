//! TPC-H `orders` and `customer` raw Parquet, generated with the `tpchgen`
//! crate. `tpchgen-arrow` targets a newer arrow than the one iceberg-rust
//! pins, so the arrow-58 batches are built here from `tpchgen`'s rows.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int32Builder, Int64Builder, RecordBatch,
    StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use medallion_catalog::ObjectStores;
use object_store::buffered::BufWriter;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tokio::io::AsyncWriteExt;
use tpchgen::generators::{CustomerGenerator, Order, OrderGenerator};

const BATCH_ROWS: usize = 64 * 1024;

/// What generation produced.
#[derive(Debug, Clone)]
pub struct RawData {
    pub orders_rows: u64,
    pub customer_rows: u64,
}

pub(crate) fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("o_orderkey", DataType::Int64, false),
        Field::new("o_custkey", DataType::Int64, false),
        Field::new("o_orderstatus", DataType::Utf8, false),
        Field::new("o_totalprice", DataType::Decimal128(15, 2), false),
        Field::new("o_orderdate", DataType::Date32, false),
        Field::new("o_orderpriority", DataType::Utf8, false),
        Field::new("o_clerk", DataType::Utf8, false),
        Field::new("o_shippriority", DataType::Int32, false),
        Field::new("o_comment", DataType::Utf8, false),
    ]))
}

fn customer_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("c_custkey", DataType::Int64, false),
        Field::new("c_name", DataType::Utf8, false),
        Field::new("c_address", DataType::Utf8, false),
        Field::new("c_nationkey", DataType::Int64, false),
        Field::new("c_phone", DataType::Utf8, false),
        Field::new("c_acctbal", DataType::Decimal128(15, 2), false),
        Field::new("c_mktsegment", DataType::Utf8, false),
        Field::new("c_comment", DataType::Utf8, false),
    ]))
}

/// Generates `tpch/orders/part-N.parquet` and `tpch/customer/part-N.parquet`
/// under `raw_dir`, one part per core, unless the same scale is already there.
pub async fn generate(raw_dir: &Path, scale: f64) -> Result<RawData> {
    let tpch = raw_dir.join("tpch");
    let marker = tpch.join("_SCALE");
    let orders_dir = tpch.join("orders");
    let customer_dir = tpch.join("customer");
    let orders_rows = (OrderGenerator::SCALE_BASE as f64 * scale) as u64;
    let customer_rows = (150_000.0 * scale) as u64;
    let data = RawData {
        orders_rows,
        customer_rows,
    };
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(&scale.to_string()) {
        tracing::info!(scale, "raw TPC-H data already generated");
        return Ok(data);
    }
    for dir in [&orders_dir, &customer_dir] {
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(&marker);
    let parts = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
    let mut tasks = Vec::new();
    for part in 1..=parts {
        let orders_path = orders_dir.join(format!("part-{part}.parquet"));
        let customer_path = customer_dir.join(format!("part-{part}.parquet"));
        tasks.push(tokio::task::spawn_blocking(move || -> Result<()> {
            write_parquet(
                &orders_path,
                orders_schema(),
                orders_batches(scale, part, parts),
            )?;
            write_parquet(
                &customer_path,
                customer_schema(),
                customer_batches(scale, part, parts),
            )
        }));
    }
    for task in tasks {
        task.await.context("a generator thread panicked")??;
    }
    std::fs::write(&marker, scale.to_string()).context("cannot record the generated scale")?;
    Ok(data)
}

/// Writes to a temporary name and renames, so a killed run never leaves a
/// truncated file that looks complete.
pub(crate) fn write_parquet(
    path: &Path,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch>>,
) -> Result<()> {
    let partial = path.with_extension("parquet.partial");
    let file =
        File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(properties))?;
    for batch in batches {
        writer.write(&batch?)?;
    }
    writer.close()?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot finish {}", path.display()))?;
    Ok(())
}

fn orders_batches(scale: f64, part: i32, parts: i32) -> impl Iterator<Item = Result<RecordBatch>> {
    order_batches(OrderGenerator::new(scale, part, parts).into_iter())
}

/// Orders as record batches of the raw `orders` schema.
pub(crate) fn order_batches<'a>(
    rows: impl Iterator<Item = Order<'a>> + 'a,
) -> impl Iterator<Item = Result<RecordBatch>> + 'a {
    let mut rows = rows.peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        let mut key = Int64Builder::with_capacity(BATCH_ROWS);
        let mut customer = Int64Builder::with_capacity(BATCH_ROWS);
        let mut status = StringBuilder::new();
        let mut price = Decimal128Builder::with_capacity(BATCH_ROWS);
        let mut date = Date32Builder::with_capacity(BATCH_ROWS);
        let mut priority = StringBuilder::new();
        let mut clerk = StringBuilder::new();
        let mut ship_priority = Int32Builder::with_capacity(BATCH_ROWS);
        let mut comment = StringBuilder::new();
        for order in rows.by_ref().take(BATCH_ROWS) {
            key.append_value(order.o_orderkey);
            customer.append_value(order.o_custkey);
            status.append_value(order.o_orderstatus.as_str());
            price.append_value(i128::from(order.o_totalprice.0));
            date.append_value(order.o_orderdate.to_unix_epoch());
            priority.append_value(order.o_orderpriority);
            clerk.append_value(order.o_clerk.to_string());
            ship_priority.append_value(order.o_shippriority);
            comment.append_value(order.o_comment);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(key.finish()),
            Arc::new(customer.finish()),
            Arc::new(status.finish()),
            Arc::new(
                price
                    .finish()
                    .with_precision_and_scale(15, 2)
                    .expect("valid decimal"),
            ),
            Arc::new(date.finish()),
            Arc::new(priority.finish()),
            Arc::new(clerk.finish()),
            Arc::new(ship_priority.finish()),
            Arc::new(comment.finish()),
        ];
        Some(RecordBatch::try_new(orders_schema(), columns).map_err(Into::into))
    })
}

fn customer_batches(
    scale: f64,
    part: i32,
    parts: i32,
) -> impl Iterator<Item = Result<RecordBatch>> {
    let mut rows = CustomerGenerator::new(scale, part, parts)
        .into_iter()
        .peekable();
    std::iter::from_fn(move || {
        rows.peek()?;
        let mut key = Int64Builder::with_capacity(BATCH_ROWS);
        let mut name = StringBuilder::new();
        let mut address = StringBuilder::new();
        let mut nation = Int64Builder::with_capacity(BATCH_ROWS);
        let mut phone = StringBuilder::new();
        let mut balance = Decimal128Builder::with_capacity(BATCH_ROWS);
        let mut segment = StringBuilder::new();
        let mut comment = StringBuilder::new();
        for customer in rows.by_ref().take(BATCH_ROWS) {
            key.append_value(customer.c_custkey);
            name.append_value(customer.c_name.to_string());
            address.append_value(customer.c_address.to_string());
            nation.append_value(customer.c_nationkey);
            phone.append_value(customer.c_phone.to_string());
            balance.append_value(i128::from(customer.c_acctbal.0));
            segment.append_value(customer.c_mktsegment);
            comment.append_value(customer.c_comment);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(key.finish()),
            Arc::new(name.finish()),
            Arc::new(address.finish()),
            Arc::new(nation.finish()),
            Arc::new(phone.finish()),
            Arc::new(
                balance
                    .finish()
                    .with_precision_and_scale(15, 2)
                    .expect("valid decimal"),
            ),
            Arc::new(segment.finish()),
            Arc::new(comment.finish()),
        ];
        Some(RecordBatch::try_new(customer_schema(), columns).map_err(Into::into))
    })
}

/// Copies generated raw data to a remote raw root (`s3://raw`), unless the
/// same scale is already there. Files stream up in parts.
pub async fn publish(local_raw_dir: &Path, raw_root: &str, stores: &ObjectStores) -> Result<()> {
    let local_tpch = local_raw_dir.join("tpch");
    let scale = std::fs::read_to_string(local_tpch.join("_SCALE"))
        .context("no generated raw data to publish")?;
    let marker_uri = format!("{raw_root}/tpch/_SCALE");
    let (store, marker) = stores.resolve(&marker_uri)?;
    if let Ok(existing) = store.get(&marker).await
        && existing.bytes().await.ok().as_deref() == Some(scale.as_bytes())
    {
        return Ok(());
    }
    for table in ["orders", "customer"] {
        stores
            .delete_prefix(&format!("{raw_root}/tpch/{table}/"))
            .await
            .with_context(|| format!("cannot clear {raw_root}/tpch/{table}/"))?;
        let mut entries: Vec<_> = std::fs::read_dir(local_tpch.join(table))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        entries.sort();
        for file in entries {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .context("bad file name")?
                .to_string();
            let uri = format!("{raw_root}/tpch/{table}/{name}");
            let (store, path) = stores.resolve(&uri)?;
            let mut reader = tokio::fs::File::open(&file).await?;
            let mut writer = BufWriter::new(store, path);
            tokio::io::copy(&mut reader, &mut writer)
                .await
                .with_context(|| format!("cannot upload {uri}"))?;
            writer
                .shutdown()
                .await
                .with_context(|| format!("cannot upload {uri}"))?;
        }
    }
    store
        .put(&marker, PutPayload::from(scale.into_bytes()))
        .await
        .with_context(|| format!("cannot write {marker_uri}"))?;
    Ok(())
}
