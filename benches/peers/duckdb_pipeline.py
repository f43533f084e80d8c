#!/usr/bin/env python3
"""The reference medallion pipeline (shared/pipeline-v1.md) in DuckDB, writing
Parquet (zstd). The benchmark harness (medallion-bench) runs one layer per
process, or the whole pipeline in one process (`--layer all`: one
connection, bronze then silver then gold), and then asks for the answers to
its check queries:

  duckdb_pipeline.py run --layer bronze|silver|gold|all --raw RAW --out OUT --job-id ID --pipeline DIR
  duckdb_pipeline.py dump --out OUT --queries queries.json --results DIR
  duckdb_pipeline.py version
  duckdb_pipeline.py second-load --out OUT --changes FILE --job-id ID --pipeline DIR
      --catalog URI --s3-endpoint HOST:PORT --warehouse NAME --read-sql SQL --work DIR --answer FILE

`second-load` (the harness's `--loads 2`) puts the first load's silver.orders
into an Iceberg table of a REST catalog (the harness starts SeaweedFS on
loopback), merges the second load's orders in with MERGE INTO, deduplicated
and joined as silver orders does, and reads the merged table; it prints JSON
with the seconds and writes the first read's answer as CSV.

Tables are OUT/<layer>/<table>.parquet; each layer reads the previous layer's
files back, also with `--layer all`, so both ways write the same files. The SQL files of the pipeline (DIR: jobs/reference) are run as
they are; what medallion does with bronze and dedup steps is written here.
DuckDB runs with its defaults (all cores, 80% of memory).
"""

import argparse
import csv
import datetime
import importlib
import json
import os
import sys
import time

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


def bronze_meta(job_id):
    """The bronze metadata columns; one timestamp per run, UTC, microseconds, without time zone."""
    loaded_at = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    return f"TIMESTAMP {quote(loaded_at)} AS loaded_at, filename AS source_file, {quote(job_id)} AS job_id"


def bronze_orders(source, meta):
    """bronze.orders from `source`, a read_parquet(..., filename = true)."""
    return f"""
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
        FROM {source}"""


def bronze(con, raw, out, job_id):
    meta = bronze_meta(job_id)

    def source(folder):
        pattern = os.path.join(os.path.abspath(raw), "tpch", folder, "*.parquet")
        return f"read_parquet({quote(pattern)}, filename = true)"

    copy_to(con, bronze_orders(source("orders"), meta), table_path(out, "bronze", "orders"))
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


def create_latest_orders(con, bronze_orders):
    """`latest_orders`, the output of silver orders' dedup step, which orders.sql joins."""
    con.execute(f"""
        CREATE OR REPLACE TEMP VIEW latest_orders AS
        SELECT * FROM {bronze_orders}
        WHERE order_key IS NOT NULL AND customer_key IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY order_key {LATEST}) = 1""")


def silver(con, out, pipeline):
    register_tables(con, out, ["bronze"])
    copy_to(con, f"""
        SELECT * FROM bronze.customers
        WHERE customer_key IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY customer_key {LATEST}) = 1""",
            table_path(out, "silver", "customers"))
    # silver.orders reads silver.customers back, as medallion does.
    register(con, out, "silver", "customers")
    create_latest_orders(con, "bronze.orders")
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


# --- second load (`second-load`): a MERGE INTO on an Iceberg table ---------
# DuckDB writes Iceberg only through a REST catalog, so this part attaches
# one (the harness starts SeaweedFS on loopback: S3 + Iceberg REST).


def load_extensions(con):
    """httpfs (S3), avro (manifests) and iceberg from their PyPI packages:
    DuckDB's own extension server may be unreachable, and must not be asked."""
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    for name in ("httpfs", "avro", "iceberg"):
        module = importlib.import_module(f"duckdb_extension_{name}")
        folder = os.path.join(os.path.dirname(module.__file__), "extensions", f"v{duckdb.__version__}")
        con.execute(f"LOAD {quote(os.path.join(folder, name + '.duckdb_extension'))}")


def attach_catalog(con, catalog, s3_endpoint, warehouse):
    """Attaches the REST catalog as `lake`. The S3 key pair (BENCH_S3_ACCESS_KEY,
    BENCH_S3_SECRET_KEY) is also the catalog's OAuth2 client, as in SeaweedFS."""
    key, secret = os.environ["BENCH_S3_ACCESS_KEY"], os.environ["BENCH_S3_SECRET_KEY"]
    con.execute(f"""CREATE SECRET bench_s3 (TYPE s3, KEY_ID {quote(key)}, SECRET {quote(secret)},
        ENDPOINT {quote(s3_endpoint)}, URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')""")
    con.execute(f"""CREATE SECRET bench_catalog (TYPE iceberg, CLIENT_ID {quote(key)},
        CLIENT_SECRET {quote(secret)}, OAUTH2_SERVER_URI {quote(catalog + '/v1/oauth/tokens')})""")
    con.execute(f"ATTACH {quote(warehouse)} AS lake (TYPE iceberg, ENDPOINT {quote(catalog)}, SECRET bench_catalog)")


