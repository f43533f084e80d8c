//! Loads over time: bronze appends each load, silver merges the new bronze
//! rows on their keys (only the files holding those keys are rewritten),
//! gold is replaced by the new aggregates. A raw column that appears in a
//! later load reaches bronze and silver.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Decimal128Type, Field, Int64Type, Schema};
use parquet::arrow::ArrowWriter;

use crate::support::{
    Lakehouse, SCALE, cents, edit, expected_from_raw, pyiceberg, read_parquet_dir, statuses,
};

/// A second raw batch of orders: every tenth order again with its price up
/// by 1.00 and status `U`, and every thousandth order copied under a new key.
struct SecondBatch {
    updated: u64,
    added: u64,
    /// How much the silver total_price sum grows, in cents.
    revenue_change_cents: i128,
}

fn write_second_batch(raw_orders: &Path, target: &Path) -> SecondBatch {
    let raw = read_parquet_dir(raw_orders);
    let raw = concat_batches(&raw[0].schema(), &raw).unwrap();
    let keys = raw
        .column_by_name("o_orderkey")
        .unwrap()
        .as_primitive::<Int64Type>();
    let prices = raw
        .column_by_name("o_totalprice")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    let pick = |every: i64| -> UInt64Array {
        (0..raw.num_rows() as u64)
            .filter(|&i| keys.value(i as usize) % every == 0)
            .collect()
    };
    let (updated, added) = (pick(10), pick(1000));
    let variant = |rows: &UInt64Array, key_offset: i64, status: &str| -> RecordBatch {
        let columns = raw
            .schema()
            .fields()
            .iter()
            .zip(raw.columns())
            .map(|(field, column)| -> ArrayRef {
                let picked = take(column, rows, None).unwrap();
                match field.name().as_str() {
                    "o_orderkey" => Arc::new(
                        picked
                            .as_primitive::<Int64Type>()
                            .unary::<_, Int64Type>(|k| k + key_offset),
                    ),
                    "o_totalprice" => {
                        let price = picked.as_primitive::<Decimal128Type>();
                        Arc::new(
                            price
                                .unary::<_, Decimal128Type>(|cents| cents + 100)
                                .with_precision_and_scale(price.precision(), price.scale())
                                .unwrap(),
                        )
                    }
                    "o_orderstatus" => Arc::new(StringArray::from(vec![status; rows.len()])),
                    _ => picked,
                }
            })
            .collect();
        RecordBatch::try_new(raw.schema(), columns).unwrap()
    };
    std::fs::create_dir_all(target).unwrap();
    let file = std::fs::File::create(target.join("part-0.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, raw.schema(), None).unwrap();
    writer.write(&variant(&updated, 0, "U")).unwrap();
    writer.write(&variant(&added, 100_000_000, "N")).unwrap();
    writer.close().unwrap();

    let added_prices: i128 = added
        .values()
        .iter()
        .map(|&i| prices.value(i as usize))
        .sum();
    SecondBatch {
        updated: updated.len() as u64,
        added: added.len() as u64,
        revenue_change_cents: 100 * (updated.len() + added.len()) as i128 + added_prices,
    }
}

#[test]
fn a_second_load_updates_silver_by_merge_and_replaces_gold() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let expected = expected_from_raw(&lakehouse);

    let batch = write_second_batch(
        &lakehouse.raw_dir("orders"),
        &lakehouse.raw_dir("orders_batch2"),
    );
    assert!(batch.updated > 1000 && batch.added > 10);
    let pipeline = lakehouse.pipeline_copy();
    edit(
        &pipeline.join("bronze/orders.yaml"),
        "path: tpch/orders ",
        "path: tpch/orders_batch2 ",
    );
    let pipeline = pipeline.to_str().unwrap();
    let load_2 = [
        "run",
        pipeline,
        "--job-id",
        "load-2",
        "--job",
        "bronze_orders",
        "--job",
        "silver_orders",
        "--job",
        "silver_dq_report",
        "--job",
        "gold_customer_metrics",
        "--job",
        "gold_sales_dashboard",
    ];
    let report = lakehouse.report(&load_2);
    assert!(
        statuses(&report).values().all(|s| s == "committed"),
        "{report}"
    );

    // Bronze: both loads, as they landed.
    let changed = batch.updated + batch.added;
    assert_eq!(lakehouse.rows("bronze.orders"), expected.orders + changed);
    // Silver: one row per order key, the latest version.
    let silver_orders = expected.orders + batch.added;
    assert_eq!(lakehouse.rows("silver.orders"), silver_orders);
    // The summary tells the rows this load wrote from the rows the table holds.
    let counts = |table: &str| {
        let job = report["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["table"] == table)
            .unwrap_or_else(|| panic!("{table} in {report}"));
        (job["rows_written"].as_u64(), job["table_rows"].as_u64())
    };
    assert_eq!(
        counts("bronze.orders"),
        (Some(changed), Some(expected.orders + changed))
    );
    // The merge rewrote the files it touched (here all of them, at this scale).
    let (written, in_table) = counts("silver.orders");
    assert_eq!(in_table, Some(silver_orders));
    assert!(written.is_some_and(|w| w <= silver_orders), "{report}");
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT order_key) FROM silver.orders"),
        silver_orders.to_string()
    );
    assert_eq!(
        lakehouse.scalar(
            "SELECT COUNT(*) FROM silver.orders WHERE job_id = 'load-2' AND order_status IN ('U', 'N')"
        ),
        changed.to_string()
    );
    let silver_revenue = expected.revenue_cents + batch.revenue_change_cents;
    assert_eq!(
        cents(&lakehouse.scalar("SELECT SUM(total_price) FROM silver.orders")),
        silver_revenue
    );
    // Silver by merge is what a rebuild from all of bronze would give.
    let rebuild = "SELECT order_key, total_price, order_status, job_id FROM (
            SELECT *, ROW_NUMBER() OVER (PARTITION BY order_key ORDER BY loaded_at DESC, source_file DESC) AS n
            FROM bronze.orders) WHERE n = 1";
    let merged = "SELECT order_key, total_price, order_status, job_id FROM silver.orders";
    for (left, right) in [(rebuild, merged), (merged, rebuild)] {
        assert_eq!(
            lakehouse.scalar(&format!("SELECT COUNT(*) FROM ({left} EXCEPT {right})")),
            "0"
        );
    }
    assert_eq!(
        lakehouse.scalar("SELECT rejected_rows FROM silver.dq_report WHERE table_name = 'orders' AND check_name = 'duplicate_key'"),
        batch.updated.to_string()
    );
    // Gold: replaced by aggregates of the new silver.
    assert_eq!(
        cents(&lakehouse.scalar("SELECT SUM(revenue) FROM gold.sales_dashboard")),
        silver_revenue
    );
    assert_eq!(
        cents(&lakehouse.scalar("SELECT SUM(total_spend) FROM gold.customer_metrics")),
        silver_revenue
    );
    assert_eq!(
        lakehouse.scalar("SELECT SUM(order_count) FROM gold.customer_metrics"),
        silver_orders.to_string()
    );
    let operations = lakehouse.history_of("silver.orders", "operation");
    assert_eq!(operations, ["append", "overwrite"]);

    // PyIceberg reads the merged and replaced tables the same way.
    let facts =
        pyiceberg(&["sql", lakehouse.path().to_str().unwrap()], &[]).expect("facts as JSON");
    assert_eq!(facts["silver.orders"]["rows"], silver_orders, "{facts}");
    assert_eq!(
        cents(facts["silver.orders"]["total_price"].as_str().unwrap()),
        silver_revenue
    );
    assert_eq!(
        cents(facts["gold.sales_dashboard"]["revenue"].as_str().unwrap()),
        silver_revenue
    );

    // The same load again changes nothing.
    let before = lakehouse.snapshots();
    let again = lakehouse.report(&load_2);
    assert!(
        statuses(&again).values().all(|s| s == "already_committed"),
        "{again}"
    );
    assert_eq!(lakehouse.snapshots(), before);
    let text = lakehouse.ok(&load_2);
    let header = text.lines().nth(1).unwrap_or_default();
    assert!(
        header.contains("rows written") && header.contains("rows in table"),
        "{text}"
    );
    let silver = text
        .lines()
        .find(|l| l.starts_with("silver.orders "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        silver.contains("already committed") && silver.contains(&format!(" {silver_orders} ")),
        "an already committed job shows the rows in its table: {silver}"
    );
}

