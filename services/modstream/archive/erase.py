"""Rows of given uploads erased from the archive's tables, and from every file that held them.

Iceberg's delete writes new files without the rows and a snapshot that no longer points at
the old ones; the old files stay, for time travel, until their snapshots expire. Erasure
cannot wait for that: after the delete commits, every snapshot but the current one is expired
and exactly the files that only those snapshots referenced are deleted: the old data files, and
the manifests that listed them with their column bounds. Files of a
write still in flight are referenced by no snapshot at all, so they are never touched here
(orphan removal, with its grace period, is maintenance's job). The tables lose their history
(time travel) with it. The unreadable table is not searched: its rows are raw payloads that
named no event the archive could read.
"""

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from modstream.archive.maintenance import expire, referenced
from modstream.core import lake
from modstream.core.archive import DECISIONS, SHADOW, VERDICTS, Table
from modstream.core.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table as IcebergTable

SEARCHED: tuple[Table, ...] = (DECISIONS, VERDICTS, SHADOW)


@dataclass(frozen=True)
class Erased:
    table: str
    rows: int
    files_deleted: int
    snapshots_expired: int
    seconds: float


@dataclass(frozen=True)
class Held:
    """One archived record of an upload: its table and day, where its image is, its digest and decision."""

    table: str
    event_id: str
    occurred_at: datetime
    tenant: str
    bucket: str
    key: str
    sha256: str | None = None
    decision_id: str | None = None


def held(settings: Settings, *, event_ids: Collection[str] = (), subject: str | None = None) -> list[Held]:
    """The decisions and verdicts archived of ``event_ids``, or of every upload ``subject`` made
    (decisions carry the uploader's id; their event ids then find the verdicts). Blocking."""
    found = _rows(settings, DECISIONS, "event_id", set(event_ids))
    if subject is not None:
        found += _rows(settings, DECISIONS, "subject", {subject})
    return found + _rows(settings, VERDICTS, "event_id", {*event_ids, *(h.event_id for h in found)})


def _rows(settings: Settings, table: Table, column: str, values: set[str]) -> list[Held]:
    from pyiceberg.expressions import In

    stored = lake.find_table(settings, table)
    # A table from before the column existed (uploads naming their uploader) has no row to match.
    if not values or stored is None or column not in {f.name for f in stored.schema().fields}:
        return []
    wanted = ("event_id", "occurred_at", "tenant", "bucket", "key", "sha256", "decision_id")
    columns = tuple(c for c in wanted if c in table.schema.names)
    rows = stored.scan(row_filter=In(term=column, literals=values), selected_fields=columns).to_arrow().to_pylist()
    return [Held(table=table.name, **row) for row in rows]


def erase_events(settings: Settings, event_ids: Collection[str], found: list[Held] | None = None) -> list[Erased]:
    """Delete the rows of ``event_ids`` from every table that holds some, then the files that
    still held them; what was removed where. Blocking.

    Only the days on which ``held`` found their rows (``found``, or looked up here) are read:
    a delete rewrites the files it reads, and event ids, being random, are in every file's
    bounds, so without the days every file of the table would be read in full. A shadow score
    is made with its decision: its day, or the next one just after midnight."""
    if not event_ids:
        return []
    found = held(settings, event_ids=event_ids) if found is None else found
    ids = ", ".join(f"'{e}'" for e in sorted(set(event_ids)))  # event ids hold no quote (EventId)
    decided = {h.occurred_at.date() for h in found if h.table == DECISIONS.name}
    days = {
        DECISIONS.name: decided,
        VERDICTS.name: {h.occurred_at.date() for h in found if h.table == VERDICTS.name},
        SHADOW.name: decided | {day + timedelta(days=1) for day in decided},
    }
    done = []
    for table in SEARCHED:
        if days[table.name]:
            done += erase_rows(settings, [table], f"event_id IN ({ids}) AND ({_on(days[table.name])})")
    return done


def _on(days: set[date]) -> str:
    return " OR ".join(f"({lake.day_filter(day, day)})" for day in sorted(days))


def erase_rows(settings: Settings, tables: Collection[Table], matching: "str | BooleanExpression") -> list[Erased]:
    """Delete the rows ``matching`` from ``tables``, then the files that still held them. Blocking."""
    done: list[Erased] = []
    for table in tables:
        began = time.perf_counter()
        stored = lake.find_table(settings, table)
        if stored is None:
            continue
        rows = len(stored.scan(row_filter=matching, selected_fields=(table.id_column,)).to_arrow())
        if rows:
            files, expired = rewriting(stored, lambda t: t.delete(matching, snapshot_properties=lake.carried(t)))
            done.append(Erased(table.name, rows, files, expired, round(time.perf_counter() - began, 3)))
    return done


def rewriting(stored: "IcebergTable", change: Callable[["IcebergTable"], object]) -> tuple[int, int]:
    """Commit ``change`` (a delete or an overwrite), expire every snapshot but the new current
    one and delete exactly the files only those referenced: no older file keeps what the change
    took out. How many files were deleted and snapshots expired."""
    before = referenced(stored)
    lake.committing(stored, change)
    expired = expire(stored, older_than=datetime.now(UTC))
    stored.refresh()
    # The old data files, and the manifests and lists that pointed at them (a manifest keeps
    # each file's column bounds, which can be an erased id).
    gone = sorted(before - referenced(stored))
    if gone:
        stored.io.get_fs("s3").rm(gone)  # type: ignore[attr-defined]
    return len(gone), expired
