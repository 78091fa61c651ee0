"""Moving an archive in the Parquet layout before Iceberg into the tables, row for row.

The old layout: ``s3://<archive_bucket>/<table>/date=YYYY-MM-DD/part-….parquet``, where a
record may be stored twice (its archiver committed Kafka offsets after the file, so a crash in
between wrote it again). Every row read is counted as exactly one of: a repeat of a record
read before (same id), a record the table already holds (a migration run before, or the
archiver), or a row written — and the three must add up to what was read.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from modstream.core import lake
from modstream.core.archive import TABLES, Table
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore

if TYPE_CHECKING:
    import pyarrow.fs as pafs
    from pyiceberg.table import Table as IcebergTable

OLD_PARTITION = "date"
BATCH_ROWS = 100_000


@dataclass(frozen=True)
class Migrated:
    table: str
    files: int
    read: int
    repeated: int
    already_stored: int
    written: int

    @property
    def balanced(self) -> bool:
        return self.read == self.repeated + self.already_stored + self.written


class MigrationError(Exception):
    """The rows do not add up: nothing was deleted, and the tables say what was written."""


def s3_filesystem(settings: Settings) -> "pafs.S3FileSystem":
    """The archive bucket through pyarrow's own S3 client (reads are sound on every S3 server)."""
    import pyarrow.fs as pafs

    return pafs.S3FileSystem(
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        endpoint_override=settings.s3_endpoint,
        scheme="https" if settings.s3_secure else "http",
        region=settings.s3_region,
        tls_ca_file_path=str(settings.s3_ca_file) if settings.s3_ca_file else None,
        connect_timeout=5,
        request_timeout=60,
    )


def old_files(settings: Settings, table: Table) -> list[str]:
    """The table's Parquet files in the old layout (paths without the scheme)."""
    import pyarrow.fs as pafs

    filesystem = s3_filesystem(settings)
    listed = filesystem.get_file_info(
        pafs.FileSelector(f"{settings.archive_bucket}/{table.name}", allow_not_found=True)
    )
    days = [info.path for info in listed if info.type == pafs.FileType.Directory and f"/{OLD_PARTITION}=" in info.path]
    files: list[str] = []
    for day in sorted(days):
        files += sorted(
            info.path
            for info in filesystem.get_file_info(pafs.FileSelector(day, recursive=True))
            if info.type == pafs.FileType.File and info.path.endswith(".parquet")
        )
    return files


def migrate(settings: Settings, progress: Callable[[str, int, int], None] = lambda *_: None) -> list[Migrated]:
    """Every old-layout table into its Iceberg table; ``progress(table, files done, files)``.

    Raises ``MigrationError`` when a table's counts do not add up.
    """
    import pyarrow.parquet as pq

    filesystem = s3_filesystem(settings)
    done = []
    for table in TABLES.values():
        files = old_files(settings, table)
        if not files:
            continue
        stored = lake.open_table(settings, table)
        held = set(lake.scan(settings, table).column(table.id_column).to_pylist())
        read = repeated = already = written = 0
        seen: set[str] = set()
        batch: list[pa.Table] = []
        for number, path in enumerate(files, 1):
            rows = pq.read_table(path, filesystem=filesystem, schema=table.schema)
            read += rows.num_rows
            ids = rows.column(table.id_column).to_pylist()
            keep = []
            for i, record_id in enumerate(ids):
                if record_id in seen:
                    repeated += 1
                elif record_id in held:
                    already += 1
                    seen.add(record_id)
                else:
                    keep.append(i)
                    seen.add(record_id)
            if keep:
                batch.append(rows.take(pa.array(keep)))
            if sum(b.num_rows for b in batch) >= BATCH_ROWS or number == len(files):
                written += _append(stored, batch)
                batch = []
            progress(table.name, number, len(files))
        migrated = Migrated(table.name, len(files), read, repeated, already, written)
        if not migrated.balanced:
            raise MigrationError(f"{table.name}: the rows do not add up: {migrated}")
        done.append(migrated)
    return done


def _append(stored: "IcebergTable", batch: list[pa.Table]) -> int:
    if not batch:
        return 0
    rows = pa.concat_tables(batch)
    lake.committing(stored, lambda current: current.append(rows, snapshot_properties=lake.carried(current)))
    return int(rows.num_rows)


def delete_old_files(settings: Settings, migrated: list[Migrated]) -> int:
    """Delete the old layout's files of tables whose migration balanced; how many.

    Through the object store's client: pyarrow's deletes leave a "directory" marker behind,
    an empty-segment key that S3 servers may refuse."""
    store = ObjectStore(settings)
    deleted = 0
    for result in migrated:
        if not result.balanced:
            continue
        for path in old_files(settings, TABLES[result.table]):
            store.delete(settings.archive_bucket, path.removeprefix(f"{settings.archive_bucket}/"))
            deleted += 1
    return deleted
