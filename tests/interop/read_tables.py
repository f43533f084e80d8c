"""Reads medallion's tables with PyIceberg and prints facts about them as JSON.

  read_tables.py sql <lakehouse folder>       the embedded SQLite catalog
  read_tables.py rest [--drop-all]            the REST catalog in MEDALLION_TEST_* variables

With --drop-all, every table of the REST catalog is dropped instead (a clean
start for a test). For the embedded catalog also:

  read_tables.py sql <lakehouse> --rows <table> "<column>, <column>"
      the table's rows as CSV lines (null: empty), as a JSON list
  read_tables.py sql <lakehouse> --run "<python>"
      runs the code with `catalog` set (e.g. to change a table's schema)
  read_tables.py sql <lakehouse> --duckdb-rows <table> "<column>, <column>"
      the rows DuckDB reads (its iceberg extension, from PyPI), as --rows
  read_tables.py sql <lakehouse> --spark-rows <table> "<column>, <column>"
      the rows Spark reads (Iceberg's Spark runtime, see spark_tables.py), as --rows
"""
import json
import os
import sys
from pathlib import Path

import pyarrow.compute as pc


def sql_catalog(lakehouse):
    from pyiceberg.catalog.sql import SqlCatalog

    lakehouse = Path(lakehouse).resolve()
    return SqlCatalog(
        "medallion",
        uri=f"sqlite:///{lakehouse / 'catalog.db'}",
        warehouse=f"file://{lakehouse / 'warehouse'}",
    )


def rest_catalog():
    from pyiceberg.catalog.rest import RestCatalog

    env = os.environ
    return RestCatalog(
        "medallion",
        uri=env["MEDALLION_TEST_ICEBERG_URI"],
        warehouse=env["MEDALLION_TEST_ICEBERG_WAREHOUSE"],
        credential=f"{env['MEDALLION_TEST_S3_ACCESS_KEY']}:{env['MEDALLION_TEST_S3_SECRET_KEY']}",
        **{
            "s3.endpoint": env["MEDALLION_TEST_S3_ENDPOINT"],
            "s3.access-key-id": env["MEDALLION_TEST_S3_ACCESS_KEY"],
            "s3.secret-access-key": env["MEDALLION_TEST_S3_SECRET_KEY"],
            "s3.region": env.get("MEDALLION_TEST_S3_REGION", "us-east-1"),
            "s3.path-style-access": "true",
        },
    )


def facts(catalog):
    result = {}
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            name = ".".join(identifier)
            table = catalog.load_table(identifier).scan().to_arrow()
            entry = {"rows": table.num_rows}
            for column in ("total_spend", "total_price", "revenue"):
                if column in table.column_names:
                    entry[column] = str(pc.sum(table[column]).as_py())
            if "order_count" in table.column_names:
                entry["order_count"] = pc.sum(table["order_count"]).as_py()
            result[name] = entry
    return result


def drop_all(catalog):
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            catalog.drop_table(identifier)


def rows(catalog, table, columns):
    names = [c.strip() for c in columns.split(",")]
    data = catalog.load_table(table).scan(selected_fields=tuple(names)).to_arrow()
    return [
        ",".join("" if row[name] is None else str(row[name]) for name in names)
        for row in data.select(names).to_pylist()
    ]


def duckdb_rows(catalog, table, columns):
    """The table's rows as DuckDB's iceberg extension reads its current metadata."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from duckdb_deletes import duckdb_with

    connection = duckdb_with("avro", "iceberg")
    location = catalog.load_table(table).metadata_location.removeprefix("file://")
    data = connection.execute(f"SELECT {columns} FROM iceberg_scan(?)", [location]).fetchall()
    return [",".join("" if value is None else str(value) for value in row) for row in data]


def spark_rows(catalog, table, columns):
    """The table's rows as Iceberg's Spark runtime reads its current metadata."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from spark_tables import session

    location = catalog.load_table(table).metadata_location
    spark = session(os.path.join(os.path.dirname(location.removeprefix("file://")), "unused-warehouse"))
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.read.format("iceberg").load(location.removeprefix("file://"))
    data = frame.selectExpr(*[c.strip() for c in columns.split(",")]).collect()
    spark.stop()
    return [",".join("" if value is None else str(value) for value in row) for row in data]


if sys.argv[1] == "sql" and sys.argv[3:4] == ["--rows"]:
    print(json.dumps(rows(sql_catalog(sys.argv[2]), sys.argv[4], sys.argv[5])))
elif sys.argv[1] == "sql" and sys.argv[3:4] == ["--duckdb-rows"]:
    print(json.dumps(duckdb_rows(sql_catalog(sys.argv[2]), sys.argv[4], sys.argv[5])))
elif sys.argv[1] == "sql" and sys.argv[3:4] == ["--spark-rows"]:
    print(json.dumps(spark_rows(sql_catalog(sys.argv[2]), sys.argv[4], sys.argv[5])))
elif sys.argv[1] == "sql" and sys.argv[3:4] == ["--run"]:
    exec(sys.argv[4], {"catalog": sql_catalog(sys.argv[2])})
elif sys.argv[1] == "sql":
    print(json.dumps(facts(sql_catalog(sys.argv[2]))))
elif sys.argv[1] == "rest" and sys.argv[2:] == ["--drop-all"]:
    drop_all(rest_catalog())
elif sys.argv[1] == "rest":
    print(json.dumps(facts(rest_catalog())))
else:
    sys.exit(__doc__)
