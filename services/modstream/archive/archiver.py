"""The archiver: decisions, verdicts and shadow scores from their topics into Parquet files.

Read → hold (``batch.Pending``) → when enough records wait or the oldest has waited long
enough, write one file per table and day → commit the offsets those files free. Offsets
are committed only after every file of the flush is stored, so a crash at any point
loses nothing; it may write a record twice, which readers remove (one row per id).
"""

import asyncio
import io
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol
from uuid import uuid4

import pyarrow.parquet as pq
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from modstream.archive.batch import Flush, Message, Pending, row_for
from modstream.core import metrics
from modstream.core.archive import DECISIONS, SHADOW, TABLES, VERDICTS, Table, object_key
from modstream.core.kafka import kafka_consumer
from modstream.core.retry import retrying
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore

log = logging.getLogger("modstream.archive")
POLL_MS = 1000
PARQUET_TYPE = "application/vnd.apache.parquet"

REVOKE_FLUSH_SECONDS = 30.0


def tables_by_topic(settings: Settings) -> dict[str, Table]:
    return {
        settings.topic_decisions: DECISIONS,
        settings.topic_review_verdicts: VERDICTS,
        settings.topic_shadow: SHADOW,
    }


def parquet_bytes(table: Table, rows: list[object]) -> bytes:
    # Written whole to memory and stored with one PUT: the local S3 server mangles
    # pyarrow's own multipart writes (docs/architecture.md).
    buffer = io.BytesIO()
    pq.write_table(table.rows(rows), buffer, compression="zstd")
    return buffer.getvalue()


class Observer(Protocol):
    """Told of every batch once it is in durable files (before its offsets are committed:
    after a crash in between, a batch may be told again)."""

    async def archived(self, table: str, records: Sequence[object]) -> None: ...


class Archiver:
    """One archiver process; several may share the topics' partitions (one consumer group)."""

    def __init__(self, settings: Settings, observers: Sequence[Observer] = ()) -> None:
        self.settings = settings
        self.store = ObjectStore(settings, pool_size=4)
        self.tables = tables_by_topic(settings)
        self.pending = Pending()
        self.last_durable: datetime | None = None
        self.failing_since: float | None = None
        self._observers = observers
        self._flushing = asyncio.Lock()

    async def run(self, stop: asyncio.Event) -> None:
        bucket = self.settings.archive_bucket
        await retrying(lambda: asyncio.to_thread(self.store.ensure_bucket, bucket), "object store")
        async with kafka_consumer(self.settings, group_id=self.settings.archive_group, auto_commit=False) as consumer:
            consumer.subscribe(list(self.tables), listener=_FlushOnRevoke(lambda: self.flush(consumer)))
            log.info("archiving", extra={"topics": list(self.tables), "bucket": self.settings.archive_bucket})
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
                    await self.flush(consumer)
            await self.flush(consumer)  # what was read before a clean stop

    def _hold(self, message: Message, now: float) -> None:
        row = row_for(message, self.tables[message.topic])
        if row.table.record is None:
            metrics.archive_unreadable.add(1, {"topic": message.topic})
            log.warning(
                "unreadable record kept in the archive's unreadable table",
                extra={"topic": message.topic, "partition": message.partition, "offset": message.offset},
            )
        self.pending.add(message, row, now)

    async def flush(self, consumer: AIOKafkaConsumer) -> None:
        """Write what is held, then commit the offsets it frees; retried until it is done."""
        async with self._flushing:
            taken = self.pending.take()
            if not taken.records:
                return
            by_table: dict[str, list[object]] = {}
            for (name, _), rows in taken.groups.items():
                by_table.setdefault(name, []).extend(rows)
            await retrying(lambda: self._write(taken), "archive", transient=(Exception,), cap=30.0)
            self.failing_since = None
            self.last_durable = datetime.now(UTC)
            await self._tell(by_table)
            offsets = {TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in taken.offsets.items()}
            try:
                await consumer.commit(offsets)
            except Exception as exc:
                # Lost the partitions meanwhile (a rebalance): their next owner reads these
                # records again, and readers keep one row per id.
                log.warning("offsets not committed; the records will be archived again", extra={"error": repr(exc)})

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

    async def _write(self, taken: Flush) -> None:
        try:
            # A group leaves ``taken`` once stored, so a retry writes only the rest.
            for (name, day), rows in list(taken.groups.items()):
                table = TABLES[name]
                data = await asyncio.to_thread(parquet_bytes, table, rows)
                key = object_key(name, day, f"part-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid4().hex[:8]}")
                await self.store.aput(self.settings.archive_bucket, key, data, PARQUET_TYPE)
                del taken.groups[(name, day)]
                metrics.archived_records.add(len(rows), {"table": name})
                metrics.archive_files.add(1, {"table": name})
                log.info("archive file written", extra={"key": key, "records": len(rows), "bytes": len(data)})
        except Exception:
            self.failing_since = self.failing_since or time.monotonic()
            raise


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
