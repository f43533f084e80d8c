#!/usr/bin/env python3
"""The reference medallion pipeline (shared/pipeline-v1.md) in DuckDB, writing
Parquet (zstd). The benchmark harness (medallion-bench) runs one layer per
process, or the whole pipeline in one process (`--layer all`: one
connection, bronze then silver then gold), and then asks for the answers to
its check queries:

  duckdb_pipeline.py run --layer bronze|silver|gold|all --raw RAW --out OUT --job-id ID --pipeline DIR
  duckdb_pipeline.py dump --out OUT --queries queries.json --results DIR
  duckdb_pipeline.py version

Tables are OUT/<layer>/<table>.parquet; each layer reads the previous layer's
files back, also with `--layer all`, so both ways write the same files. The SQL files of the pipeline (DIR: jobs/reference) are run as
they are; what medallion does with bronze and dedup steps is written here.
DuckDB runs with its defaults (all cores, 80% of memory).
"""

import argparse
import datetime
import json
import os
import sys

import duckdb

TABLES = {
    "bronze": ["customers", "orders"],
    "silver": ["customers", "orders", "dq_report"],
    "gold": ["customer_metrics", "sales_dashboard"],
}


def table_path(out, layer, table):
    return os.path.join(out, layer, f"{table}.parquet")


def reference_sql(pipeline, relative):
    """A SQL file of the reference pipeline, e.g. `gold/sales_dashboard.sql`."""
    with open(os.path.join(pipeline, relative)) as f:
        return f.read()


def quote(text):
    return "'" + text.replace("'", "''") + "'"


def copy_to(con, sql, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    con.execute(f"COPY ({sql}) TO {quote(path)} (FORMAT parquet, COMPRESSION zstd)")


def register(con, out, layer, table):
    """Makes `<layer>.<table>` name the Parquet file of a written table."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {layer}")
    path = table_path(out, layer, table)
    con.execute(f"CREATE OR REPLACE VIEW {layer}.{table} AS SELECT * FROM read_parquet({quote(path)})")


def register_tables(con, out, layers):
    for layer in layers:
        for table in TABLES[layer]:
            register(con, out, layer, table)


def bronze(con, raw, out, job_id):
    # One timestamp per run, UTC, microseconds, without time zone.
    loaded_at = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    meta = f"TIMESTAMP {quote(loaded_at)} AS loaded_at, filename AS source_file, {quote(job_id)} AS job_id"

    def source(folder):
        pattern = os.path.join(os.path.abspath(raw), "tpch", folder, "*.parquet")
        return f"read_parquet({quote(pattern)}, filename = true)"

    copy_to(con, f"""
        SELECT CAST(o_orderkey AS BIGINT) AS order_key,
               CAST(o_custkey AS BIGINT) AS customer_key,
               trim(CAST(o_orderstatus AS VARCHAR)) AS order_status,
               CAST(o_totalprice AS DECIMAL(15, 2)) AS total_price,
               CAST(o_orderdate AS DATE) AS order_date,
               trim(CAST(o_orderpriority AS VARCHAR)) AS order_priority,
               trim(CAST(o_clerk AS VARCHAR)) AS clerk,
               CAST(o_shippriority AS INTEGER) AS ship_priority,
               trim(CAST(o_comment AS VARCHAR)) AS comment,
               {meta}
        FROM {source("orders")}""", table_path(out, "bronze", "orders"))
    copy_to(con, f"""
        SELECT CAST(c_custkey AS BIGINT) AS customer_key,
               trim(CAST(c_name AS VARCHAR)) AS name,
               trim(CAST(c_address AS VARCHAR)) AS address,
               CAST(c_nationkey AS INTEGER) AS nation_key,
               trim(CAST(c_phone AS VARCHAR)) AS phone,
               CAST(c_acctbal AS DECIMAL(15, 2)) AS account_balance,
               trim(CAST(c_mktsegment AS VARCHAR)) AS market_segment,
               trim(CAST(c_comment AS VARCHAR)) AS comment,
               {meta}
        FROM {source("customer")}""", table_path(out, "bronze", "customers"))


# Keep the latest row per key: greatest loaded_at, ties broken by the
# greatest source_file (NULLs last, written out: engines differ by default).
LATEST = "ORDER BY loaded_at DESC NULLS LAST, source_file DESC NULLS LAST"


def silver(con, out, pipeline):
    register_tables(con, out, ["bronze"])
    copy_to(con, f"""
        SELECT * FROM bronze.customers
        WHERE customer_key IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY customer_key {LATEST}) = 1""",
            table_path(out, "silver", "customers"))
    # silver.orders reads silver.customers back, as medallion does.
    register(con, out, "silver", "customers")
    # orders.sql joins `latest_orders`, the output of the job's dedup step.
    con.execute(f"""
        CREATE TEMP VIEW latest_orders AS
        SELECT * FROM bronze.orders
        WHERE order_key IS NOT NULL AND customer_key IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY order_key {LATEST}) = 1""")
    copy_to(con, reference_sql(pipeline, "silver/orders.sql"), table_path(out, "silver", "orders"))
    register(con, out, "silver", "orders")
    copy_to(con, reference_sql(pipeline, "silver/dq_report.sql"), table_path(out, "silver", "dq_report"))


def gold(con, out, pipeline):
    register_tables(con, out, ["silver"])
    for table in TABLES["gold"]:
        copy_to(con, reference_sql(pipeline, f"gold/{table}.sql"), table_path(out, "gold", table))


def run_layer(con, layer, args):
    if layer == "bronze":
        bronze(con, args.raw, args.out, args.job_id)
    elif layer == "silver":
        silver(con, args.out, args.pipeline)
    else:
        gold(con, args.out, args.pipeline)


def dump(con, out, queries_file, results):
    register_tables(con, out, list(TABLES))
    os.makedirs(results, exist_ok=True)
    with open(queries_file) as f:
        queries = json.load(f)
    for query in queries:
        path = os.path.join(results, f"{query['name']}.csv")
        con.execute(f"COPY ({query['sql']}) TO {quote(path)} (FORMAT csv, HEADER true)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run")
    # `all` is how users run a pipeline: one process, one connection.
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
        print(f"duckdb {duckdb.__version__}")
        return
    con = duckdb.connect()
    if args.command == "dump":
        dump(con, args.out, args.queries, args.results)
    else:
        for layer in TABLES if args.layer == "all" else [args.layer]:
            run_layer(con, layer, args)


if __name__ == "__main__":
    sys.exit(main())
