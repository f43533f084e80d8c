use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;

use crate::support::{Lakehouse, SCALE, edit};

/// A lakehouse after one demo run, and an editable copy of its pipeline.
fn prepared() -> (Lakehouse, PathBuf) {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let pipeline = lakehouse.pipeline_copy();
    (lakehouse, pipeline)
}

/// Runs one job of the pipeline, which must fail; returns the error line.
fn run_job_fails(lakehouse: &Lakehouse, pipeline: &std::path::Path, job: &str) -> String {
    lakehouse.fails(&[
        "run",
        pipeline.to_str().unwrap(),
        "--job",
        job,
        "--job-id",
        "x",
    ])
}

#[test]
fn a_missing_raw_path_is_named_and_changes_nothing() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    edit(
        &pipeline.join("bronze/orders.yaml"),
        "path: tpch/orders",
        "path: tpch/no_such_orders",
    );
    let error = run_job_fails(&lakehouse, &pipeline, "bronze_orders");
    assert!(
        error.contains("no .parquet files at") && error.contains("tpch/no_such_orders"),
        "{error}"
    );
    assert_eq!(lakehouse.snapshots(), before);
}

#[test]
fn a_corrupt_parquet_file_is_named_and_changes_nothing() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    let corrupt = lakehouse.raw_dir("orders").join("part-9.parquet");
    std::fs::write(&corrupt, b"PAR1 this is not parquet at all").unwrap();
    let error = run_job_fails(&lakehouse, &pipeline, "bronze_orders");
    assert!(
        error.contains("part-9.parquet") && error.contains("bronze_orders"),
        "{error}"
    );
    assert_eq!(lakehouse.snapshots(), before);
    assert_eq!(lakehouse.rows("bronze.orders"), 150_000);
}

#[test]
fn an_unknown_column_in_a_spec_is_named_and_changes_nothing() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    edit(
        &pipeline.join("bronze/customers.yaml"),
        "from: c_phone,",
        "from: c_phone_number,",
    );
    let error = run_job_fails(&lakehouse, &pipeline, "bronze_customers");
    assert!(
        error.contains("c_phone_number") && error.contains("customers.yaml"),
        "{error}"
    );
    assert!(
        error.contains("c_phone,"),
        "the error lists the columns there are: {error}"
    );
    assert_eq!(lakehouse.snapshots(), before);
}

