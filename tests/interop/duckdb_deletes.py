#!/usr/bin/env python3
"""DuckDB 1.5 (its iceberg extension, from PyPI) updating an Iceberg table
in place through a REST catalog: DuckDB writes position delete files for
DELETE and UPDATE. The tests check that medallion reads the rows DuckDB
reads, and that DuckDB reads the table again after medallion changed it.

  duckdb_deletes.py write CATALOG_URI S3_ENDPOINT WAREHOUSE TABLE
  duckdb_deletes.py read CATALOG_URI S3_ENDPOINT WAREHOUSE TABLE

TABLE is `namespace.name`. The S3 keys come from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, the catalog's OAuth2 client from
MEDALLION_CATALOG_CREDENTIAL (`id:secret`), never from arguments. Prints
the facts DuckDB reads as JSON: rows, sum_id, sum_amount, updated, and the
table's delete files by format.
"""

import importlib
import json
import os
import sys
from urllib.parse import urlparse

import duckdb


def quote(text):
    return "'" + text.replace("'", "''") + "'"


def duckdb_with(*extensions):
    """A DuckDB connection with these extensions loaded from their PyPI
    packages only (DuckDB's own extension server must not be asked)."""
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    for name in extensions:
        module = importlib.import_module(f"duckdb_extension_{name}")
        folder = os.path.join(os.path.dirname(module.__file__), "extensions", f"v{duckdb.__version__}")
        con.execute(f"LOAD {quote(os.path.join(folder, name + '.duckdb_extension'))}")
    return con


def connect(catalog, s3_endpoint, warehouse):
    """A connection with the REST catalog attached as `lake`."""
    con = duckdb_with("httpfs", "avro", "iceberg")
    endpoint = urlparse(s3_endpoint).netloc
    key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
    con.execute(f"""CREATE SECRET s3 (TYPE s3, KEY_ID {quote(key)}, SECRET {quote(secret)},
        ENDPOINT {quote(endpoint)}, URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')""")
    client_id, client_secret = os.environ["MEDALLION_CATALOG_CREDENTIAL"].split(":", 1)
    con.execute(f"""CREATE SECRET catalog (TYPE iceberg, CLIENT_ID {quote(client_id)},
        CLIENT_SECRET {quote(client_secret)}, OAUTH2_SERVER_URI {quote(catalog + '/v1/oauth/tokens')})""")
    con.execute(f"ATTACH {quote(warehouse)} AS lake (TYPE iceberg, ENDPOINT {quote(catalog)}, SECRET catalog)")
    return con


def write(con, table):
    """Two inserts (two data files), then a DELETE and an UPDATE in place."""
    namespace = table.split(".")[0]
    con.execute(f"CREATE SCHEMA IF NOT EXISTS lake.{namespace}")
    con.execute(f"DROP TABLE IF EXISTS lake.{table}")
    rows = "SELECT i AS id, i * 10 AS amount, 'new' AS note FROM range({}, {}) r(i)"
    con.execute(f"CREATE TABLE lake.{table} AS {rows.format(0, 120)}")
    con.execute(f"INSERT INTO lake.{table} {rows.format(120, 200)}")
    con.execute(f"DELETE FROM lake.{table} WHERE id % 7 = 0")
    con.execute(f"UPDATE lake.{table} SET note = 'updated', amount = amount + 1 WHERE id % 11 = 0")


def facts(con, table):
    rows, sum_id, sum_amount, updated = con.execute(f"""SELECT COUNT(*), SUM(id), SUM(amount),
        COUNT(*) FILTER (WHERE note = 'updated') FROM lake.{table}""").fetchone()
    # iceberg_metadata lists the entries the current snapshot removed too.
    deletes = con.execute(f"""SELECT file_format, COUNT(*) FROM iceberg_metadata(lake.{table})
        WHERE content = 'POSITION_DELETES' AND status <> 'DELETED' GROUP BY file_format""").fetchall()
    return {
        "rows": rows,
        "sum_id": int(sum_id),
        "sum_amount": int(sum_amount),
        "updated": updated,
        "delete_files": {fmt.upper(): count for fmt, count in deletes},
    }


def main():
    command, catalog, s3_endpoint, warehouse, table = sys.argv[1:6]
    con = connect(catalog, s3_endpoint, warehouse)
    if command == "write":
        write(con, table)
    print(json.dumps(facts(con, table)))


if __name__ == "__main__":
    main()
