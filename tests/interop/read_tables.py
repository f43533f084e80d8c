"""Reads medallion's tables with PyIceberg and prints facts about them as JSON.

Usage: read_tables.py <lakehouse folder>
"""
import json
import sys
from pathlib import Path

import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog

lakehouse = Path(sys.argv[1]).resolve()
catalog = SqlCatalog(
    "medallion",
    uri=f"sqlite:///{lakehouse / 'catalog.db'}",
    warehouse=f"file://{lakehouse / 'warehouse'}",
)
facts = {}
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
        facts[name] = entry
print(json.dumps(facts))
