"""The archive's tables in Apache Iceberg: the catalog, commits that carry Kafka offsets, scans.

Each table of ``core.archive`` is an Iceberg table, partitioned by the day of
``occurred_at``, its files in the archive bucket (``s3://<archive_bucket>/iceberg/<table>/``)
and its current metadata recorded in a catalog: a sqlite file locally, PostgreSQL or an
Iceberg REST catalog in production (``Settings.archive_catalog``). Spark, Trino, Athena and
DuckDB read the tables as they are.

Every commit is a compare-and-swap on the table's current metadata, so writers in several
processes never overwrite each other; pyiceberg's own retry is switched off on these tables
(``commit.retry.num-retries`` 0) because a retry must re-plan against what the winner
wrote (the archiver re-checks its offsets, compaction re-reads its day): every writer goes
through ``committing``.

Which Kafka records a table already holds is in its current snapshot's summary
(``modstream.kafka-offsets``: per topic and partition, the offset after the last record
written), carried forward by every commit (``carried``). The archiver skips what is below it,
so a crash between a commit and the Kafka offset commit never stores a record twice — the
pattern of Iceberg's Kafka Connect sink.
"""

import functools
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa

from modstream.core.archive import TABLES, Table
from modstream.core.settings import Settings

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table as IcebergTable

log = logging.getLogger("modstream.archive")

OFFSETS = "modstream.kafka-offsets"
# Summary properties a commit of ours keeps from the snapshot before it.
CARRIED = (OFFSETS,)
COMMIT_ATTEMPTS = 30
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",
    "write.parquet.compression-codec": "zstd",
    # Each commit writes a new metadata file; keep the last few, delete the rest.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
}
DAY_FIELD = "occurred_day"

Offsets = dict[tuple[str, int], int]
T = TypeVar("T")


class ArchiveUnavailable(OSError):
    """The catalog or the object store behind the archive did not answer (or refused us)."""


def catalog(settings: Settings) -> "Catalog":
    """The archive's catalog, with the archive bucket's S3 server as every table's file store.

    Files go through s3fs (pyiceberg's ``FsspecFileIO``): pyiceberg's pyarrow FileIO sends
    ``aws-chunked`` bodies that the local S3 server stores verbatim, unreadable. botocore
    likewise adds checksums to bodies unless told to only when required; S3 itself needs none.
    """
    os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    if settings.s3_ca_file:
        os.environ.setdefault("AWS_CA_BUNDLE", str(settings.s3_ca_file))
    scheme = "https" if settings.s3_secure else "http"
    files = {
        "py-io-impl": "pyiceberg.io.fsspec.FsspecFileIO",
        "s3.endpoint": f"{scheme}://{settings.s3_endpoint}",
        "s3.access-key-id": settings.s3_access_key.get_secret_value(),
        "s3.secret-access-key": settings.s3_secret_key.get_secret_value(),
        "s3.region": settings.s3_region,
        "s3.connect-timeout": "5",
        "s3.request-timeout": "60",
    }
    return _catalog(catalog_uri(settings), f"s3://{settings.archive_bucket}/", tuple(sorted(files.items())))


@functools.lru_cache(maxsize=32)
def _catalog(uri: str, warehouse: str, files: tuple[tuple[str, str], ...]) -> "Catalog":
    # One per catalog and store: a SQL catalog opens an engine and checks its tables when made,
    # and every scan and commit asks for it.
    if uri.startswith(("http://", "https://")):
        from pyiceberg.catalog.rest import RestCatalog

        return RestCatalog("modstream", uri=uri, **dict(files))
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog("modstream", uri=uri, warehouse=warehouse, **dict(files))


def catalog_uri(settings: Settings) -> str:
    if uri := settings.archive_catalog.get_secret_value():
        return uri
    folder = settings.state_dir / "data"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'archive-catalog.db'}"


def identifier(settings: Settings, table: Table) -> tuple[str, str]:
    # The bucket names the namespace, so two archives in one catalog (the tests') never meet.
    return (settings.archive_bucket, table.name)


def table_location(settings: Settings, table: Table) -> str:
    # Beside, never inside, the folders of the Parquet layout before Iceberg (``migrate``).
    return f"s3://{settings.archive_bucket}/iceberg/{table.name}"


def find_table(settings: Settings, table: Table) -> "IcebergTable | None":
    """The table, or None when nothing has been archived in it yet."""
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return catalog(settings).load_table(identifier(settings, table))
    except NoSuchTableError:
        return None


def open_table(settings: Settings, table: Table) -> "IcebergTable":
    """The table, created (with its day partitions) when it does not exist."""
    from pyiceberg.exceptions import TableAlreadyExistsError
    from pyiceberg.transforms import DayTransform

    found = find_table(settings, table)
    if found is not None:
        return _with_layout_columns(found, table)
    lake = catalog(settings)
    lake.create_namespace_if_not_exists(settings.archive_bucket)
    try:
        with (
            lake.create_table_transaction(
                identifier(settings, table),
                schema=table.schema,
                location=table_location(settings, table),
                properties=TABLE_PROPERTIES,
            ) as created,
            created.update_spec() as spec,
        ):
            spec.add_field("occurred_at", DayTransform(), DAY_FIELD)
    except TableAlreadyExistsError:
        pass  # another archiver made it first
    return lake.load_table(identifier(settings, table))


