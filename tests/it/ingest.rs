//! `medallion ingest` into an embedded lakehouse: rows checked against the
//! reference datasets, bad ones quarantined with their line and reason,
//! one Parquet object per upload, and `run --input` loading exactly it.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Lakehouse, assert_demo_tables, edit, expected_from_raw, read_parquet_dir};

const HEADER: &str = "o_orderkey,o_custkey,o_orderstatus,o_totalprice,o_orderdate,o_orderpriority,o_clerk,o_shippriority,o_comment";

/// Three good orders, a line with too few fields (line 3) and a status the
/// dataset's pattern refuses (line 5).
fn orders_csv() -> String {
    format!(
        "{HEADER}\n\
         1,10,F,12.50,1996-01-02,1-URGENT,Clerk#1,0,first\n\
         2,11,O,3.00\n\
         3,12,P,4.25,1996-01-04,2-HIGH,Clerk#2,0,\"a, quoted comment\"\n\
         4,13,X,5.00,1996-01-05,3-MEDIUM,Clerk#3,0,bad status\n\
         5,14,O,7.25,1996-01-06,5-LOW,Clerk#5,1,last\n"
    )
}

/// Writes `contents` as `name` in the lakehouse folder, outside the raw root.
fn upload(lakehouse: &Lakehouse, name: &str, contents: impl AsRef<[u8]>) -> String {
    let path = lakehouse.path().join("uploads").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_string()
}

fn ingest(lakehouse: &Lakehouse, pipeline: &Path, dataset: &str, source: &str) -> Value {
    let pipeline = pipeline.to_str().unwrap();
    lakehouse.report(&["ingest", dataset, source, "--pipeline", pipeline])
}

/// The landed key of an upload, relative to the raw root.
fn landed_key(report: &Value) -> String {
    let uri = report["object_keys"][0]
        .as_str()
        .expect("one object landed");
    let (_, key) = uri.split_once("/raw/").expect("under the raw root");
    key.to_string()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn a_malformed_line_and_a_broken_check_are_quarantined_and_bronze_loads_only_the_accepted_rows() {
    let lakehouse = Lakehouse::new();
    let pipeline = lakehouse.pipeline_copy();
    let source = upload(&lakehouse, "orders.csv", orders_csv());

    let report = ingest(&lakehouse, &pipeline, "orders", &source);
    assert_eq!(report["rows_in"], 5);
    assert_eq!(report["rows_accepted"], 3);
    assert_eq!(report["rows_quarantined"], 2);
    assert_eq!(report["event_published"], false, "no broker is configured");
    assert_eq!(
        report["event"]["rows_accepted"], 3,
        "the event is in the report"
    );
    let upload_id = report["upload_id"].as_str().unwrap();
    assert!(
        upload_id.starts_with("u-") && upload_id.len() == 26,
        "{upload_id}"
    );

    let quarantine = lakehouse
        .path()
        .join(format!("raw/_quarantine/orders/{upload_id}.ndjson"));
    let bad: Vec<Value> = std::fs::read_to_string(&quarantine)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0]["line"], 3);
    assert_eq!(bad[0]["reason"], "has 4 fields, the header has 9");
    assert_eq!(bad[0]["record"], "2,11,O,3.00");
    assert_eq!(bad[1]["line"], 5);
    assert!(
        bad[1]["reason"]
            .as_str()
            .unwrap()
            .contains("`o_orderstatus`: `X` does not match the pattern `^[FOP]$`"),
        "{}",
        bad[1]
    );
    assert_eq!(bad[1]["source"], source.as_str());

    let key = landed_key(&report);
    assert!(
        key.starts_with("orders/") && key.ends_with(&format!("{upload_id}.parquet")),
        "{key}"
    );
    let input = format!("raw_orders={key}");
    let pipeline = pipeline.to_str().unwrap();
    let run = lakehouse.report(&["run", pipeline, "--job", "bronze_orders", "--input", &input]);
    assert_eq!(run["jobs"][0]["rows_written"], 3, "{run}");
    assert_eq!(
        lakehouse.scalar("SELECT string_agg(CAST(order_key AS VARCHAR), ',' ORDER BY order_key) FROM bronze.orders"),
        "1,3,5",
        "bronze never sees the bad rows"
    );
    assert_eq!(
        lakehouse.scalar("SELECT comment FROM bronze.orders WHERE order_key = 3"),
        "a, quoted comment"
    );
}

#[test]
fn a_reject_file_dataset_refuses_the_whole_file_naming_its_first_bad_line_and_writes_nothing() {
    let lakehouse = Lakehouse::new();
    let pipeline = lakehouse.pipeline_copy();
    edit(
        &pipeline.join("datasets/orders.yaml"),
        "on_bad_row: quarantine",
        "on_bad_row: reject_file",
    );
    let source = upload(&lakehouse, "orders.csv", orders_csv());
    let pipeline = pipeline.to_str().unwrap();

    let error = lakehouse.fails(&["ingest", "orders", &source, "--pipeline", pipeline]);
    assert!(
        error.contains(&format!("{source}:3: has 4 fields")),
        "{error}"
    );
    assert!(error.contains("nothing was written"), "{error}");
    let raw = lakehouse.path().join("raw");
    assert_eq!(
        files_under(&raw),
        Vec::<PathBuf>::new(),
        "no object, no quarantine, no marker"
    );
}

