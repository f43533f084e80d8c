//! Running the binary against a throw-away lakehouse, and facts about the
//! raw data computed without medallion (straight from the Parquet files).
//! Shared by the test binaries; each uses part of it.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

pub const SCALE: &str = "0.1";

pub struct Lakehouse {
    pub dir: tempfile::TempDir,
    /// Global flags and environment for every command (a remote catalog, S3).
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Lakehouse {
    /// An embedded lakehouse in a fresh folder.
    pub fn new() -> Self {
        Self::with(Vec::new(), Vec::new())
    }

    /// A lakehouse whose commands all get `args` and `env`.
    pub fn with(args: Vec<String>, env: Vec<(String, String)>) -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
            args,
            env,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `medallion --lakehouse <dir> --quiet <args>`, with this lakehouse's
    /// flags and environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_medallion"));
        command
            .arg("--lakehouse")
            .arg(self.path())
            .arg("--quiet")
            .args(&self.args)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("MEDALLION_CONFIG")
            .env("RUST_LOG", "warn");
        command
    }

    /// Runs `medallion --lakehouse <dir> --quiet <args>`.
    pub fn medallion(&self, args: &[&str]) -> Output {
        self.command(args)
            .output()
            .expect("the medallion binary runs")
    }

    /// Starts `medallion --lakehouse <dir> --quiet <args>` in the
    /// background, its output captured.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the medallion binary starts")
    }

    /// Runs a command that must succeed and returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.medallion(args);
        assert!(
            out.status.success(),
            "medallion {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 output")
    }

    /// Runs a command that must fail; returns its stderr, which must be one
    /// `error:` line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.medallion(args);
        assert!(
            !out.status.success(),
            "medallion {args:?} should fail; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        error_line(&out)
    }

    /// The JSON run report of a pipeline command (`--json`).
    pub fn report(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("a JSON report")
    }

    /// One scalar from `medallion sql`.
    pub fn scalar(&self, query: &str) -> String {
        let out = self.ok(&["sql", "--format", "csv", query]);
        let mut lines = out.lines();
        lines.next().expect("a csv header");
        lines
            .next()
            .expect("a csv row")
            .trim()
            .trim_matches('"')
            .to_string()
    }

    pub fn rows(&self, table: &str) -> u64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .parse()
            .expect("a count")
    }

    /// Current snapshot id of every table (from `medallion tables --json`).
    pub fn snapshots(&self) -> HashMap<String, String> {
        let tables: Value = serde_json::from_str(&self.ok(&["tables", "--json"])).expect("json");
        tables
            .as_array()
            .expect("array")
            .iter()
            .map(|t| {
                (
                    t["table"].as_str().unwrap().to_string(),
                    t["snapshot_id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn raw_dir(&self, table: &str) -> PathBuf {
        self.path().join("raw").join("tpch").join(table)
    }

    /// Writes a job spec file into the lakehouse folder and returns its
    /// path: small jobs (`SELECT 1 AS x`) run and validate without data.
    pub fn spec(&self, file: &str, yaml: &str) -> PathBuf {
        let path = self.path().join(file);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    /// A copy of the reference pipeline the test may edit.
    pub fn pipeline_copy(&self) -> PathBuf {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs/reference");
        let target = self.path().join("pipeline");
        copy_dir(&source, &target);
        target
    }

    /// Writes `raw/<path>` (folders created), the raw root of every run.
    pub fn raw_file(&self, path: &str, contents: impl AsRef<[u8]>) {
        let path = self.path().join("raw").join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    /// Writes a job spec with one bronze step: the raw folder `folder` in
    /// `format` into `bronze.<table>`, with these YAML `columns` entries
    /// (`{ name: id, from: id, type: int64 }`).
    pub fn bronze_spec(&self, table: &str, format: &str, folder: &str, columns: &[&str]) -> String {
        let columns: String = columns.iter().map(|c| format!("        - {c}\n")).collect();
        let spec = format!(
            "name: bronze_{table}
inputs:
  - {{ name: raw, path: {folder}, format: {format} }}
steps:
  - bronze:
      from: raw
      columns:
{columns}target: {{ table: bronze.{table}, mode: append }}
"
        );
        let path = self.path().join(format!("{table}.yaml"));
        std::fs::write(&path, spec).unwrap();
        path.to_str().unwrap().to_string()
    }
}

/// Replaces `from` by `to` in a file; the text must be there, so a changed
/// reference pipeline breaks the test instead of silently testing nothing.
pub fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replace(from, to)).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The one `error:` line a failed command printed.
pub fn error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "expected one error line, got: {stderr}");
    errors[0].to_string()
}

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

/// The status of each table in a run report.
pub fn statuses(report: &Value) -> HashMap<String, String> {
    report["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            (
                j["table"].as_str().unwrap().to_string(),
                j["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
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

/// Runs `tests/interop/read_tables.py` (PyIceberg) and returns its JSON.
pub fn pyiceberg(args: &[&str], env: &[(String, String)]) -> Option<Value> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/interop/read_tables.py"
    );
    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "PyIceberg failed (pip install -r tests/requirements.txt):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).ok()
}

/// What PyIceberg read must match the raw data.
pub fn assert_pyiceberg_read(facts: &Value, expected: &Expected) {
    assert_eq!(facts["bronze.orders"]["rows"], expected.orders, "{facts}");
    assert_eq!(
        facts["bronze.customers"]["rows"], expected.customers,
        "{facts}"
    );
    assert_eq!(facts["silver.orders"]["rows"], expected.orders, "{facts}");
    assert_eq!(
        facts["silver.customers"]["rows"], expected.customers,
        "{facts}"
    );
    assert_eq!(facts["silver.dq_report"]["rows"], 5, "{facts}");
    assert_eq!(
        facts["gold.customer_metrics"]["rows"], expected.customers_with_orders,
        "{facts}"
    );
    assert_eq!(
        facts["gold.sales_dashboard"]["rows"], expected.month_segments,
        "{facts}"
    );
    assert_eq!(
        cents(
            facts["gold.customer_metrics"]["total_spend"]
                .as_str()
                .unwrap()
        ),
        expected.revenue_cents
    );
    assert_eq!(
        cents(facts["gold.sales_dashboard"]["revenue"].as_str().unwrap()),
        expected.revenue_cents
    );
    assert_eq!(
        cents(facts["silver.orders"]["total_price"].as_str().unwrap()),
        expected.revenue_cents
    );
    assert_eq!(
        facts["gold.customer_metrics"]["order_count"],
        expected.orders
    );
}

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

/// Every Parquet file below `dir`, sorted.
pub fn parquet_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(parquet_files_under(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            found.push(path);
        }
    }
    found.sort();
    found
}