#[test]
fn a_raw_column_new_in_a_later_load_reaches_bronze_and_silver() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", "0.01"]);
    let customers = lakehouse.rows("bronze.customers");

    // Ten customers again, with a column the first load did not have.
    let raw = read_parquet_dir(&lakehouse.raw_dir("customer"));
    let again = raw[0].slice(0, 10);
    let mut fields: Vec<Field> = again
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("LoyaltyTier", DataType::Utf8, true));
    let mut columns = again.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![" gold "; 10])));
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let target = lakehouse.raw_dir("customer_batch2");
    std::fs::create_dir_all(&target).unwrap();
    let file = std::fs::File::create(target.join("part-0.parquet")).unwrap();
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();

    let pipeline = lakehouse.pipeline_copy();
    edit(
        &pipeline.join("bronze/customers.yaml"),
        "path: tpch/customer\n",
        "path: tpch/customer_batch2\n",
    );
    let report = lakehouse.report(&[
        "run",
        pipeline.to_str().unwrap(),
        "--job-id",
        "load-2",
        "--job",
        "bronze_customers",
        "--job",
        "silver_customers",
    ]);
    assert!(
        statuses(&report).values().all(|s| s == "committed"),
        "{report}"
    );

    // Bronze keeps the raw column under its snake_case name, trimmed; the
    // rows of the first load have none.
    assert_eq!(lakehouse.rows("bronze.customers"), customers + 10);
    assert_eq!(
        lakehouse.scalar(
            "SELECT COUNT(*) || ' ' || MIN(loyalty_tier) || ' ' || MAX(loyalty_tier) FROM bronze.customers WHERE loyalty_tier IS NOT NULL"
        ),
        "10 gold gold"
    );
    // Silver merges them on the key: still one row per customer, ten with a tier.
    assert_eq!(lakehouse.rows("silver.customers"), customers);
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(loyalty_tier) FROM silver.customers"),
        "10"
    );
    let read = pyiceberg(
        &[
            "sql",
            lakehouse.path().to_str().unwrap(),
            "--rows",
            "silver.customers",
            "customer_key, loyalty_tier",
        ],
        &[],
    )
    .unwrap();
    let rows = read.as_array().unwrap();
    assert_eq!(rows.len() as u64, customers);
    let with_tier = rows
        .iter()
        .filter(|r| r.as_str().unwrap().ends_with(",gold"))
        .count();
    assert_eq!(with_tier, 10, "PyIceberg reads the same silver rows");
}
