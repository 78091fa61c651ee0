"""Positive signals that a topic has been read to its end: what lets a test prove an absence.

End offsets are exact on the local broker because every producer sends one record per
batch (``MODSTREAM_PRODUCER_MAX_BATCH_SIZE``; docs/architecture.md).
"""

import asyncio
from collections import defaultdict

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from modstream.core.kafka import connection_options, kafka_consumer
from modstream.core.settings import Settings
from pydantic import ValidationError

from tests.records import R


async def end_offsets(settings: Settings, topic: str) -> dict[TopicPartition, int]:
    async with kafka_consumer(settings) as consumer:
        await consumer.topics()  # metadata first, so the partitions are known
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert partitions, f"no partitions for {topic}"
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends


async def records_so_far(settings: Settings, topic: str, kind: type[R]) -> dict[str, list[R]]:
    """Every ``kind`` record on ``topic`` up to its end as it is now, by event id."""
    ends = await end_offsets(settings, topic)
    found: dict[str, list[R]] = defaultdict(list)
    async with kafka_consumer(settings) as consumer:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            for batch in (await consumer.getmany(*ends, timeout_ms=500)).values():
                for message in batch:
                    if message.offset >= ends[TopicPartition(message.topic, message.partition)]:
                        continue
                    try:
                        record = kind.model_validate_json(message.value or b"")
                    except ValidationError:
                        continue  # another record type on the same topic
                    if isinstance(event_id := getattr(record, "event_id", None), str):
                        found[event_id].append(record)
    return found


async def committed(settings: Settings, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items()}


async def wait_until_committed_to_end(settings: Settings, group: str, topic: str, timeout: float = 300) -> None:
    """Wait until ``group`` has committed every record on ``topic`` as it is now: each one,
    replays included, has been handled to the end (offsets are committed only after that)."""
    ends = await end_offsets(settings, topic)
    async with asyncio.timeout(timeout):
        while True:
            done = await committed(settings, group, list(ends))
            # An empty partition has nothing to commit (its committed offset stays -1).
            if all(end == 0 or done.get(tp, -1) >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.5)
