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

from dataclasses import dataclass
from datetime import UTC, datetime

from modstream.archive.maintenance import expire, referenced
from modstream.core import lake
from modstream.core.archive import DECISIONS, SHADOW, VERDICTS, Table
from modstream.core.settings import Settings

SEARCHED: tuple[Table, ...] = (DECISIONS, VERDICTS, SHADOW)


@dataclass(frozen=True)
class Erased:
    table: str
    rows: int
    files_deleted: int
    snapshots_expired: int


def erase_events(settings: Settings, event_ids: list[str]) -> list[Erased]:
    """Delete the rows of ``event_ids`` from every table that holds some, then the files that
    still held them; what was removed where. Blocking."""
    from pyiceberg.expressions import In

    done: list[Erased] = []
    if not event_ids:
        return done
    matching = In(term="event_id", literals=set(event_ids))
    for table in SEARCHED:
        stored = lake.find_table(settings, table)
        if stored is None:
            continue
        rows = len(stored.scan(row_filter=matching, selected_fields=("event_id",)).to_arrow())
        if not rows:
            continue
        before = referenced(stored)
        lake.committing(stored, lambda t: t.delete(matching, snapshot_properties=lake.carried(t)))
        expired = expire(stored, older_than=datetime.now(UTC))
        stored.refresh()
        # The old data files, and the manifests and lists that pointed at them (a manifest keeps
        # each file's column bounds, which can be an erased id).
        gone = sorted(before - referenced(stored))
        if gone:
            stored.io.get_fs("s3").rm(gone)  # type: ignore[attr-defined]
        done.append(Erased(table.name, rows, len(gone), expired))
    return done
