"""Writes an Iceberg v2 table with position deletes into medallion's embedded
SQLite catalog, as a merge-on-read engine (Spark, DuckDB) leaves it after a
DELETE, and prints what PyIceberg reads of it as JSON:

  position_deletes.py <lakehouse folder> <namespace.table>

The table gets two data files of 100 rows each (ids 0..99, 100..199), then
one snapshot that adds a position delete file removing the rows whose id is
a multiple of 7 from both. PyIceberg 0.11 reads position deletes but does not
write them (its deletes are copy-on-write), so the delete file, its delete
manifest and the snapshot are written here with PyIceberg's own writers, as
Iceberg Java's RowDelta commits them: the delete manifest is added to the
parent's manifests, and its entries inherit the new sequence number.
"""
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.manifest import (
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestWriterV2,
)
from pyiceberg.schema import Schema
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _FastAppendFiles
from pyiceberg.typedef import Record
from pyiceberg.types import LongType, NestedField, StringType

# The reserved field ids of a position delete file (Iceberg spec).
FILE_PATH_ID = 2147483546
POS_ID = 2147483545


class DeleteManifestWriter(ManifestWriterV2):
    """A v2 manifest of delete files."""

    def content(self):
        return ManifestContent.DELETES

    @property
    def _meta(self):
        return {**super()._meta, "content": "deletes"}


class AddDeleteFiles(_FastAppendFiles):
    """A snapshot that keeps every manifest of its parent and adds one
    delete manifest listing `delete_files`."""

    def __init__(self, delete_files, **kwargs):
        super().__init__(**kwargs)
        self._delete_files = delete_files

    def _manifests(self):
        metadata = self._transaction.table_metadata
        with DeleteManifestWriter(
            spec=metadata.spec(),
            schema=metadata.schema(),
            output_file=self.new_manifest_output(),
            snapshot_id=self._snapshot_id,
            avro_compression=self._compression,
        ) as writer:
            for delete_file in self._delete_files:
                writer.add(
                    ManifestEntry.from_args(
                        status=ManifestEntryStatus.ADDED,
                        snapshot_id=self._snapshot_id,
                        sequence_number=None,
                        file_sequence_number=None,
                        data_file=delete_file,
                    )
                )
        return super()._manifests() + [writer.to_manifest_file()]

    def _summary(self, snapshot_properties=None):
        # The collector counts files by their content: the delete files
        # give added-position-deletes and the totals readers show.
        self._added_data_files = list(self._delete_files)
        try:
            return super()._summary(snapshot_properties or {})
        finally:
            self._added_data_files = []


def position_delete_file(table, positions):
    """A Parquet position delete file of (data file, row position) pairs."""
    schema = pa.schema(
        [
            pa.field("file_path", pa.string(), nullable=False, metadata={"PARQUET:field_id": str(FILE_PATH_ID)}),
            pa.field("pos", pa.int64(), nullable=False, metadata={"PARQUET:field_id": str(POS_ID)}),
        ]
    )
    rows = pa.table(
        {"file_path": [p for p, _ in positions], "pos": [n for _, n in positions]}, schema=schema
    )
    location = f"{table.location()}/data/positions-deletes.parquet"
    path = location.removeprefix("file://")
    pq.write_table(rows, path)
    return DataFile.from_args(
        content=DataFileContent.POSITION_DELETES,
        file_path=location,
        file_format=FileFormat.PARQUET,
        partition=Record(),
        record_count=len(positions),
        file_size_in_bytes=Path(path).stat().st_size,
    )


def table_catalog(lakehouse, name):
    """medallion's embedded catalog in the `lakehouse` folder, holding the
    namespace of the table `name`."""
    lakehouse = Path(lakehouse).resolve()
    catalog = SqlCatalog(
        "medallion",
        uri=f"sqlite:///{lakehouse / 'catalog.db'}",
        warehouse=f"file://{lakehouse / 'warehouse'}",
    )
    namespace, _ = name.split(".")
    catalog.create_namespace_if_not_exists(namespace)
    return catalog


def main(lakehouse, name):
    catalog = table_catalog(lakehouse, name)
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "name", StringType(), required=False),
    )
    table = catalog.create_table(name, schema, properties={"format-version": "2"})
    for start in (0, 100):
        ids = list(range(start, start + 100))
        table.append(pa.table({"id": ids, "name": [f"n{i}" for i in ids]}))
    table = catalog.load_table(name)
    positions = []
    for task in table.scan().plan_files():
        first = pq.read_table(task.file.file_path.removeprefix("file://"), columns=["id"])["id"][0].as_py()
        positions += [(task.file.file_path, i) for i in range(100) if (first + i) % 7 == 0]
    delete_file = position_delete_file(table, sorted(positions))
    with table.transaction() as transaction:
        AddDeleteFiles(
            [delete_file],
            operation=Operation.DELETE,
            transaction=transaction,
            io=table.io,
        ).commit()
    rows = catalog.load_table(name).scan().to_arrow()
    print(json.dumps({"rows": rows.num_rows, "sum_id": sum(rows["id"].to_pylist()), "deleted": len(positions)}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
