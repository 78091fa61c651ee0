"""What the archiver holds between reading records and a table commit: pure, no I/O.

A record read from a topic becomes a row of its table, with the place it was read from; the
Kafka offsets it frees are kept beside it and handed out only with the rows, so they are
committed only once the tables hold those rows. The same places decide what a table
already holds after a replay (``unwritten``) and what its commit records (``written_through``).
"""

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from modstream.core.archive import UNREADABLE, Table, Unreadable


@dataclass(frozen=True)
class Message:
    """A record as the consumer read it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes | None


@dataclass(frozen=True)
class Row:
    table: Table
    value: Any
    topic: str
    partition: int
    offset: int
    # A second copy of a record held recently (``RecentIds``): not stored, but its offset is
    # recorded with the table's rows, so a replay passes it over too.
    repeat: bool = False


def row_for(message: Message, table: Table) -> Row:
    """The message as a row of ``table``; anything that is not that table's record is kept
    whole in the ``unreadable`` table, with the reason, rather than dropped."""
    if table.record is None:
        raise ValueError(f"table {table.name} has no record type to read messages as")
    try:
        record: BaseModel = table.record.model_validate_json(message.value or b"")
    except ValidationError as exc:
        at = datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)
        problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:5])
        kept = Unreadable(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            occurred_at=at,
            error=f"not a {table.record.__name__}: {problem}"[:2000],
            payload=message.value or b"",
        )
        return Row(UNREADABLE, kept, message.topic, message.partition, message.offset)
    return Row(table, record, message.topic, message.partition, message.offset)


def unwritten(rows: list[Row], written: dict[tuple[str, int], int]) -> list[Row]:
    """The rows a table does not hold yet, given the offset after the last record it holds
    per (topic, partition): a replay after a crash reads records again that it stored."""
    return [row for row in rows if row.offset >= written.get((row.topic, row.partition), 0)]


def written_through(rows: list[Row], written: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
    """``written`` moved past ``rows``: what the table's commit of them records."""
    after = dict(written)
    for row in rows:
        place = (row.topic, row.partition)
        after[place] = max(after.get(place, 0), row.offset + 1)
    return after


@dataclass(frozen=True)
class Flush:
    """Rows by table, and the Kafka offsets to commit once every table holds its rows."""

    tables: dict[str, list[Row]]
    offsets: dict[tuple[str, int], int]

    @property
    def records(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


@dataclass
class Pending:
    """Rows read since the last flush."""

    tables: dict[str, list[Row]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    count: int = 0
    oldest: float | None = None  # monotonic time of the first row waiting

    def add(self, message: Message, row: Row, now: float) -> None:
        self.tables.setdefault(row.table.name, []).append(row)
        # The next offset to read: what a commit stores.
        self.offsets[(message.topic, message.partition)] = message.offset + 1
        self.count += 1
        if self.oldest is None:
            self.oldest = now

    def due(self, now: float, max_records: int, max_seconds: float) -> bool:
        return self.count >= max_records or (self.oldest is not None and now - self.oldest >= max_seconds)

    def take(self) -> Flush:
        taken = Flush(self.tables, self.offsets)
        self.tables, self.offsets, self.count, self.oldest = {}, {}, 0, None
        return taken


class RecentIds:
    """The last ``capacity`` record ids of each table.

    A record published twice (a producer's retry after a lost acknowledgement) sits at two
    offsets, which the tables' recorded offsets cannot tell apart: its second copy is held
    back when it comes within this many records of the first.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._order: dict[str, deque[str]] = {}
        self._seen: dict[str, set[str]] = {}

    def first_time(self, table: str, record_id: str) -> bool:
        seen = self._seen.setdefault(table, set())
        if record_id in seen:
            return False
        order = self._order.setdefault(table, deque())
        order.append(record_id)
        seen.add(record_id)
        if len(order) > self.capacity:
            seen.discard(order.popleft())
        return True
