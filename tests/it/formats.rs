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

#[test]
fn hundreds_of_small_raw_files_load_every_row_with_its_own_source_file() {
    let lakehouse = Lakehouse::new();
    // Two kinds of file, read as two scans: two sets of columns.
    for file in 0..300 {
        let (a, b) = (file * 10, file * 10 + 1);
        let name = format!("many/part-{file:04}.csv");
        if file % 2 == 0 {
            lakehouse.raw_file(&name, format!("id,city\n{a},x\n{b},y\n"));
        } else {
            lakehouse.raw_file(&name, format!("id,city,zone\n{a},x,{file}\n{b},y,{file}\n"));
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
             '%/many/part-' || lpad(CAST(id / 10 AS VARCHAR), 4, '0') || '.csv'"
        ),
        "0"
    );
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.many WHERE zone = id / 10"),
        "300",
        "the files with a zone keep it"
    );
    assert_eq!(
        lakehouse.scalar("SELECT COUNT(*) FROM bronze.many WHERE zone IS NULL"),
        "300"
    );
}
