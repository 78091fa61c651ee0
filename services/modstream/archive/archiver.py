"""The archiver: decisions, verdicts and shadow scores from their topics into Iceberg tables.

Read → hold (``batch.Pending``) → when enough records wait or the oldest has waited long
enough, one commit per table → commit the Kafka offsets those commits free. Each table
commit records the offsets it covers (``core.lake``), so after a crash between the two
commits the records read again are skipped, not stored twice.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from modstream.archive.batch import Flush, Message, Pending, RecentIds, Row, row_for, unwritten, written_through
from modstream.core import lake, metrics
from modstream.core.archive import DECISIONS, SHADOW, TABLES, VERDICTS, Table
from modstream.core.kafka import kafka_consumer
from modstream.core.retry import retrying
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore

if TYPE_CHECKING:
    from pyiceberg.table import Table as IcebergTable

log = logging.getLogger("modstream.archive")
POLL_MS = 1000
# Per partition and fetch: read ahead while a batch is parsed (the client default, 1 MB, is ~1,000 decisions).
FETCH_BYTES = 8 * 2**20

REVOKE_FLUSH_SECONDS = 30.0
# Ids remembered per table to hold back a record published twice (~10 MB at most).
RECENT_IDS = 100_000


def tables_by_topic(settings: Settings) -> dict[str, Table]:
    return {
        settings.topic_decisions: DECISIONS,
        settings.topic_review_verdicts: VERDICTS,
        settings.topic_shadow: SHADOW,
    }


def append_unwritten(stored: "IcebergTable", table: Table, rows: list[Row]) -> list[Row]:
    """Append the rows ``stored`` does not hold yet in one commit, recording the offsets they
    cover (repeats' included); the rows appended (none when a replay finds them all there)."""
    written = lake.written_offsets(stored)
    new = unwritten(rows, written)
    if new:
        stored.append(
            table.rows([row.value for row in new if not row.repeat]),
            snapshot_properties={**lake.carried(stored), **lake.offsets_summary(written_through(new, written))},
        )
    return [row for row in new if not row.repeat]


class Observer(Protocol):
    """Told of every batch once its table commit landed (once: a replay skips what is stored)."""

    async def archived(self, table: str, records: Sequence[object]) -> None: ...


class Archiver:
    """One archiver process; several may share the topics' partitions (one consumer group)."""

    def __init__(self, settings: Settings, observers: Sequence[Observer] = ()) -> None:
        self.settings = settings
        self.store = ObjectStore(settings, pool_size=4)
        self._stored: dict[str, IcebergTable] = {}
        self.tables = tables_by_topic(settings)
        self.pending = Pending()
        self.recent = RecentIds(RECENT_IDS)
        self.last_durable: datetime | None = None
        self.failing_since: float | None = None
        self._observers = observers
        self._flushing = asyncio.Lock()
        self._opening: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event) -> None:
        bucket = self.settings.archive_bucket
        await retrying(lambda: asyncio.to_thread(self.store.ensure_bucket, bucket), "object store")
        # The tables there are open while the consumer joins its group (a few seconds on either
        # side: the catalog, the table metadata, pyiceberg's own imports), not in the first flush.
        self._opening = asyncio.create_task(self._open_tables())
        async with kafka_consumer(
            self.settings,
            group_id=self.settings.archive_group,
            auto_commit=False,
            max_partition_fetch_bytes=FETCH_BYTES,
        ) as consumer:
            consumer.subscribe(list(self.tables), listener=_FlushOnRevoke(lambda: self.flush(consumer)))
            log.info("archiving", extra={"topics": list(self.tables), "bucket": self.settings.archive_bucket})
            # One flush commits beside the reading of the next batch, never more: reading is
            # never further than one batch ahead of what is committed.
            in_flight: asyncio.Task[None] | None = None
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=self.settings.archive_flush_records)
                now = time.monotonic()
                for records in batches.values():
                    for record in records:
                        self._hold(
                            Message(record.topic, record.partition, record.offset, record.timestamp, record.value), now
                        )
                if self.pending.due(
                    time.monotonic(), self.settings.archive_flush_records, self.settings.archive_flush_seconds
                ):
                    if in_flight is not None:
                        await in_flight
                    in_flight = asyncio.create_task(self.flush(consumer))
            if in_flight is not None:
                await in_flight
            await self.flush(consumer)  # what was read before a clean stop

    def _hold(self, message: Message, now: float) -> None:
        row = row_for(message, self.tables[message.topic])
        if row.table.record is None:
            metrics.archive_unreadable.add(1, {"topic": message.topic})
            log.warning(
                "unreadable record kept in the archive's unreadable table",
                extra={"topic": message.topic, "partition": message.partition, "offset": message.offset},
            )
        elif not self.recent.first_time(row.table.name, getattr(row.value, row.table.id_column)):
            row = replace(row, repeat=True)
        self.pending.add(message, row, now)

    async def _open_tables(self) -> None:
        def open_all() -> None:
            # Only tables that exist: one is created when a flush first has rows for it.
            for table in TABLES.values():
                if lake.find_table(self.settings, table) is not None:
                    self._stored[table.name] = lake.open_table(self.settings, table)

        try:
            await asyncio.to_thread(open_all)
        except Exception as exc:
            # The first flush opens what is missing, and retries while the catalog is down.
            log.warning("could not open the archive's tables yet", extra={"error": repr(exc)[:300]})

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        """Commit what is held to the tables, then the Kafka offsets it frees; retried until done."""
        if self._opening is not None:
            await self._opening  # never two threads creating one table
        async with self._flushing:
            taken = self.pending.take()
            if not taken.records:
                return
            appended: dict[str, list[object]] = {}
            await retrying(lambda: self._write(taken, appended), "archive", transient=(Exception,), cap=30.0)
            self.failing_since = None
            self.last_durable = datetime.now(UTC)
            await self._tell(appended)
            offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in taken.offsets.items()}
            try:
                await consumer.commit(offsets)
            except Exception as exc:
                # Lost the partitions meanwhile (a rebalance): their next owner reads these
                # records again and finds them in the tables' recorded offsets.
                log.warning("offsets not committed; the records will be read again", extra={"error": repr(exc)})

    async def _tell(self, by_table: dict[str, list[object]]) -> None:
        for observer in self._observers:
            for name, records in by_table.items():
                try:
                    await observer.archived(name, records)
                except Exception as exc:
                    # What observers derive (drift) must never hold the archive up.
                    log.warning(
                        "an archive observer failed; the batch is archived all the same",
                        extra={"observer": type(observer).__name__, "table": name, "error": repr(exc)[:300]},
                    )

    async def _write(self, taken: Flush, appended: dict[str, list[object]]) -> None:
        try:
            # The tables commit side by side (each its own files and catalog row); a table
            # leaves ``taken`` once committed, so a retry commits only the rest.
            results = await asyncio.gather(
                *(self._commit_table(name, rows, taken, appended) for name, rows in list(taken.tables.items())),
                return_exceptions=True,
            )
            if failed := next((r for r in results if isinstance(r, BaseException)), None):
                raise failed
        except Exception:
            self.failing_since = self.failing_since or time.monotonic()
            raise

    async def _commit_table(self, name: str, rows: list[Row], taken: Flush, appended: dict[str, list[object]]) -> None:
        new = await asyncio.to_thread(self._commit, TABLES[name], rows)
        del taken.tables[name]
        appended[name] = [row.value for row in new]
        metrics.archived_records.add(len(new), {"table": name})
        metrics.archive_replayed.add(len(rows) - len(new), {"table": name})
        if new:
            metrics.archive_commits.add(1, {"table": name})
        log.info("archive commit", extra={"table": name, "records": len(new), "already_stored": len(rows) - len(new)})

    def _commit(self, table: Table, rows: list[Row]) -> list[Row]:
        stored = self._stored.get(table.name)
        if stored is None:
            stored = self._stored[table.name] = lake.open_table(self.settings, table)
        else:
            stored.refresh()  # another archiver, or maintenance, may have committed since
        return lake.committing(stored, lambda current: append_unwritten(current, table, rows))


class _FlushOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions move to another archiver, write what was read from them."""

    def __init__(self, flush: Callable[[], Awaitable[None]]) -> None:
        self._flush = flush

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        if not revoked:
            return
        try:
            # Bounded: a store that is down must not hold the whole group's rebalance.
            await asyncio.wait_for(self._flush(), REVOKE_FLUSH_SECONDS)
        except Exception as exc:
            log.warning(
                "could not write before giving partitions up; they will be read again", extra={"error": repr(exc)}
            )

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