def _with_layout_columns(stored: "IcebergTable", table: Table) -> "IcebergTable":
    """``stored`` with every column the layout has now: a column added to ``core.archive``
    since the table was made is added to it (Iceberg's schema evolution; old rows read null)."""
    if set(table.schema.names) <= {f.name for f in stored.schema().fields}:
        return stored
    with stored.update_schema() as update:
        update.union_by_name(table.schema)
    return stored


def committing(table: "IcebergTable", attempt: Callable[["IcebergTable"], T]) -> T:
    """``attempt(table)`` until its commit lands: after another writer's commit wins, the table
    is refreshed and ``attempt`` plans again from what is there now."""
    from pyiceberg.exceptions import CommitFailedException

    for tries in range(1, COMMIT_ATTEMPTS + 1):
        try:
            return attempt(table)
        except CommitFailedException:
            if tries == COMMIT_ATTEMPTS:
                raise
            log.info("another writer committed first; planning again", extra={"table": table.name()[-1]})
            time.sleep(random.uniform(0.05, 0.2) * min(tries, 10))
            table.refresh()
    raise AssertionError("unreachable")


def carried(table: "IcebergTable") -> dict[str, str]:
    """The summary properties every commit of ours copies from the current snapshot."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    summary = snapshot.summary
    return {key: value for key in CARRIED if summary is not None and (value := summary[key]) is not None}


def written_offsets(table: "IcebergTable") -> Offsets:
    """Per (topic, partition), the offset after the last record this table holds."""
    stored = carried(table).get(OFFSETS)
    if not stored:
        return {}
    return {(topic, int(p)): offset for topic, parts in json.loads(stored).items() for p, offset in parts.items()}


def offsets_summary(offsets: Mapping[tuple[str, int], int]) -> dict[str, str]:
    nested: dict[str, dict[str, int]] = {}
    for (topic, partition), offset in sorted(offsets.items()):
        nested.setdefault(topic, {})[str(partition)] = offset
    return {OFFSETS: json.dumps(nested, separators=(",", ":"))}


def day_filter(since: date | None, until: date | None) -> str:
    """An Iceberg row filter on ``occurred_at`` for days ``since``..``until``, inclusive."""
    bounds = []
    if since is not None:
        bounds.append(f"occurred_at >= '{_midnight(since).isoformat()}'")
    if until is not None:
        bounds.append(f"occurred_at < '{_midnight(until + timedelta(days=1)).isoformat()}'")
    return " AND ".join(bounds) or "True"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, clock.min, tzinfo=UTC)


def scan(settings: Settings, table: Table, *, since: date | None = None, until: date | None = None) -> pa.Table:
    """The table's rows on days ``since``..``until`` (inclusive) as Arrow, in its schema.

    Whole day partitions outside the range are pruned before any file is read.
    """
    try:
        stored = find_table(settings, table)
        if stored is None:  # nothing archived in this table yet
            return table.schema.empty_table()
        rows = stored.scan(row_filter=day_filter(since, until)).to_arrow()
    except (TypeError, AttributeError, KeyError, AssertionError):
        raise  # our mistake, not the servers'
    except Exception as exc:
        raise ArchiveUnavailable(f"the archive's table {table.name} cannot be read: {exc!r}"[:500]) from exc
    return rows.select(table.schema.names).cast(table.schema)


def snapshot_ids(settings: Settings, tables: Iterable[str] = tuple(TABLES)) -> dict[str, int | None]:
    """Each table's current snapshot id (None: nothing archived in it yet). Every commit (rows
    added, erased or compacted) makes a new one, so equal ids mean the archive holds what it held."""
    try:
        found = {name: find_table(settings, TABLES[name]) for name in tables}
    except (TypeError, AttributeError, KeyError, AssertionError):
        raise  # our mistake, not the servers'
    except Exception as exc:
        raise ArchiveUnavailable(f"the archive's catalog cannot be read: {exc!r}"[:500]) from exc
    return {
        name: snapshot.snapshot_id if table is not None and (snapshot := table.current_snapshot()) else None
        for name, table in found.items()
    }


def open_archive(
    settings: Settings, *, since: date | None = None, until: date | None = None
) -> "duckdb.DuckDBPyConnection":
    """An in-process DuckDB with a view per table over its rows on days ``since``..``until``.

    DuckDB queries Arrow that pyiceberg scans: DuckDB's own S3 and Iceberg access are
    extensions it downloads at run time.
    """
    import duckdb

    connection = duckdb.connect()
    for table in TABLES.values():
        connection.register(table.name, scan(settings, table, since=since, until=until))
    return connection
