#!/usr/bin/env python3
"""The reference medallion pipeline (shared/pipeline-v1.md) in PySpark,
local[2], writing Parquet (zstd): the way the pipeline runs today as Spark
jobs, one SparkApplication per layer. The benchmark harness
(medallion-bench) runs one layer per process, or the whole pipeline in one
process (`--layer all`: one SparkSession, bronze then silver then gold), and
then asks for the answers to its check queries:

  spark_pipeline.py run --layer bronze|silver|gold|all --raw RAW --out OUT --job-id ID --pipeline DIR
  spark_pipeline.py dump --out OUT --queries queries.json --results DIR
  spark_pipeline.py version

Tables are OUT/<layer>/<table>/ folders of Parquet parts; each layer reads
the previous layer's files back, also with `--layer all`, so both ways write
the same files. The SQL files of the pipeline (DIR:
jobs/reference) are run as they are; what medallion does with bronze and
dedup steps is written here. Needs pyspark 3.5 and Java 17.
"""

import argparse
import csv
import datetime
import json
import os
import sys

TABLES = {
    "bronze": ["customers", "orders"],
    "silver": ["customers", "orders", "dq_report"],
    "gold": ["customer_metrics", "sales_dashboard"],
}


def session():
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master("local[2]")
        .appName("medallion-bench reference pipeline")
        # Without these, Spark binds to the machine's address.
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", os.environ.get("BENCH_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.compression.codec", "zstd")
        .getOrCreate()
    )


def table_path(out, layer, table):
    return os.path.join(os.path.abspath(out), layer, table)


def register(spark, out, layer, table):
    """Makes `<layer>.<table>` name the Parquet folder of a written table."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
    spark.sql(f"DROP TABLE IF EXISTS {layer}.{table}")
    spark.sql(f"CREATE TABLE {layer}.{table} USING parquet LOCATION '{table_path(out, layer, table)}'")


def register_tables(spark, out, layers):
    for layer in layers:
        for table in TABLES[layer]:
            register(spark, out, layer, table)


def reference_sql(pipeline, relative):
    """A SQL file of the reference pipeline, e.g. `gold/sales_dashboard.sql`."""
    with open(os.path.join(pipeline, relative)) as f:
        return f.read()


def write(frame, out, layer, table):
    frame.write.mode("overwrite").parquet(table_path(out, layer, table))


def bronze(spark, raw, out, job_id):
    from pyspark.sql import functions as F

    # One timestamp per run, UTC, microseconds, without time zone.
    loaded_at = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)

    def load(folder, columns):
        frame = spark.read.parquet(os.path.join(os.path.abspath(raw), "tpch", folder))
        selected = []
        for name, source, kind in columns:
            value = F.col(source).cast(kind)
            if kind == "string":
                value = F.trim(value)
            selected.append(value.alias(name))
        return frame.select(
            *selected,
            F.lit(loaded_at).cast("timestamp_ntz").alias("loaded_at"),
            F.input_file_name().alias("source_file"),
            F.lit(job_id).alias("job_id"),
        )

    write(load("orders", [
        ("order_key", "o_orderkey", "bigint"),
        ("customer_key", "o_custkey", "bigint"),
        ("order_status", "o_orderstatus", "string"),
        ("total_price", "o_totalprice", "decimal(15,2)"),
        ("order_date", "o_orderdate", "date"),
        ("order_priority", "o_orderpriority", "string"),
        ("clerk", "o_clerk", "string"),
        ("ship_priority", "o_shippriority", "int"),
        ("comment", "o_comment", "string"),
    ]), out, "bronze", "orders")
    write(load("customer", [
        ("customer_key", "c_custkey", "bigint"),
        ("name", "c_name", "string"),
        ("address", "c_address", "string"),
        ("nation_key", "c_nationkey", "int"),
        ("phone", "c_phone", "string"),
        ("account_balance", "c_acctbal", "decimal(15,2)"),
        ("market_segment", "c_mktsegment", "string"),
        ("comment", "c_comment", "string"),
    ]), out, "bronze", "customers")


def latest(table, key, condition):
    """The latest row per key: greatest loaded_at, ties broken by the greatest
    source_file (NULLs last, written out: engines differ by default)."""
    return f"""
        SELECT * FROM (
            SELECT *, row_number() OVER (
                PARTITION BY {key}
                ORDER BY loaded_at DESC NULLS LAST, source_file DESC NULLS LAST) AS _rank
            FROM {table} WHERE {condition}
        ) WHERE _rank = 1"""


def silver(spark, out, pipeline):
    register_tables(spark, out, ["bronze"])
    customers = spark.sql(latest("bronze.customers", "customer_key", "customer_key IS NOT NULL")).drop("_rank")
    write(customers, out, "silver", "customers")
    # silver.orders reads silver.customers back, as medallion does.
    register(spark, out, "silver", "customers")
    spark.sql(latest("bronze.orders", "order_key", "order_key IS NOT NULL AND customer_key IS NOT NULL")) \
        .drop("_rank").createOrReplaceTempView("latest_orders")
    # orders.sql joins `latest_orders`, the output of the job's dedup step.
    write(spark.sql(reference_sql(pipeline, "silver/orders.sql")), out, "silver", "orders")
    register(spark, out, "silver", "orders")
    write(spark.sql(reference_sql(pipeline, "silver/dq_report.sql")), out, "silver", "dq_report")


def gold(spark, out, pipeline):
    register_tables(spark, out, ["silver"])
    for table in TABLES["gold"]:
        write(spark.sql(reference_sql(pipeline, f"gold/{table}.sql")), out, "gold", table)


def run_layer(spark, layer, args):
    if layer == "bronze":
        bronze(spark, args.raw, args.out, args.job_id)
    elif layer == "silver":
        silver(spark, args.out, args.pipeline)
    else:
        gold(spark, args.out, args.pipeline)


def text(value):
    if value is None:
        return ""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def dump(spark, out, queries_file, results):
    register_tables(spark, out, list(TABLES))
    os.makedirs(results, exist_ok=True)
    with open(queries_file) as f:
        queries = json.load(f)
    for query in queries:
        frame = spark.sql(query["sql"])
        with open(os.path.join(results, f"{query['name']}.csv"), "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(frame.columns)
            for row in frame.toLocalIterator():
                writer.writerow([text(v) for v in row])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    # `all` is how users run a pipeline: one process, one SparkSession.
    run.add_argument("--layer", choices=[*TABLES, "all"], required=True)
    run.add_argument("--raw", required=True)
    run.add_argument("--out", required=True)
    run.add_argument("--job-id", required=True)
    run.add_argument("--pipeline", required=True, help="the reference pipeline folder (its SQL files)")
    dump_args = commands.add_parser("dump")
    dump_args.add_argument("--out", required=True)
    dump_args.add_argument("--queries", required=True)
    dump_args.add_argument("--results", required=True)
    commands.add_parser("version")
    args = parser.parse_args()

    if args.command == "version":
        import pyspark

        print(f"pyspark {pyspark.__version__}")
        return
    spark = session()
    try:
        if args.command == "dump":
            dump(spark, args.out, args.queries, args.results)
        else:
            for layer in TABLES if args.layer == "all" else [args.layer]:
                run_layer(spark, layer, args)
    finally:
        spark.stop()


if __name__ == "__main__":
    sys.exit(main())