#[test]
fn a_quote_never_closed_refuses_the_file_naming_its_line_instead_of_swallowing_the_rest() {
    let lakehouse = Lakehouse::new();
    let pipeline = lakehouse.pipeline_copy();
    // In the last column: the rows after it would have been one comment.
    let csv = format!(
        "{HEADER}\n\
         1,10,F,12.50,1996-01-02,1-URGENT,Clerk#1,0,first\n\
         2,11,O,3.00,1996-01-03,2-HIGH,Clerk#2,0,\"never closed\n\
         3,12,P,4.25,1996-01-04,2-HIGH,Clerk#3,0,third\n\
         4,13,O,5.00,1996-01-05,3-MEDIUM,Clerk#4,0,fourth\n"
    );
    let source = upload(&lakehouse, "orders.csv", csv);
    let pipeline = pipeline.to_str().unwrap();

    let error = lakehouse.fails(&["ingest", "orders", &source, "--pipeline", pipeline]);
    assert!(
        error.contains("line 3: a quoted field opens here and is never closed"),
        "{error}"
    );
    let raw = lakehouse.path().join("raw");
    assert_eq!(files_under(&raw), Vec::<PathBuf>::new(), "nothing landed");
}

#[test]
fn the_same_bytes_ingested_twice_are_one_upload_and_load_bronze_once() {
    let lakehouse = Lakehouse::new();
    let pipeline = lakehouse.pipeline_copy();
    let source = upload(&lakehouse, "orders.csv", orders_csv());
    let first = ingest(&lakehouse, &pipeline, "orders", &source);
    let again = lakehouse.ok(&[
        "ingest",
        "orders",
        &source,
        "--pipeline",
        pipeline.to_str().unwrap(),
    ]);
    let upload_id = first["upload_id"].as_str().unwrap();
    assert!(
        again.contains(&format!(
            "already ingested as upload {upload_id}; nothing written"
        )),
        "{again}"
    );
    let raw = lakehouse.path().join("raw");
    assert_eq!(files_under(&raw.join("orders")).len(), 1, "one raw object");
    assert_eq!(files_under(&raw.join("_uploads")).len(), 1, "one marker");
    assert_eq!(files_under(&raw.join("_staging")), Vec::<PathBuf>::new());

    let input = format!("raw_orders={}", landed_key(&first));
    let pipeline = pipeline.to_str().unwrap();
    for _ in 0..2 {
        lakehouse.ok(&[
            "run",
            pipeline,
            "--job",
            "bronze_orders",
            "--input",
            &input,
            "--job-id",
            upload_id,
        ]);
    }
    assert_eq!(
        lakehouse.rows("bronze.orders"),
        3,
        "a run fed twice with one job id loads once"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The rows of a landed upload, printed.
fn landed_rows(lakehouse: &Lakehouse, report: &Value) -> String {
    let path = lakehouse.path().join("raw").join(landed_key(report));
    let batches = read_parquet_dir(path.parent().unwrap())
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .collect::<Vec<_>>();
    assert_eq!(
        files_under(path.parent().unwrap()).len(),
        1,
        "one upload in its folder"
    );
    arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string()
}

#[test]
fn ndjson_a_json_array_parquet_and_compressed_csv_sources_give_the_same_rows() {
    // The accepted rows of `orders_csv`, nothing to quarantine.
    let csv: String = orders_csv()
        .lines()
        .filter(|l| !l.contains("3.00") && !l.contains(",X,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let objects = [
        r#"{"o_orderkey": 1, "o_custkey": 10, "o_orderstatus": "F", "o_totalprice": 12.50, "o_orderdate": "1996-01-02", "o_orderpriority": "1-URGENT", "o_clerk": "Clerk#1", "o_shippriority": 0, "o_comment": "first"}"#,
        r#"{"o_orderkey": 3, "o_custkey": 12, "o_orderstatus": "P", "o_totalprice": "4.25", "o_orderdate": "1996-01-04", "o_orderpriority": "2-HIGH", "o_clerk": "Clerk#2", "o_shippriority": 0, "o_comment": "a, quoted comment"}"#,
        r#"{"o_orderkey": 5, "o_custkey": 14, "o_orderstatus": "O", "o_totalprice": 7.25, "o_orderdate": "1996-01-06", "o_orderpriority": "5-LOW", "o_clerk": "Clerk#5", "o_shippriority": 1, "o_comment": "last"}"#,
    ];
    let sources: Vec<(&str, Vec<u8>)> = vec![
        ("orders.ndjson", (objects.join("\n") + "\n").into_bytes()),
        (
            "orders.json",
            format!("[\n  {}\n]\n", objects.join(",\n  ")).into_bytes(),
        ),
        ("orders.csv.gz", gzip(csv.as_bytes())),
        (
            "orders.csv.zst",
            zstd::encode_all(csv.as_bytes(), 3).unwrap(),
        ),
    ];
    let plain = Lakehouse::new();
    let pipeline = plain.pipeline_copy();
    let from_csv = ingest(
        &plain,
        &pipeline,
        "orders",
        &upload(&plain, "orders.csv", &csv),
    );
    let expected = landed_rows(&plain, &from_csv);
    assert!(
        expected.contains("a, quoted comment") && expected.contains("12.50"),
        "{expected}"
    );
    let landed_parquet = plain.path().join("raw").join(landed_key(&from_csv));
    let parquet = std::fs::read(landed_parquet).unwrap();

    for (name, bytes) in sources
        .iter()
        .map(|(n, b)| (*n, b.clone()))
        .chain([("orders.parquet", parquet)])
    {
        let lakehouse = Lakehouse::new();
        let report = ingest(
            &lakehouse,
            &pipeline,
            "orders",
            &upload(&lakehouse, name, bytes),
        );
        assert_eq!(report["rows_accepted"], 3, "{name}: {report}");
        assert_eq!(landed_rows(&lakehouse, &report), expected, "{name}");
    }
}

/// Every raw TPC-H Parquet file of `table` written as one CSV file.
fn as_csv(lakehouse: &Lakehouse, table: &str) -> String {
    let path = lakehouse
        .path()
        .join("uploads")
        .join(format!("{table}.csv"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut writer = arrow::csv::WriterBuilder::new()
        .with_header(true)
        .build(std::fs::File::create(&path).unwrap());
    for batch in read_parquet_dir(&lakehouse.raw_dir(table)) {
        writer.write(&batch).unwrap();
    }
    path.to_str().unwrap().to_string()
}

#[test]
fn uploads_of_the_generated_data_as_csv_give_the_gold_of_the_demo() {
    let lakehouse = Lakehouse::new();
    lakehouse.ok(&["generate", "--scale", "0.01"]);
    let expected = expected_from_raw(&lakehouse);
    let pipeline = lakehouse.pipeline_copy();
    let orders = ingest(
        &lakehouse,
        &pipeline,
        "orders",
        &as_csv(&lakehouse, "orders"),
    );
    let customers = ingest(
        &lakehouse,
        &pipeline,
        "customer",
        &as_csv(&lakehouse, "customer"),
    );
    assert_eq!(orders["rows_quarantined"], 0, "{orders}");
    assert_eq!(orders["rows_accepted"], expected.orders);
    assert_eq!(customers["rows_accepted"], expected.customers);

    let pipeline = pipeline.to_str().unwrap();
    let orders_input = format!("raw_orders={}", landed_key(&orders));
    let customers_input = format!("raw_customers={}", landed_key(&customers));
    lakehouse.ok(&[
        "run",
        pipeline,
        "--input",
        &orders_input,
        "--input",
        &customers_input,
    ]);
    assert_demo_tables(&lakehouse, &expected);
}

#[test]
fn an_input_that_names_no_raw_input_is_refused_with_the_names_there_are() {
    let lakehouse = Lakehouse::new();
    let pipeline = lakehouse.pipeline_copy();
    let error = lakehouse.fails(&[
        "run",
        pipeline.to_str().unwrap(),
        "--input",
        "raw_ordres=x.parquet",
    ]);
    assert!(
        error.contains("--input raw_ordres: no job of this run has a raw input of that name"),
        "{error}"
    );
    assert!(error.contains("raw_orders"), "{error}");
}

#[test]
fn a_run_fed_one_upload_skips_the_jobs_of_the_other_raw_inputs() {
    let lakehouse = Lakehouse::new();
    lakehouse.ok(&["demo", "--scale", "0.01"]);
    let customers_before = lakehouse.snapshots()["bronze.customers"].clone();
    let orders_before = lakehouse.rows("bronze.orders");
    let pipeline = lakehouse.pipeline_copy();
    let report = ingest(
        &lakehouse,
        &pipeline,
        "orders",
        &upload(&lakehouse, "orders.csv", orders_csv()),
    );

    let input = format!("raw_orders={}", landed_key(&report));
    let run = lakehouse.report(&["run", pipeline.to_str().unwrap(), "--input", &input]);
    let jobs: Vec<&str> = run["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job"].as_str().unwrap())
        .collect();
    assert!(!jobs.contains(&"bronze_customers"), "{jobs:?}");
    assert!(
        jobs.contains(&"bronze_orders") && jobs.contains(&"gold_sales_dashboard"),
        "{jobs:?}"
    );
    assert_eq!(
        lakehouse.rows("bronze.orders"),
        orders_before + 3,
        "only the upload's rows are loaded"
    );
    assert_eq!(lakehouse.snapshots()["bronze.customers"], customers_before);
}