def data_files(con, table):
    """{path: bytes} of every object in the folder of the table's data files."""
    first = con.execute(f"SELECT file_path FROM iceberg_metadata({table}) LIMIT 1").fetchone()
    folder = os.path.dirname(first[0])
    return dict(con.execute(f"SELECT filename, size FROM read_blob({quote(folder + '/**')})").fetchall())


def timed(con, sql):
    started = time.perf_counter()
    rows = con.execute(sql).fetchall()
    return time.perf_counter() - started, rows


def second_load(con, args):
    """silver.orders as the first load left it, as an Iceberg table; then the
    second load merged in as silver_orders does it (dedup, join, merge on
    order_key); then READ_SQL read `--reads` times. Prints JSON."""
    load_extensions(con)
    attach_catalog(con, args.catalog, args.s3_endpoint, args.warehouse)
    register(con, args.out, "silver", "customers")
    con.execute("CREATE SCHEMA IF NOT EXISTS lake.silver")
    con.execute("DROP TABLE IF EXISTS lake.silver.orders")
    first_load = f"SELECT * FROM read_parquet({quote(table_path(args.out, 'silver', 'orders'))})"
    # zstd like every other table of the benchmark (DuckDB's Iceberg default is snappy).
    con.execute(f"CREATE TABLE lake.silver.orders AS {first_load} LIMIT 0")
    con.execute("CALL set_iceberg_table_properties(lake.silver.orders, {'write.parquet.compression-codec': 'zstd'})")
    create_seconds, _ = timed(con, f"INSERT INTO lake.silver.orders {first_load}")
    before = data_files(con, "lake.silver.orders")
    # The same rows to a local file: what S3 + REST on loopback cost the write.
    local = os.path.join(args.work, "silver_orders_local.parquet")
    local_copy_seconds, _ = timed(con, f"COPY ({first_load}) TO {quote(local)} (FORMAT parquet, COMPRESSION zstd)")
    # Bronze of the second load, outside the timing: medallion's silver job
    # too reads the new rows of bronze.orders that its bronze job wrote.
    changes = f"read_parquet({quote(os.path.abspath(args.changes))}, filename = true)"
    bronze_changes = os.path.join(args.work, "bronze_orders_changes.parquet")
    copy_to(con, bronze_orders(changes, bronze_meta(args.job_id)), bronze_changes)
    create_latest_orders(con, f"read_parquet({quote(bronze_changes)})")
    merge = f"""MERGE INTO lake.silver.orders AS t
        USING ({reference_sql(args.pipeline, "silver/orders.sql")}) AS s
        ON t.order_key = s.order_key
        WHEN MATCHED THEN UPDATE SET *
        WHEN NOT MATCHED THEN INSERT *"""
    merge_seconds, merged = timed(con, merge)
    after = data_files(con, "lake.silver.orders")
    deleted = con.execute("""SELECT coalesce(sum(record_count), 0) FROM iceberg_metadata(lake.silver.orders)
        WHERE content = 'POSITION_DELETES'""").fetchone()[0]
    # READ_SQL names silver.orders: the catalog's from here on.
    con.execute("USE lake.silver")
    reads = [timed(con, args.read_sql) for _ in range(args.reads)]
    columns = [column[0] for column in con.description]
    with open(args.answer, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(reads[0][1])
    print(json.dumps({
        "statement": "MERGE INTO",
        "create_seconds": create_seconds,
        "create_bytes": sum(before.values()),
        "local_copy_seconds": local_copy_seconds,
        "merge_seconds": merge_seconds,
        "merge_rows": merged[0][0],
        "merge_bytes": sum(size for path, size in after.items() if path not in before),
        "merge_files": len(after.keys() - before.keys()),
        "merge_rows_deleted": int(deleted),
        "read_seconds": [seconds for seconds, _ in reads],
    }))


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
    load = commands.add_parser("second-load", help="merge the second load into silver.orders on Iceberg")
    load.add_argument("--out", required=True, help="the first load's tables (`run --out`)")
    load.add_argument("--changes", required=True, help="the second load's orders (Parquet)")
    load.add_argument("--job-id", required=True)
    load.add_argument("--pipeline", required=True)
    load.add_argument("--catalog", required=True, help="the Iceberg REST catalog's URI")
    load.add_argument("--s3-endpoint", required=True, help="host:port of its S3")
    load.add_argument("--warehouse", required=True)
    load.add_argument("--read-sql", required=True)
    load.add_argument("--reads", type=int, default=3)
    load.add_argument("--work", required=True, help="a folder for the second load's bronze")
    load.add_argument("--answer", required=True, help="CSV file for the first read's answer")
    commands.add_parser("version")
    args = parser.parse_args()

    if args.command == "version":
        print(f"duckdb {duckdb.__version__}")
        return
    con = duckdb.connect()
    if args.command == "dump":
        dump(con, args.out, args.queries, args.results)
    elif args.command == "second-load":
        second_load(con, args)
    else:
        for layer in TABLES if args.layer == "all" else [args.layer]:
            run_layer(con, layer, args)


if __name__ == "__main__":
    sys.exit(main())
