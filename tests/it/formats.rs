//! Raw CSV (with a header) and newline-delimited JSON load like Parquet:
//! typed by the spec, strings trimmed, one bronze row per raw row.

use crate::support::Lakehouse;

fn spec(format: &str, path: &str, table: &str) -> String {
    format!(
        "name: bronze_{table}
inputs:
  - {{ name: raw, path: {path}, format: {format} }}
steps:
  - bronze:
      from: raw
      columns:
        - {{ name: id, from: id, type: int64 }}
        - {{ name: city, from: city, type: string }}
        - {{ name: amount, from: amount, type: \"decimal(10,2)\" }}
        - {{ name: day, from: day, type: date }}
target: {{ table: bronze.{table}, mode: append }}
"
    )
}

#[test]
fn csv_and_json_raw_files_load_typed_and_trimmed() {
    let lakehouse = Lakehouse::new();
    let raw = lakehouse.path().join("raw");
    std::fs::create_dir_all(raw.join("csv")).unwrap();
    std::fs::create_dir_all(raw.join("json")).unwrap();
    std::fs::write(
        raw.join("csv/part-1.csv"),
        "id,city,amount,day\n1,  Berlin ,12.50,2026-01-31\n2,Paris,7.25,2026-02-01\n",
    )
    .unwrap();
    std::fs::write(
        raw.join("csv/part-2.csv"),
        "id,city,amount,day\n3,Oslo,0.10,2026-02-02\n",
    )
    .unwrap();
    std::fs::write(
        raw.join("json/events.json"),
        "{\"id\": 7, \"city\": \" Rome\", \"amount\": 3.5, \"day\": \"2026-03-01\"}\n{\"id\": 8, \"city\": \"Lima\", \"amount\": 1, \"day\": \"2026-03-02\"}\n",
    )
    .unwrap();
    let csv_spec = lakehouse.path().join("csv.yaml");
    let json_spec = lakehouse.path().join("json.yaml");
    std::fs::write(&csv_spec, spec("csv", "csv", "from_csv")).unwrap();
    std::fs::write(&json_spec, spec("json", "json", "from_json")).unwrap();

    lakehouse.ok(&["run", csv_spec.to_str().unwrap(), "--job-id", "csv-1"]);
    lakehouse.ok(&["run", json_spec.to_str().unwrap(), "--job-id", "json-1"]);

    assert_eq!(lakehouse.rows("bronze.from_csv"), 3);
    assert_eq!(lakehouse.rows("bronze.from_json"), 2);
    assert_eq!(
        lakehouse.scalar("SELECT city || '|' || CAST(amount AS VARCHAR) || '|' || CAST(day AS VARCHAR) FROM bronze.from_csv WHERE id = 1"),
        "Berlin|12.50|2026-01-31"
    );
    assert_eq!(
        lakehouse.scalar("SELECT city FROM bronze.from_json WHERE id = 7"),
        "Rome"
    );
    assert_eq!(
        lakehouse.scalar("SELECT SUM(amount) FROM bronze.from_json"),
        "4.50"
    );
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT source_file) FROM bronze.from_csv"),
        "2",
        "each row knows its file"
    );
    assert_eq!(
        lakehouse.scalar(
            "SELECT arrow_typeof(amount) || ' ' || arrow_typeof(day) FROM bronze.from_json LIMIT 1"
        ),
        "Decimal128(10, 2) Date32"
    );
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn raw_files_load_whatever_the_case_or_compression_of_their_extension() {
    let lakehouse = Lakehouse::new();
    lakehouse.raw_file("csv/a.csv", "id,city\n1,Oslo\n");
    lakehouse.raw_file("csv/b.csv.gz", gzip(b"id,city\n2,Rome\n3,Lima\n"));
    lakehouse.raw_file("csv/good.CSV", "id,city\n4,Kyiv\n5,Bern\n");
    lakehouse.raw_file("json/good.json", "{\"id\": 1, \"city\": \"Oslo\"}\n");
    lakehouse.raw_file(
        "json/good.jsonl",
        "{\"id\": 2, \"city\": \"Rome\"}\n{\"id\": 3, \"city\": \"Lima\"}\n",
    );
    lakehouse.raw_file(
        "json/good.ndjson.gz",
        gzip(b"{\"id\": 4, \"city\": \"Kyiv\"}\n"),
    );
    lakehouse.raw_file(
        "json/more.NDJSON",
        "{\"id\": 5, \"city\": \"Bern\"}\n{\"id\": 6, \"city\": \"Riga\"}\n",
    );
    let columns = [
        "{ name: id, from: id, type: int64 }",
        "{ name: city, from: city, type: string }",
    ];
    let csv = lakehouse.bronze_spec("from_csv", "csv", "csv", &columns);
    let json = lakehouse.bronze_spec("from_json", "json", "json", &columns);

    lakehouse.ok(&["run", &csv, "--job-id", "csv-1"]);
    lakehouse.ok(&["run", &json, "--job-id", "json-1"]);

    assert_eq!(lakehouse.rows("bronze.from_csv"), 5);
    assert_eq!(lakehouse.rows("bronze.from_json"), 6);
    assert_eq!(
        lakehouse.scalar(
            "SELECT city FROM bronze.from_csv WHERE source_file LIKE '%b.csv.gz' AND id = 3"
        ),
        "Lima"
    );
}

#[test]
fn objects_a_raw_input_does_not_read_are_named_in_the_log_and_the_report() {
    let lakehouse = Lakehouse::new();
    lakehouse.raw_file("csv/a.csv", "id\n1\n");
    lakehouse.raw_file("csv/notes.txt", "not data");
    lakehouse.raw_file("csv/2026-01/b.csv", "id\n2\n");
    // Markers and hidden files are skipped by convention, without a word.
    lakehouse.raw_file("csv/_SUCCESS", "");
    lakehouse.raw_file("csv/.a.csv.crc", "");
    let spec = lakehouse.bronze_spec(
        "few",
        "csv",
        "csv",
        &["{ name: id, from: id, type: int64 }"],
    );

    let out = lakehouse.medallion(&["run", &spec, "--job-id", "j-1", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("WARN") && log.contains("notes.txt") && log.contains("2026-01/b.csv"),
        "{log}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let skipped: Vec<&str> = report["jobs"][0]["skipped_files"]
        .as_array()
        .expect("the report lists the skipped files")
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    assert!(
        skipped[0].ends_with("/raw/csv/2026-01/b.csv"),
        "{skipped:?}"
    );
    assert!(skipped[1].ends_with("/raw/csv/notes.txt"), "{skipped:?}");
    assert_eq!(lakehouse.rows("bronze.few"), 1);

    let table = lakehouse.ok(&["run", &spec, "--job-id", "j-2"]);
    assert!(
        table.contains("warning: job `bronze_few` did not load 2 objects"),
        "{table}"
    );
}

#[test]
fn hundreds_of_small_raw_files_load_every_row_with_its_own_source_file() {
    let lakehouse = Lakehouse::new();
    // Three kinds of file, read as three scans: two sets of columns, and
    // gzip.
    for file in 0..300 {
        let (a, b) = (file * 10, file * 10 + 1);
        match file % 3 {
            0 => lakehouse.raw_file(
                &format!("many/part-{file:04}.csv"),
                format!("id,city\n{a},x\n{b},y\n"),
            ),
            1 => lakehouse.raw_file(
                &format!("many/part-{file:04}.csv"),
                format!("id,city,zone\n{a},x,{file}\n{b},y,{file}\n"),
            ),
            _ => lakehouse.raw_file(
                &format!("many/part-{file:04}.csv.gz"),
                gzip(format!("id,city\n{a},x\n{b},y\n").as_bytes()),
            ),
        }
    }
    let spec = lakehouse.bronze_spec(
        "many",
        "csv",
        "many",
        &[
            "{ name: id, from: id, type: int64 }",
            "{ name: city, from: city, type: string }",
        ],
    );

    lakehouse.ok(&["run", &spec, "--job-id", "many-1"]);

    assert_eq!(lakehouse.rows("bronze.many"), 600);
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(DISTINCT id) FROM bronze.many"),
        "600"
    );
    // Each row names the file it is in: part-<id / 10>.
    assert_eq!(
        lakehouse.scalar(
            "SELECT COUNT(*) FROM bronze.many WHERE source_file NOT LIKE \
             '%/many/part-' || lpad(CAST(id / 10 AS VARCHAR), 4, '0') || '.csv%'"
        ),
        "0"
    );
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.many WHERE zone = id / 10"),
        "200",
        "the files with a zone keep it"
    );
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.many WHERE zone IS NULL"),
        "400"
    );
}
