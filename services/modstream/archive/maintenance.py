"""Keeping the archive's tables small and tidy: compaction, snapshot expiry, orphan removal.

Every archiver commit adds a small file per table and day, so a day of traffic leaves
thousands; readers pay per file. ``compact`` rewrites each day that has several small files
into as few as the table's target size allows (one commit per day; a day is read whole into
memory, so days over ``max_day_bytes`` are left to an engine built for it, e.g. Spark's
``rewrite_data_files``). ``expire`` drops snapshots older than the retention (the current one
always stays), and ``remove_orphans`` deletes the files no remaining snapshot references —
those expired snapshots held, and those of writes that never committed — once they are older
than a grace period, so a write about to commit keeps its files.
"""

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from modstream.core import lake
from modstream.core.archive import TABLES, Table
from modstream.core.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.table import Table as IcebergTable

log = logging.getLogger("modstream.archive")

SMALL_FILE_BYTES = 64 * 1024 * 1024
MAX_DAY_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class Maintained:
    """What one table's maintenance did."""

    table: str
    files_before: int
    files_after: int
    days_compacted: int
    days_too_large: int
    snapshots_expired: int
    orphans_removed: int


def maintain(
    settings: Settings,
    *,
    retain: timedelta,
    grace: timedelta = timedelta(hours=1),
    small_file_bytes: int = SMALL_FILE_BYTES,
    max_day_bytes: int = MAX_DAY_BYTES,
) -> list[Maintained]:
    """Compact, expire and remove orphans in every archive table that exists."""
    done = []
    for table in TABLES.values():
        stored = lake.find_table(settings, table)
        if stored is None:
            continue
        before = len(data_files(stored))
        compacted, too_large = compact(stored, table, small_file_bytes=small_file_bytes, max_day_bytes=max_day_bytes)
        expired = expire(stored, older_than=datetime.now(UTC) - retain)
        orphans = remove_orphans(stored, older_than=datetime.now(UTC) - grace)
        done.append(Maintained(table.name, before, len(data_files(stored)), compacted, too_large, expired, orphans))
    return done


def data_files(stored: "IcebergTable") -> list[tuple[date, int]]:
    """(day, bytes) of each data file in the current snapshot."""
    if stored.current_snapshot() is None:
        return []
    files = stored.inspect.files().select(["partition", "file_size_in_bytes"]).to_pylist()
    return [(f["partition"][lake.DAY_FIELD], f["file_size_in_bytes"]) for f in files]


def days_to_compact(files: list[tuple[date, int]], small_file_bytes: int) -> list[date]:
    """Days holding two or more small files, oldest first."""
    small = Counter(day for day, size in files if size < small_file_bytes)
    return sorted(day for day, count in small.items() if count >= 2)


def compact(stored: "IcebergTable", table: Table, *, small_file_bytes: int, max_day_bytes: int) -> tuple[int, int]:
    """Rewrite each day with several small files as one commit; (days compacted, days skipped
    as too large to rewrite in memory)."""
    compacted = too_large = 0
    files = data_files(stored)  # rewriting one day leaves the others' files as they are
    for day in days_to_compact(files, small_file_bytes):
        size = sum(b for d, b in files if d == day)
        if size > max_day_bytes:
            log.warning(
                "archive day too large to compact here", extra={"table": table.name, "day": str(day), "bytes": size}
            )
            too_large += 1
            continue
        lake.committing(stored, partial(_rewrite_day, day=day))
        compacted += 1
    return compacted, too_large


def _rewrite_day(stored: "IcebergTable", day: date) -> None:
    # Planned from the table as it is now: a commit that landed meanwhile is in what is read.
    whole_day = lake.day_filter(day, day)
    rows = stored.scan(row_filter=whole_day).to_arrow()
    stored.overwrite(rows, overwrite_filter=whole_day, snapshot_properties=lake.carried(stored))


def expire(stored: "IcebergTable", *, older_than: datetime) -> int:
    """Drop the snapshots older than ``older_than`` but the current one; how many."""
    cutoff = older_than.timestamp() * 1000

    def attempt(table: "IcebergTable") -> int:
        head = table.current_snapshot()
        ids = [
            s.snapshot_id
            for s in table.snapshots()
            if s.timestamp_ms < cutoff and head and s.snapshot_id != head.snapshot_id
        ]
        if ids:
            table.maintenance.expire_snapshots().by_ids(ids).commit()
        return len(ids)

    return lake.committing(stored, attempt)


def referenced(stored: "IcebergTable") -> set[str]:
    """Every file the table's metadata points at: data files and manifests of every snapshot
    kept, their manifest lists, the current and logged metadata files."""
    paths = {stored.metadata_location, *(entry.metadata_file for entry in stored.metadata.metadata_log)}
    paths.update(s.manifest_list for s in stored.snapshots())
    if stored.snapshots():
        paths.update(stored.inspect.all_manifests().column("path").to_pylist())
        paths.update(stored.inspect.all_files().column("file_path").to_pylist())
    return {_bare(path) for path in paths}


def remove_orphans(stored: "IcebergTable", *, older_than: datetime) -> int:
    """Delete the table's data and metadata files nothing references, written before
    ``older_than``; how many."""
    stored.refresh()
    keep = referenced(stored)
    filesystem = stored.io.get_fs("s3")  # type: ignore[attr-defined]
    orphans = []
    for folder in ("data", "metadata"):
        prefix = _bare(f"{stored.location()}/{folder}")
        if not filesystem.exists(prefix):
            continue
        for path, info in filesystem.find(prefix, detail=True).items():
            written = info.get("LastModified")
            if path not in keep and written is not None and written < older_than:
                orphans.append(path)
    if orphans:
        filesystem.rm(orphans)
        log.info("orphan files removed", extra={"table": stored.name()[-1], "files": len(orphans)})
    return len(orphans)


def _bare(path: str) -> str:
    return path.removeprefix("s3://").removeprefix("s3a://")


async def every(period: float, stop: asyncio.Event, work: Callable[[], object], what: str) -> None:
    """``work`` (blocking: it runs in a thread) every ``period`` seconds until ``stop``; a failed
    run is logged and tried again next time (archiving never waits for it). 0 seconds: never."""
    while period and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), period)
        if stop.is_set():
            return
        try:
            await asyncio.to_thread(work)
        except Exception as exc:
            log.warning(f"archive {what} failed; trying again later", extra={"error": repr(exc)[:500]})


def maintain_logged(settings: Settings) -> None:
    """``maintain`` with the settings' snapshot retention, each table's outcome logged."""
    for done in maintain(settings, retain=timedelta(hours=settings.archive_snapshot_retention_hours)):
        log.info("archive table maintained", extra=asdict(done))
