"""What the archiver holds between reading records and a durable file: pure, no I/O.

A record read from a topic becomes a row of its table under its day; the offsets it
frees are kept beside it and handed out only with the rows, so they are committed only
once the files that hold those rows are written.
"""

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
    day: str
    value: Any


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
        return Row(UNREADABLE, at.date().isoformat(), kept)
    occurred_at: datetime = getattr(record, "occurred_at")  # noqa: B009 - every Record has it
    return Row(table, occurred_at.astimezone(UTC).date().isoformat(), record)


@dataclass(frozen=True)
class Flush:
    """Rows grouped by table and day, and the offsets to commit once all of them are durable."""

    groups: dict[tuple[str, str], list[Any]]
    offsets: dict[tuple[str, int], int]

    @property
    def records(self) -> int:
        return sum(len(rows) for rows in self.groups.values())


@dataclass
class Pending:
    """Rows read since the last flush."""

    groups: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    count: int = 0
    oldest: float | None = None  # monotonic time of the first row waiting

    def add(self, message: Message, row: Row, now: float) -> None:
        self.groups.setdefault((row.table.name, row.day), []).append(row.value)
        # The next offset to read: what a commit stores.
        self.offsets[(message.topic, message.partition)] = message.offset + 1
        self.count += 1
        if self.oldest is None:
            self.oldest = now

    def due(self, now: float, max_records: int, max_seconds: float) -> bool:
        return self.count >= max_records or (self.oldest is not None and now - self.oldest >= max_seconds)

    def take(self) -> Flush:
        taken = Flush(self.groups, self.offsets)
        self.groups, self.offsets, self.count, self.oldest = {}, {}, 0, None
        return taken
