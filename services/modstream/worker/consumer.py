"""The worker's reader of the uploads topics: a plain aiokafka consumer in the worker's group.

Many records are handled at once (``worker_concurrency``); the offset committed on a
partition is only ever the end of its contiguous handled prefix (``offsets.Progress``),
so a crash, a SIGKILL or a rebalance can repeat records but never skip one. Work in flight
is bounded with aiokafka's own pause and resume, so the consumer keeps polling (and keeps
its place in the group) while a dependency is down and every slot waits. At a rebalance,
the partitions being given up are drained for a bounded time and their prefix committed
before the next owner reads them.

Faust's own stream consumer is not used for this: at a rebalance it could hand out,
drop and then commit past records (docs/architecture.md, "Consuming the uploads").
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from modstream.core.kafka import kafka_consumer
from modstream.core.settings import Settings
from modstream.worker.offsets import Gap, Progress
from modstream.worker.pipeline import Delivery

log = logging.getLogger("modstream.worker")
POLL_MS = 200
# How long partitions being given up may finish their records before the group moves on.
REVOKE_DRAIN_SECONDS = 10.0
# How long a stopping worker lets records in flight finish (a SIGTERM must end in 10 s).
STOP_DRAIN_SECONDS = 6.0

Handler = Callable[[Delivery], Awaitable[object]]


class UploadsConsumer:
    def __init__(self, settings: Settings, topics: list[str], handle: Handler) -> None:
        self.settings = settings
        self.topics = topics
        self.handle = handle
        self.progress: Progress[TopicPartition] = Progress()
        self.consumer: AIOKafkaConsumer | None = None
        self._tasks: dict[asyncio.Task[None], TopicPartition] = {}
        self._slot_freed = asyncio.Event()
        self._commit_lock = asyncio.Lock()

    def assignment(self) -> set[TopicPartition]:
        return set() if self.consumer is None else set(self.consumer.assignment())

    async def run(self, stop: asyncio.Event) -> None:
        """Read, hand out and commit until ``stop`` is set; then let work in flight finish
        (bounded), commit it and leave the group."""
        # A fresh start (the first, or after a failure): nothing from an earlier consumer counts.
        self.progress = Progress()
        # Range assignment gives partition N of both topics to one member, as Faust did: with
        # one partition each, one worker works and the other is idle (not ready).
        async with kafka_consumer(
            self.settings,
            group_id=self.settings.consumer_group,
            auto_commit=False,
            partition_assignment_strategy=(RangePartitionAssignor,),
        ) as consumer:
            self.consumer = consumer
            consumer.subscribe(self.topics, listener=_Rebalance(self))
            log.info("consuming", extra={"topics": self.topics, "group": self.settings.consumer_group})
            last_commit = time.monotonic()
            try:
                while not stop.is_set():
                    await self._poll(consumer)
                    if time.monotonic() - last_commit >= self.settings.consumer_commit_seconds:
                        await self.commit()
                        last_commit = time.monotonic()
            finally:
                await self._drain(set(self._tasks), STOP_DRAIN_SECONDS)
                await self.commit()
                self.consumer = None

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        room = self.settings.worker_concurrency - len(self._tasks)
        if room <= 0:
            # Full: stop fetching, but keep polling so the group knows this member is alive.
            consumer.pause(*consumer.assignment())
            self._slot_freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._slot_freed.wait(), POLL_MS / 1000)
            await consumer.getmany(timeout_ms=0)
            return
        if paused := consumer.paused():
            consumer.resume(*paused)
        batches = await consumer.getmany(timeout_ms=POLL_MS, max_records=room)
        for records in batches.values():
            for record in records:
                self._start(record)

    def _start(self, record: ConsumerRecord[bytes, bytes]) -> None:
        # Every record aiokafka returns is handled, even one of a partition whose assignment
        # the listener is still announcing: aiokafka has moved its position past it, so a
        # record left here would be skipped (how faust lost records).
        tp = TopicPartition(record.topic, record.partition)
        try:
            _report(self.progress.handed(tp, record.offset))
        except ValueError:
            log.error("record handed out twice, handled once", extra=_where(record))
            return
        delivery = Delivery(
            value=record.value,
            headers=[(k, v) for k, v in record.headers if isinstance(v, bytes)],
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        task = asyncio.create_task(self._handle(tp, delivery))
        self._tasks[task] = tp

    async def _handle(self, tp: TopicPartition, delivery: Delivery) -> None:
        try:
            await self.handle(delivery)
            self.progress.done(tp, delivery.offset)
        except Exception:
            # The handler waits out every outage itself; anything escaping it is a bug. The
            # record stays uncommitted (read again by the partition's next owner), never skipped.
            log.exception("record failed in the handler; not committed", extra=_where(delivery))
        finally:
            if (task := asyncio.current_task()) is not None:
                self._tasks.pop(task, None)
            self._slot_freed.set()

    async def commit(self) -> None:
        """Commit each partition's contiguous handled prefix where it moved."""
        consumer = self.consumer
        async with self._commit_lock:
            offsets = self.progress.to_commit()
            if not offsets or consumer is None:
                return
            try:
                await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
            except Exception as exc:
                # The group moved on (a rebalance) or the broker is away: the records stay
                # uncommitted and are read again by their next owner; nothing is skipped.
                log.warning("offsets not committed", extra={"error": repr(exc)[:300]})
                return
            self.progress.committed(offsets)

    async def _drain(self, tasks: set[asyncio.Task[None]], seconds: float) -> None:
        """Let ``tasks`` finish for up to ``seconds``; cancel what is left (never committed)."""
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=seconds)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("records still in flight abandoned, to be read again", extra={"records": len(pending)})
            await asyncio.wait(pending, timeout=2.0)
        for task in tasks:
            self._tasks.pop(task, None)

    async def revoked(self, partitions: list[TopicPartition]) -> None:
        """Before partitions move on: finish (bounded) and commit their records, then forget them."""
        leaving = set(partitions)
        mine = {task for task, tp in self._tasks.items() if tp in leaving}
        await self._drain(mine, REVOKE_DRAIN_SECONDS)
        await self.commit()
        for tp in leaving:
            self.progress.revoke(tp)

    async def assigned(self, partitions: list[TopicPartition]) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        for tp in partitions:
            # Where reading starts: the group's commit, else the partition's beginning; the
            # first record handed out is checked against it (a partition with no commit yet
            # is where faust skipped records).
            start = await consumer.committed(tp)
            if start is None:
                start = (await consumer.beginning_offsets([tp]))[tp]
            _report(self.progress.assign(tp, start))
        if partitions:
            log.info(
                "partitions assigned", extra={"partitions": sorted(f"{tp.topic}:{tp.partition}" for tp in partitions)}
            )


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, reader: UploadsConsumer) -> None:
        self._reader = reader

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._reader.revoked(revoked)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._reader.assigned(assigned)


def _report(gap: Gap | None) -> None:
    if gap is not None:
        tp = gap.partition
        assert isinstance(tp, TopicPartition)
        where = {"topic": tp.topic, "partition": tp.partition}
        log.error("the consumer skipped records", extra=where | {"expected": gap.expected, "got": gap.got})


def _where(record: ConsumerRecord[bytes, bytes] | Delivery) -> dict[str, object]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
