//! Tables Spark updated in place: Spark 3.5 with Iceberg 1.10.2 runs
//! DELETE, UPDATE and MERGE INTO with merge-on-read on a v2 table (position
//! delete files) and a v3 table (deletion vectors in Puffin files), and the
//! tables are registered in medallion's catalog
//! (`tests/interop/spark_tables.py`). medallion reads the rows Spark reads.

use serde_json::Value;

use crate::foreign_deletes::delete_files_of;
use crate::support::{Lakehouse, interop_script, without_delete_files};

const V2: &str = "spark_made.v2_positions";
const V3: &str = "spark_made.v3_vectors";

/// A lakehouse holding both tables, with what Spark read of each.
fn lakehouse_with_spark_tables() -> (Lakehouse, Value) {
    let lakehouse = Lakehouse::new();
    // medallion creates the catalog's tables: PyIceberg's lack a column it reads.
    lakehouse.ok(&["tables"]);
    let spark = interop_script(
        "spark_tables.py",
        &[lakehouse.path().to_str().unwrap(), "spark_made"],
        &[],
    )
    .expect("Spark's reading as JSON");
    (lakehouse, spark)
}

/// The facts `spark_tables.py` reads, as medallion reads them.
fn medallion_reads(lakehouse: &Lakehouse, table: &str) -> Value {
    let row = lakehouse.scalar(&format!(
        "SELECT CONCAT_WS(' ', COUNT(*), SUM(id), SUM(amount), \
           COUNT(*) FILTER (WHERE note = 'updated'), COUNT(*) FILTER (WHERE note = 'merged')) \
         FROM {table}"
    ));
    let numbers: Vec<u64> = row.split(' ').map(|n| n.parse().unwrap()).collect();
    serde_json::json!({
        "rows": numbers[0],
        "sum_id": numbers[1],
        "sum_amount": numbers[2],
        "updated": numbers[3],
        "merged": numbers[4],
    })
}

#[test]
fn tables_spark_updated_with_position_deletes_and_deletion_vectors_read_as_spark_reads_them() {
    let (lakehouse, spark) = lakehouse_with_spark_tables();
    assert!(
        spark[V2]["delete_files"]["PARQUET"].as_u64().unwrap() > 0,
        "Spark wrote position delete files: {spark}"
    );
    assert!(
        spark[V3]["delete_files"]["PUFFIN"].as_u64().unwrap() > 0,
        "Spark wrote deletion vectors: {spark}"
    );
    for table in [V2, V3] {
        assert_eq!(
            medallion_reads(&lakehouse, table),
            without_delete_files(&spark[table]),
            "{table}"
        );
    }
    // A filter pushed into the scan, over files with deletes.
    let kept = lakehouse.scalar(&format!(
        "SELECT COUNT(*) FROM {V3} WHERE id BETWEEN 90 AND 110 AND id % 7 = 0"
    ));
    assert_eq!(kept, "0", "the rows Spark deleted stay deleted");
}

#[test]
fn medallion_deletes_beside_spark_vectors_then_compact_folds_every_delete_of_both_tables() {
    let (lakehouse, spark) = lakehouse_with_spark_tables();
    // Rows of every data file, those Spark deleted from too: medallion's
    // vector of each such file holds Spark's positions and replaces it.
    let matched = lakehouse.scalar(&format!("SELECT COUNT(*) FROM {V3} WHERE id % 10 = 1"));
    lakehouse.ok(&[
        "delete",
        V3,
        "--where",
        "id % 10 = 1",
        "--write-mode",
        "merge-on-read",
    ]);
    let rows = spark[V3]["rows"].as_u64().unwrap() - matched.parse::<u64>().unwrap();
    assert_eq!(
        lakehouse.scalar(&format!("SELECT COUNT(*) FROM {V3}")),
        rows.to_string()
    );
    let history = lakehouse.history(V3);
    let current = history.iter().find(|s| s["is_current"] == true).unwrap();
    let count = |key: &str| current[key].as_u64().unwrap();
    assert_eq!(
        count("total_records") - rows,
        count("total_position_deletes"),
        "each deleted row is in one vector: {current}"
    );
    for table in [V2, V3] {
        lakehouse.ok(&["compact", table]);
        assert_eq!(delete_files_of(&lakehouse, table), 0, "{table}");
    }
    assert_eq!(
        medallion_reads(&lakehouse, V2),
        without_delete_files(&spark[V2])
    );
    assert_eq!(
        lakehouse.scalar(&format!("SELECT COUNT(*) FROM {V3}")),
        rows.to_string()
    );
}
