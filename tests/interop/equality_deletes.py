"""Writes an Iceberg v2 table with equality delete files into medallion's
embedded SQLite catalog, as Flink leaves a table it upserts into, and prints
as JSON what Spark (Iceberg Java's reader, the reference) reads of it and
what the spec says it holds:

  equality_deletes.py <lakehouse folder> <namespace.table>

Three data files and two equality delete files, committed in this order:
  1. ids 0..99, then ids 100..199: `tag` is null where id % 10 = 0;
  2. one snapshot adding two equality delete files: one on `id` (every
     multiple of 7 below 200), one on `tag` holding a null (a null deletes
     the rows whose tag is null: Iceberg compares nulls as equal);
  3. ids 200..209, written after the deletes: their sequence number is
     higher, so no delete applies to them (203 is a multiple of 7, 200 has
     a null tag).
PyIceberg 0.11 neither writes nor reads equality deletes; the files, the
delete manifest and the snapshot are written with its writers as
`position_deletes.py` writes position deletes, with `equality_ids` typed as
the spec types them (`spec_equality_ids`).
"""
import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg import manifest
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema
from pyiceberg.table.snapshots import Operation
from pyiceberg.typedef import Record
from pyiceberg.types import IntegerType, ListType, LongType, NestedField, StringType

from position_deletes import AddDeleteFiles, table_catalog

SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "tag", StringType(), required=False),
    NestedField(3, "amount", LongType(), required=False),
)


def spec_equality_ids():
    """PyIceberg 0.11 declares the manifests' `equality_ids` as list<long>;
    the spec says list<int>, and Iceberg Java fails on a long there."""
    data_file = manifest.DATA_FILE_TYPE[2]
    fields = [
        NestedField(
            field_id=135,
            name="equality_ids",
            field_type=ListType(element_id=136, element_type=IntegerType(), element_required=True),
            required=False,
        )
        if field.field_id == 135
        else field
        for field in data_file.fields
    ]
    manifest.DATA_FILE_TYPE[2] = manifest.StructType(*fields)


def rows(ids):
    return pa.table(
        {
            "id": ids,
            "tag": [None if i % 10 == 0 else f"t{i % 5}" for i in ids],
            "amount": [i * 3 for i in ids],
        }
    )


def equality_delete_file(table, name, field, values):
    """A Parquet equality delete file of one column, by its field id."""
    field_id, arrow_type = {"id": (1, pa.int64()), "tag": (2, pa.string())}[field]
    schema = pa.schema([pa.field(field, arrow_type, metadata={"PARQUET:field_id": str(field_id)})])
    location = f"{table.location()}/data/{name}"
    path = location.removeprefix("file://")
    pq.write_table(pa.table({field: values}, schema=schema), path)
    return DataFile.from_args(
        content=DataFileContent.EQUALITY_DELETES,
        file_path=location,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=len(values),
        file_size_in_bytes=Path(path).stat().st_size,
        equality_ids=[field_id],
    )


def spark_reads(metadata_location):
    """What Iceberg Java reads of the table, loaded from its metadata file."""
    sys.path.insert(0, os.path.dirname(__file__))
    from spark_tables import session

    spark = session(os.path.join(os.path.dirname(metadata_location), "unused-warehouse"))
    spark.sparkContext.setLogLevel("ERROR")
    table = spark.read.format("iceberg").load(metadata_location.removeprefix("file://"))
    row = table.selectExpr("COUNT(*) AS rows", "SUM(id) AS sum_id", "SUM(amount) AS sum_amount").first()
    spark.stop()
    return row.asDict()


def main(lakehouse, name):
    spec_equality_ids()
    catalog = table_catalog(lakehouse, name)
    table = catalog.create_table(name, SCHEMA, properties={"format-version": "2"})
    for start in (0, 100):
        table.append(rows(list(range(start, start + 100))))
    by_id = equality_delete_file(table, "ids-deletes.parquet", "id", list(range(0, 200, 7)))
    by_tag = equality_delete_file(table, "null-tag-deletes.parquet", "tag", [None])
    with table.transaction() as transaction:
        AddDeleteFiles(
            [by_id, by_tag], operation=Operation.DELETE, transaction=transaction, io=table.io
        ).commit()
    catalog.load_table(name).append(rows(list(range(200, 210))))
    kept = [i for i in range(200) if i % 7 != 0 and i % 10 != 0] + list(range(200, 210))
    spec = {"rows": len(kept), "sum_id": sum(kept), "sum_amount": 3 * sum(kept)}
    spark = spark_reads(catalog.load_table(name).metadata_location)
    print(json.dumps({"spec": spec, "spark": spark}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
