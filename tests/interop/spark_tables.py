"""Writes Iceberg tables with Spark 3.5 and Iceberg's Spark runtime 1.10.2
as a Spark user updates them in place, registers them in medallion's
embedded SQLite catalog, and prints what Spark reads of them as JSON:

  spark_tables.py <lakehouse folder> <namespace>

Two tables, partitioned by `part`, each loaded in two inserts and then
changed by DELETE, UPDATE and MERGE INTO with merge-on-read for all three:

  <namespace>.v2_positions  format-version 2: position delete files (Parquet)
  <namespace>.v3_vectors    format-version 3: deletion vectors (Puffin)

Spark writes them in a Hadoop catalog under <lakehouse>/spark-warehouse
(Spark here has no driver for the SQLite catalog); PyIceberg then registers
each table's last metadata file in medallion's catalog, which is how a table
another engine keeps is handed to medallion. Needs pyspark 3.5, the jar of
PyPI snowpark-connect-deps-iceberg and Java 17 (tests/interop/requirements-spark.txt).
"""
import json
import os
import shutil
import sys
import uuid

from position_deletes import table_catalog

TABLES = {"v2_positions": 2, "v3_vectors": 3}


def runtime_jar():
    import snowpark_connect_deps_iceberg

    jars = os.path.join(os.path.dirname(snowpark_connect_deps_iceberg.__file__), "jars")
    return os.path.join(jars, "iceberg-spark-runtime-3.5_2.12-1.10.2.jar")


def session(warehouse):
    from pyspark.sql import SparkSession

    # Without it, Spark's driver binds to the machine's address.
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    return (
        SparkSession.builder.master("local[2]")
        .appName("medallion interop: tables Spark updated in place")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.jars", runtime_jar())
        .config(
            "spark.sql.extensions",
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        )
        .config("spark.sql.catalog.spark", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.spark.type", "hadoop")
        # A URI, so the table's metadata names its files by URIs
        # (file:/...), not by bare paths.
        .config("spark.sql.catalog.spark.warehouse", "file://" + warehouse)
        .getOrCreate()
    )


def write(spark, table, version):
    """Two inserts of 100 rows each, then a DELETE, an UPDATE and a MERGE,
    each leaving its changes as deletes beside the data files."""
    spark.sql(
        f"""CREATE TABLE {table} (id BIGINT, part INT, amount BIGINT, note STRING)
        USING iceberg PARTITIONED BY (part)
        TBLPROPERTIES ('format-version'='{version}',
          'write.delete.mode'='merge-on-read',
          'write.update.mode'='merge-on-read',
          'write.merge.mode'='merge-on-read')"""
    )
    for start in (0, 100):
        spark.sql(
            f"""INSERT INTO {table}
            SELECT id, CAST(id % 3 AS INT), id * 10, CONCAT('row ', id)
            FROM range({start}, {start + 100})"""
        )
    spark.sql(f"DELETE FROM {table} WHERE id % 7 = 0")
    spark.sql(f"UPDATE {table} SET amount = amount + 1, note = 'updated' WHERE id % 11 = 0")
    spark.sql(
        f"""MERGE INTO {table} t
        USING (SELECT id, CAST(id % 3 AS INT) AS part, id AS amount FROM range(190, 220)) s
        ON t.id = s.id
        WHEN MATCHED THEN UPDATE SET t.amount = s.amount, t.note = 'merged'
        WHEN NOT MATCHED THEN INSERT (id, part, amount, note) VALUES (s.id, s.part, s.amount, 'new')"""
    )


def facts(spark, table):
    """What Spark reads, and the delete files it wrote (by format)."""
    row = spark.sql(
        f"""SELECT COUNT(*) AS rows, SUM(id) AS sum_id, SUM(amount) AS sum_amount,
          COUNT_IF(note = 'updated') AS updated, COUNT_IF(note = 'merged') AS merged
        FROM {table}"""
    ).first()
    deletes = spark.sql(
        f"SELECT file_format, COUNT(*) AS n FROM {table}.delete_files GROUP BY file_format"
    ).collect()
    return {
        **row.asDict(),
        "delete_files": {d["file_format"]: d["n"] for d in deletes},
    }


def last_metadata(warehouse, namespace, name):
    """The table's last metadata file, copied under the name Iceberg's
    other catalogs give it (`<version>-<uuid>.metadata.json`): the SQL
    catalog of iceberg-rust 0.10 parses the version out of the current
    file's name when it commits, and refuses Hadoop's `v<version>`."""
    folder = os.path.join(warehouse, namespace, name, "metadata")
    with open(os.path.join(folder, "version-hint.text")) as hint:
        version = int(hint.read().strip())
    copy = os.path.join(folder, f"{version:05d}-{uuid.uuid4()}.metadata.json")
    shutil.copyfile(os.path.join(folder, f"v{version}.metadata.json"), copy)
    return "file:" + copy


def main():
    lakehouse, namespace = sys.argv[1], sys.argv[2]
    warehouse = os.path.join(os.path.abspath(lakehouse), "spark-warehouse")
    spark = session(warehouse)
    spark.sparkContext.setLogLevel("ERROR")
    read = {}
    for name, version in TABLES.items():
        table = f"spark.{namespace}.{name}"
        write(spark, table, version)
        read[f"{namespace}.{name}"] = facts(spark, table)
    spark.stop()
    catalog = table_catalog(lakehouse, f"{namespace}.any")
    for name in TABLES:
        catalog.register_table(f"{namespace}.{name}", last_metadata(warehouse, namespace, name))
    print(json.dumps(read))


if __name__ == "__main__":
    main()
