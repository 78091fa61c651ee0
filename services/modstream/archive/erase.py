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

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modstream.archive.maintenance import expire, referenced
from modstream.core import lake
from modstream.core.archive import DECISIONS, SHADOW, VERDICTS, Table
from modstream.core.settings import Settings

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table as IcebergTable

SEARCHED: tuple[Table, ...] = (DECISIONS, VERDICTS, SHADOW)
HELD_COLUMNS = ("event_id", "tenant", "bucket", "key", "sha256", "decision_id")


@dataclass(frozen=True)
class Erased:
    table: str
    rows: int
    files_deleted: int
    snapshots_expired: int


@dataclass(frozen=True)
class Held:
    """One archived record of an upload: where its image is, its digest and the decision."""

    event_id: str
    tenant: str
    bucket: str
    key: str
    sha256: str | None
    decision_id: str | None


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
    columns = tuple(
        c for c in ("event_id", "tenant", "bucket", "key", "sha256", "decision_id") if c in table.schema.names
    )
    rows = stored.scan(row_filter=In(term=column, literals=values), selected_fields=columns).to_arrow().to_pylist()
    return [Held(**{"sha256": None, "decision_id": None, **row}) for row in rows]


def erase_events(settings: Settings, event_ids: Collection[str]) -> list[Erased]:
    """Delete the rows of ``event_ids`` from every table that holds some, then the files that
    still held them; what was removed where. Blocking."""
    from pyiceberg.expressions import In

    if not event_ids:
        return []
    return erase_rows(settings, SEARCHED, In(term="event_id", literals=set(event_ids)))


def erase_rows(settings: Settings, tables: Collection[Table], matching: "str | BooleanExpression") -> list[Erased]:
    """Delete the rows ``matching`` from ``tables``, then the files that still held them. Blocking."""
    done: list[Erased] = []
    for table in tables:
        stored = lake.find_table(settings, table)
        if stored is None:
            continue
        rows = len(stored.scan(row_filter=matching, selected_fields=(table.id_column,)).to_arrow())
        if rows:
            files, expired = rewriting(stored, lambda t: t.delete(matching, snapshot_properties=lake.carried(t)))
            done.append(Erased(table.name, rows, files, expired))
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
