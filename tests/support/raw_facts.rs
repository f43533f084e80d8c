//! Facts about the reference pipeline's raw data, computed without
//! medallion (straight from the Parquet files), and the checks that the
//! committed tables hold exactly them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::Lakehouse;

pub const SCALE: &str = "0.1";

/// Every batch of every Parquet file in a folder.
pub fn read_parquet_dir(dir: &Path) -> Vec<RecordBatch> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    paths.sort();
    paths
        .iter()
        .flat_map(|p| {
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(p).unwrap())
                .unwrap()
                .build()
                .unwrap()
                .map(|b| b.unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The gold facts of the reference pipeline, from the raw files alone.
#[derive(Debug)]
pub struct Expected {
    pub orders: u64,
    pub customers: u64,
    pub customers_with_orders: u64,
    /// Sum of o_totalprice in cents.
    pub revenue_cents: i128,
    pub month_segments: u64,
}

pub fn expected_from_raw(lakehouse: &Lakehouse) -> Expected {
    let mut segment_of: HashMap<i64, String> = HashMap::new();
    for batch in read_parquet_dir(&lakehouse.raw_dir("customer")) {
        let keys = batch
            .column_by_name("c_custkey")
            .unwrap()
            .as_primitive::<Int64Type>();
        let segments = batch
            .column_by_name("c_mktsegment")
            .unwrap()
            .as_string::<i32>();
        for i in 0..batch.num_rows() {
            segment_of.insert(keys.value(i), segments.value(i).trim().to_string());
        }
    }
    let (mut orders, mut revenue_cents) = (0u64, 0i128);
    let mut buyers = HashSet::new();
    let mut month_segments = HashSet::new();
    for batch in read_parquet_dir(&lakehouse.raw_dir("orders")) {
        let customers = batch
            .column_by_name("o_custkey")
            .unwrap()
            .as_primitive::<Int64Type>();
        let prices = batch
            .column_by_name("o_totalprice")
            .unwrap()
            .as_primitive::<Decimal128Type>();
        let dates = batch
            .column_by_name("o_orderdate")
            .unwrap()
            .as_primitive::<Date32Type>();
        for i in 0..batch.num_rows() {
            orders += 1;
            revenue_cents += prices.value(i);
            buyers.insert(customers.value(i));
            let date = Date32Type::to_naive_date_opt(dates.value(i)).expect("valid date");
            let segment = segment_of
                .get(&customers.value(i))
                .expect("every order has a customer");
            month_segments.insert((chrono_month(date), segment.clone()));
        }
        assert_eq!(prices.null_count(), 0);
    }
    Expected {
        orders,
        customers: segment_of.len() as u64,
        customers_with_orders: buyers.len() as u64,
        revenue_cents,
        month_segments: month_segments.len() as u64,
    }
}

fn chrono_month(date: chrono::NaiveDate) -> (i32, u32) {
    use chrono::Datelike;
    (date.year(), date.month())
}

/// `123.45` -> 12345.
pub fn cents(decimal: &str) -> i128 {
    let (whole, fraction) = decimal.split_once('.').unwrap_or((decimal, "0"));
    let fraction = format!("{fraction:0<2}");
    let sign = if whole.starts_with('-') { -1 } else { 1 };
    whole.parse::<i128>().unwrap() * 100 + sign * fraction[..2].parse::<i128>().unwrap()
}

pub const TABLES: [&str; 7] = [
    "bronze.orders",
    "bronze.customers",
    "silver.customers",
    "silver.orders",
    "silver.dq_report",
    "gold.customer_metrics",
    "gold.sales_dashboard",
];

/// The tables of a demo run hold exactly what the raw data says.
pub fn assert_demo_tables(lakehouse: &Lakehouse, expected: &Expected) {
    assert_eq!(lakehouse.rows("bronze.orders"), expected.orders);
    assert_eq!(lakehouse.rows("bronze.customers"), expected.customers);
    assert_eq!(lakehouse.rows("silver.customers"), expected.customers);
    assert_eq!(lakehouse.rows("silver.orders"), expected.orders);
    assert_eq!(lakehouse.rows("silver.dq_report"), 5);
    assert_eq!(
        lakehouse.scalar("SELECT SUM(rejected_rows) FROM silver.dq_report"),
        "0"
    );
    assert_eq!(
        lakehouse.rows("gold.customer_metrics"),
        expected.customers_with_orders
    );
    assert_eq!(
        lakehouse.rows("gold.sales_dashboard"),
        expected.month_segments
    );
    let revenue = lakehouse.scalar("SELECT SUM(revenue) FROM gold.sales_dashboard");
    assert_eq!(cents(&revenue), expected.revenue_cents);
    let spend = lakehouse.scalar("SELECT SUM(total_spend) FROM gold.customer_metrics");
    assert_eq!(cents(&spend), expected.revenue_cents);
    assert_eq!(
        lakehouse.scalar("SELECT SUM(order_count) FROM gold.customer_metrics"),
        expected.orders.to_string()
    );
}