#[test]
fn a_value_that_does_not_cast_fails_the_job_without_a_commit() {
    let (lakehouse, pipeline) = prepared();
    let before = lakehouse.snapshots();
    // Order status letters ('F', 'O', 'P') are not integers; a new table
    // would take the typed rows.
    let spec = pipeline.join("bronze/orders.yaml");
    edit(
        &spec,
        "from: o_orderstatus,   type: string",
        "from: o_orderstatus,   type: int32",
    );
    edit(&spec, "table: bronze.orders", "table: bronze.orders_typed");
    let error = run_job_fails(&lakehouse, &pipeline, "bronze_orders");
    assert!(
        error.contains("bronze_orders") && error.to_lowercase().contains("cast"),
        "{error}"
    );
    assert_eq!(
        lakehouse.snapshots(),
        before,
        "no table appeared or changed"
    );
    // The failed write left no data files behind.
    let data = lakehouse.path().join("warehouse/bronze/orders_typed/data");
    let leftovers: Vec<_> = std::fs::read_dir(&data)
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// One job, `gold_x`, writing one row (x = 1) to gold.x without raw data.
const SMALL_JOB: &str =
    "name: gold_x\nsteps:\n  - sql: SELECT 1 AS x\ntarget: { table: gold.x, mode: overwrite }\n";

/// A lakehouse holding gold.x, and the spec that wrote it.
fn small_table() -> (Lakehouse, String) {
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec("x.yaml", SMALL_JOB);
    let spec = spec.to_str().unwrap().to_string();
    lakehouse.ok(&["run", &spec, "--job-id", "x-1"]);
    (lakehouse, spec)
}

#[test]
fn sql_refuses_statements_that_are_not_queries_and_names_the_command_to_use() {
    let (lakehouse, _) = small_table();
    let copied = lakehouse.path().join("copied.csv");
    let copy = format!("COPY (SELECT 1 AS x) TO '{}'", copied.display());
    for (statement, says) in [
        ("DROP TABLE gold.x", "no drop command"),
        ("DELETE FROM gold.x WHERE x = 1", "medallion delete"),
        ("INSERT INTO gold.x VALUES (2)", "medallion run"),
        ("CREATE TABLE y AS SELECT 1 AS x", "medallion run"),
        (copy.as_str(), "medallion run"),
        ("SET datafusion.execution.batch_size = 1", "queries only"),
    ] {
        let error = lakehouse.fails(&["sql", statement]);
        let first_word = statement.split(' ').next().unwrap();
        assert!(
            error.contains(first_word) && error.contains(says),
            "{statement}: {error}"
        );
    }
    assert!(!copied.exists(), "COPY wrote {}", copied.display());
    assert_eq!(lakehouse.rows("gold.x"), 1);
}

#[test]
fn sql_still_answers_queries_explain_and_describe() {
    let (lakehouse, _) = small_table();
    for query in [
        "SELECT x FROM gold.x",
        "WITH t AS (SELECT x FROM gold.x) SELECT * FROM t",
        "VALUES (1), (2)",
        "EXPLAIN SELECT x FROM gold.x",
        "DESCRIBE gold.x",
        "SHOW TABLES",
    ] {
        lakehouse.ok(&["sql", query]);
    }
}

#[test]
fn a_job_step_that_copies_is_refused_and_writes_nothing() {
    let lakehouse = Lakehouse::new();
    let copied = lakehouse.path().join("copied.csv");
    let spec = lakehouse.spec(
        "copy.yaml",
        &format!(
            "name: gold_copy\nsteps:\n  - sql: \"COPY (SELECT 1 AS x) TO '{}'\"\ntarget: {{ table: gold.copy, mode: overwrite }}\n",
            copied.display()
        ),
    );
    let spec = spec.to_str().unwrap();
    for command in [&["validate", spec][..], &["run", spec, "--job-id", "c-1"]] {
        let error = lakehouse.fails(command);
        assert!(
            error.contains("gold_copy") && error.contains("COPY") && error.contains("not a query"),
            "{command:?}: {error}"
        );
    }
    assert!(!copied.exists(), "the step wrote {}", copied.display());
    assert!(lakehouse.ok(&["tables"]).contains("no tables yet"));
}

#[test]
fn job_ids_are_checked_on_every_command_that_takes_one() {
    let (lakehouse, spec) = small_table();
    let too_long = "x".repeat(129);
    let commands: [&[&str]; 5] = [
        &["run", &spec],
        &["demo", "--scale", "0.001"],
        &["delete", "gold.x", "--where", "x = 2"],
        &["compact", "gold.x"],
        &["rewrite-manifests", "gold.x"],
    ];
    for command in commands {
        for bad in ["", "load 2", "a/b", too_long.as_str()] {
            let mut args = command.to_vec();
            args.extend(["--job-id", bad]);
            let error = lakehouse.fails(&args);
            assert!(
                error.contains("--job-id") && error.contains("A-Za-z0-9._:-"),
                "{args:?}: {error}"
            );
        }
    }
    let longest = "y".repeat(128);
    for good in [
        "2026-11-29T12:00:00Z",
        "load-2",
        "demo-sf0.1",
        longest.as_str(),
    ] {
        lakehouse.ok(&["run", &spec, "--job-id", good]);
    }
    assert_eq!(lakehouse.rows("gold.x"), 1);
}

/// A Parquet file whose two columns are both called `o_orderkey`.
fn parquet_with_a_repeated_column(path: &Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("o_orderkey", DataType::Int64, false),
        Field::new("o_orderkey", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2])),
            Arc::new(Int64Array::from(vec![10, 20])),
        ],
    )
    .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut writer =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn a_raw_file_that_names_a_column_twice_is_refused_naming_file_and_column() {
    let lakehouse = Lakehouse::new();
    parquet_with_a_repeated_column(&lakehouse.path().join("raw/pq/twice.parquet"));
    lakehouse.raw_file("csv/twice.csv", "id,city,id\n1,Oslo,2\n");
    let key = ["{ name: key, from: o_orderkey, type: int64 }"];
    let parquet = lakehouse.bronze_spec("pq", "parquet", "pq", &key);
    let csv = lakehouse.bronze_spec(
        "csv",
        "csv",
        "csv",
        &["{ name: id, from: id, type: int64 }"],
    );

    for (spec, file, column) in [
        (parquet, "twice.parquet", "o_orderkey"),
        (csv, "twice.csv", "id"),
    ] {
        let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
        assert!(
            error.contains(file)
                && error.contains(&format!("two columns named `{column}`"))
                && error.contains("fix the file"),
            "{error}"
        );
    }
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn a_raw_value_its_column_type_cannot_hold_exactly_fails_naming_file_column_and_value() {
    let lakehouse = Lakehouse::new();
    // (CSV, declared type, the value the error names)
    let cases = [
        ("qty\n2\n1.9\n", "int64", "1.9"),
        ("qty\n2\n3000000000\n", "int32", "3000000000"),
        ("qty\n1.5\n1.234\n", "\"decimal(10,2)\"", "1.234"),
        (
            "qty\n2026-01-31 00:00:00\n2026-01-31 10:30:00\n",
            "date",
            "2026-01-31T10:30:00",
        ),
    ];
    for (index, (csv, data_type, value)) in cases.into_iter().enumerate() {
        let folder = format!("case{index}");
        lakehouse.raw_file(&format!("{folder}/values.csv"), csv);
        let column = format!("{{ name: amount, from: qty, type: {data_type} }}");
        let spec = lakehouse.bronze_spec(&folder, "csv", &folder, &[column.as_str()]);
        let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
        assert!(
            error.contains(&format!("{folder}/values.csv"))
                && error.contains("raw column `qty`")
                && error.contains(value),
            "{data_type}: {error}"
        );
    }
    // Text that is not a number would become null.
    lakehouse.raw_file(
        "text/values.json",
        "{\"qty\": \"12\"}\n{\"qty\": \"twelve\"}\n",
    );
    let spec = lakehouse.bronze_spec(
        "text",
        "json",
        "text",
        &["{ name: amount, from: qty, type: int64 }"],
    );
    let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
    assert!(
        error.contains("text/values.json") && error.contains("'twelve'"),
        "{error}"
    );
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn cast_lossy_lets_a_column_drop_what_its_type_cannot_hold() {
    let lakehouse = Lakehouse::new();
    lakehouse.raw_file("qty/values.csv", "qty,price\n1.9,1.235\n");
    let spec = lakehouse.bronze_spec(
        "qty",
        "csv",
        "qty",
        &[
            "{ name: qty, from: qty, type: int64, cast: lossy }",
            "{ name: price, from: price, type: \"decimal(10,2)\", cast: lossy }",
        ],
    );
    lakehouse.ok(&["run", &spec, "--job-id", "x"]);
    assert_eq!(
        lakehouse
            .scalar("SELECT CAST(qty AS VARCHAR) || ' ' || CAST(price AS VARCHAR) FROM bronze.qty"),
        "1 1.24"
    );
}

/// A Parquet file of `rows` rows in snappy-compressed pages, with 4 KiB
/// in its middle flipped: its footer reads, its pages do not.
fn parquet_corrupt_mid_file(path: &Path, rows: i64) {
    let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, false)]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from_iter_values(
            (0..rows).map(|i| i * 7919 % 1_000_003),
        ))],
    )
    .unwrap();
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_max_row_group_row_count(Some(50_000))
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 4096] {
        *byte ^= 0x5a;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_parquet_file_corrupt_in_its_middle_is_named_and_changes_nothing() {
    let lakehouse = Lakehouse::new();
    parquet_corrupt_mid_file(&lakehouse.path().join("raw/pq/flipped.parquet"), 200_000);
    let spec = lakehouse.bronze_spec(
        "pq",
        "parquet",
        "pq",
        &["{ name: a, from: a, type: int64 }"],
    );
    let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
    assert!(
        error.contains("cannot read raw file") && error.contains("pq/flipped.parquet"),
        "{error}"
    );
    assert!(lakehouse.snapshots().is_empty());
}

/// A Parquet file of columns `a`, `b` and `c` whose first row group has
/// the middle of `b`'s pages flipped (found from the footer).
fn parquet_with_one_corrupt_column(path: &Path) {
    let column = |seed: i64| -> Arc<dyn arrow::array::Array> {
        Arc::new(Int64Array::from_iter_values(
            (0..200_000).map(|i| i * seed % 1_000_003),
        ))
    };
    let schema = Arc::new(Schema::new(
        ["a", "b", "c"]
            .map(|name| Field::new(name, DataType::Int64, false))
            .to_vec(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![column(7919), column(104_729), column(31)],
    )
    .unwrap();
    let properties = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let footer = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(bytes.clone()))
        .unwrap();
    let (start, length) = footer.row_group(0).column(1).byte_range();
    let (start, length) = (start as usize, length as usize);
    for byte in &mut bytes[start + length / 4..start + length * 3 / 4] {
        *byte ^= 0x5a;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_parquet_file_with_one_corrupt_column_names_the_file_and_that_column() {
    let lakehouse = Lakehouse::new();
    parquet_with_one_corrupt_column(&lakehouse.path().join("raw/pq/flipped.parquet"));
    let spec = lakehouse.bronze_spec(
        "pq",
        "parquet",
        "pq",
        &[
            "{ name: a, from: a, type: int64 }",
            "{ name: b, from: b, type: int64 }",
            "{ name: c, from: c, type: int64 }",
        ],
    );
    let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
    assert!(
        error.contains("cannot read raw file")
            && error.contains("pq/flipped.parquet")
            && error.contains("column b does not decode")
            && error.contains("replace the file"),
        "{error}"
    );
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn a_csv_value_that_does_not_parse_after_the_first_thousand_rows_names_file_line_and_value() {
    let lakehouse = Lakehouse::new();
    let mut csv = String::from("id,qty\n");
    for row in 1..=1500 {
        csv.push_str(&format!("{row},{row}\n"));
    }
    csv.push_str("1501,many\n");
    lakehouse.raw_file("big/values.csv", csv);
    let spec = lakehouse.bronze_spec(
        "big",
        "csv",
        "big",
        &[
            "{ name: id, from: id, type: int64 }",
            "{ name: qty, from: qty, type: int64 }",
        ],
    );
    let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
    assert!(
        error.contains("big/values.csv line 1502: column qty: cannot parse \"many\" as int64"),
        "{error}"
    );
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn a_csv_value_that_does_not_parse_is_named_by_the_files_line_its_column_and_declared_type() {
    let lakehouse = Lakehouse::new();
    // The column reads as dates (each value looks like one), and the
    // fourth has no such day.
    lakehouse.raw_file(
        "days/orders.csv",
        "o_orderkey,o_orderdate\n1,2026-01-31\n2,2026-02-01\n3,2026-02-28\n4,2026-02-30\n5,2026-03-01\n",
    );
    let spec = lakehouse.bronze_spec(
        "days",
        "csv",
        "days",
        &[
            "{ name: key, from: o_orderkey, type: int64 }",
            "{ name: day, from: o_orderdate, type: date }",
        ],
    );
    let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
    assert!(
        error.contains(
            "days/orders.csv line 5: column o_orderdate: cannot parse \"2026-02-30\" as date; fix the value"
        ) && !error.contains("Date32"),
        "{error}"
    );
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn a_csv_timestamp_that_does_not_parse_is_named_by_the_files_line_its_column_and_declared_type() {
    let lakehouse = Lakehouse::new();
    lakehouse.raw_file(
        "times/events.csv",
        "id,at\n1,2026-01-31 10:00:00\n2,2026-02-01 11:00:00\n3,2026-02-30 12:00:00\n",
    );
    let spec = lakehouse.bronze_spec(
        "times",
        "csv",
        "times",
        &["{ name: at, from: at, type: timestamp }"],
    );
    let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
    assert!(
        error.contains("times/events.csv line 4: column at: cannot parse a value (Error parsing timestamp from '2026-02-30 12:00:00'")
            && error.contains(") as timestamp; fix the value"),
        "{error}"
    );
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn a_csv_value_that_does_not_parse_far_into_a_file_read_in_byte_ranges_is_named_by_the_files_line()
{
    let lakehouse = Lakehouse::new();
    // Over 10 MB, DataFusion reads the file in byte ranges, one per
    // partition, and Arrow counts rows from each range's start.
    let mut csv = String::from("id,qty\n");
    for row in 1..=900_000 {
        let qty = if row == 850_000 {
            "many".to_string()
        } else {
            row.to_string()
        };
        csv.push_str(&format!("{row},{qty}\n"));
    }
    assert!(csv.len() > 10 * 1024 * 1024, "{} bytes", csv.len());
    lakehouse.raw_file("huge/values.csv", csv);
    let spec = lakehouse.bronze_spec(
        "huge",
        "csv",
        "huge",
        &["{ name: qty, from: qty, type: int64 }"],
    );
    let out = lakehouse
        .command(&["run", &spec, "--job-id", "x"])
        .env("MEDALLION_TARGET_PARTITIONS", "4")
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && error.contains(
                "huge/values.csv line 850001: column qty: cannot parse \"many\" as int64"
            ),
        "{error}"
    );
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn an_ndjson_line_that_is_not_json_is_named_by_its_own_line_and_column() {
    let lakehouse = Lakehouse::new();
    lakehouse.raw_file("nd/values.json", "{\"a\": 1}\n\n{\"a\": 2,,}\n");
    let spec = lakehouse.bronze_spec("nd", "json", "nd", &["{ name: a, from: a, type: int64 }"]);
    let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
    assert!(
        error.contains("nd/values.json") && error.contains("line 3 column 9"),
        "{error}"
    );
    assert!(!error.contains("line 1 "), "{error}");
}

#[test]
fn a_column_without_a_type_is_named_with_what_to_do() {
    let lakehouse = Lakehouse::new();
    lakehouse.raw_file("header/values.csv", "a,b\n");
    lakehouse.raw_file("nulls/values.json", "{\"a\": 1, \"b\": null}\n");
    let column = ["{ name: a, from: a, type: int64 }"];
    for (table, format) in [("header", "csv"), ("nulls", "json")] {
        let spec = lakehouse.bronze_spec(table, format, table, &column);
        let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
        assert!(
            error.contains(&format!(
                "column `b` of the output for table bronze.{table}"
            )) && error.contains("has no type")
                && error.contains("declare its type")
                && !error.contains("Cannot visit"),
            "{format}: {error}"
        );
    }
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn text_that_is_no_decimal_names_file_column_and_the_declared_type() {
    let lakehouse = Lakehouse::new();
    lakehouse.raw_file("dec/values.csv", "qty\n1.5\nabc\n");
    let spec = lakehouse.bronze_spec(
        "dec",
        "csv",
        "dec",
        &["{ name: amount, from: qty, type: \"decimal(12,3)\" }"],
    );
    let error = lakehouse.fails(&["run", &spec, "--job-id", "x"]);
    assert!(
        error.contains("dec/values.csv")
            && error.contains("raw column `qty`")
            && error.contains("'abc'")
            && error.contains("decimal(12,3)")
            && !error.contains("Decimal128"),
        "{error}"
    );
}

#[test]
fn an_unknown_key_of_a_table_input_is_named_with_its_line() {
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec(
        "typo.yaml",
        "name: j\ninputs:\n  - table: bronze.orders\n    reed: new_rows\nsteps:\n  - sql: SELECT 1 AS x\ntarget: { table: gold.x, mode: overwrite }\n",
    );
    let error = lakehouse.fails(&["validate", spec.to_str().unwrap()]);
    assert!(
        error.contains("typo.yaml: line 4 column 5")
            && error.contains("`reed`")
            && error.contains("`read`")
            && !error.contains("untagged"),
        "{error}"
    );
}

#[test]
fn a_partition_transform_a_column_type_does_not_take_names_the_column() {
    let lakehouse = Lakehouse::new();
    let spec = lakehouse.spec(
        "month.yaml",
        "name: j\nsteps:\n  - sql: SELECT 'a' AS v\ntarget: { table: gold.m, mode: overwrite, partition_by: [\"month(v)\"] }\n",
    );
    let error = lakehouse.fails(&["run", spec.to_str().unwrap(), "--job-id", "x"]);
    assert!(
        error.contains("month.yaml")
            && error.contains("`month(v)`")
            && error.contains("column `v` is string"),
        "{error}"
    );
    assert!(lakehouse.snapshots().is_empty());
}

#[test]
fn an_error_in_the_catalog_block_of_the_config_file_names_its_line() {
    let lakehouse = Lakehouse::new();
    let config = lakehouse.path().join("medallion.yaml");
    let config = config.to_str().unwrap();
    for (yaml, place, says) in [
        (
            "execution:\n  target_partitions: 2\ncatalog:\n  type: rest\n  uri: http://127.0.0.1:1\n  tokn: abc\n",
            "line 6 column 3",
            "`tokn`",
        ),
        (
            "catalog:\n  type: rest\n  warehouse: w\n",
            "line 2 column 3",
            "needs `uri`",
        ),
        ("catalog:\n  type: rst\n", "line 2 column 9", "`rst`"),
    ] {
        std::fs::write(config, yaml).unwrap();
        let error = lakehouse.fails(&["--config", config, "tables"]);
        assert!(
            error.contains(&format!("medallion.yaml: {place}: catalog")) && error.contains(says),
            "{yaml}: {error}"
        );
    }
}
