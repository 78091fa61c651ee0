"""The worker's uploads reader on the real broker: commits only a contiguous handled prefix,
hands out every record through rebalances, and bounds the records in flight."""

import asyncio
import logging
import random
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from modstream.bench.ledger import committed_offsets
from modstream.core.kafka import connection_options, kafka_producer
from modstream.core.settings import Settings
from modstream.worker.consumer import UploadsConsumer
from modstream.worker.pipeline import Delivery

pytestmark = pytest.mark.timeout(180)


async def new_topic(settings: Settings, partitions: int, records: int) -> str:
    name = f"consumer-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    async with kafka_producer(settings) as producer:
        await asyncio.gather(
            *(producer.send_and_wait(name, f"{i}".encode(), partition=i % partitions) for i in range(records))
        )
    return name


def reader_settings(settings: Settings, concurrency: int = 8) -> Settings:
    return settings.model_copy(
        update={
            "consumer_group": f"g-{uuid.uuid4().hex[:8]}",
            "worker_concurrency": concurrency,
            "consumer_commit_seconds": 0.2,
        }
    )


async def until(condition: Callable[[], bool], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the handlers below count; no event to wait on
            await asyncio.sleep(0.05)


async def test_an_offset_in_flight_holds_the_commit_on_the_broker(stack_settings: Settings) -> None:
    settings = reader_settings(stack_settings)
    topic = await new_topic(settings, 1, 8)
    release = asyncio.Event()
    handled: set[int] = set()

    async def handle(delivery: Delivery) -> None:
        if delivery.offset == 4:
            await release.wait()
        handled.add(delivery.offset)

    reader = UploadsConsumer(settings, [topic], handle)
    stop = asyncio.Event()
    running = asyncio.create_task(reader.run(stop))
    try:
        await until(lambda: handled == {0, 1, 2, 3, 5, 6, 7})
        await reader.commit()
        assert await committed_offsets(settings, settings.consumer_group, topic, [0]) == {0: 4}
        release.set()
        await until(lambda: 4 in handled)
        await reader.commit()
        assert await committed_offsets(settings, settings.consumer_group, topic, [0]) == {0: 8}
    finally:
        stop.set()
        await running


async def test_every_record_is_handed_out_through_joins_and_leaves(
    stack_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Three readers in one group join and leave while 600 records over 4 partitions with no
    commit yet are handled in random order: every offset is handled, the final commit is
    the end, and no reader saw a hole."""
    settings = reader_settings(stack_settings)
    topic = await new_topic(settings, 4, 600)
    handled: Counter[tuple[int, int]] = Counter()
    most_in_flight = 0
    in_flight = 0
    rng = random.Random(7)

    async def handle(delivery: Delivery) -> None:
        nonlocal in_flight, most_in_flight
        in_flight += 1
        most_in_flight = max(most_in_flight, in_flight)
        try:
            await asyncio.sleep(rng.uniform(0, 0.02))
            handled[(delivery.partition, delivery.offset)] += 1
        finally:
            in_flight -= 1

    stops = [asyncio.Event() for _ in range(3)]
    readers = [UploadsConsumer(settings, [topic], handle) for _ in range(3)]
    caplog.set_level(logging.ERROR, logger="modstream.worker")
    tasks = [asyncio.create_task(readers[0].run(stops[0]))]
    await until(lambda: len(handled) >= 20)
    tasks.append(asyncio.create_task(readers[1].run(stops[1])))  # joins: a rebalance mid-flow
    await until(lambda: len(handled) >= 150)
    tasks.append(asyncio.create_task(readers[2].run(stops[2])))
    await until(lambda: len(handled) >= 300)
    stops[1].set()  # leaves
    await tasks[1]
    await until(lambda: len(handled) == 600)
    for stop in stops:
        stop.set()
    await asyncio.gather(*tasks)
    expected = {(i % 4, i // 4) for i in range(600)}
    assert set(handled) == expected
    commits = await committed_offsets(settings, settings.consumer_group, topic, [0, 1, 2, 3])
    assert commits == {p: 150 for p in range(4)}
    assert not [r for r in caplog.records if "skipped" in r.getMessage()]
    # Two readers per partition at most (one gave it up while its records finished).
    assert max(handled.values()) <= 2
    assert 0 < most_in_flight <= 3 * settings.worker_concurrency


async def test_records_in_flight_never_exceed_the_concurrency(stack_settings: Settings) -> None:
    settings = reader_settings(stack_settings, concurrency=5)
    topic = await new_topic(settings, 2, 60)
    in_flight, most, count = 0, 0, 0

    async def handle(delivery: Delivery) -> None:
        nonlocal in_flight, most, count
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        count += 1

    stop = asyncio.Event()
    reader = UploadsConsumer(settings, [topic], handle)
    running = asyncio.create_task(reader.run(stop))
    try:
        await until(lambda: count == 60)
    finally:
        stop.set()
        await running
    assert most == 5
