"""One event never holds its partition, and two copies of one event never give two decisions.

Events are produced with confluent-kafka (librdkafka), a client nobody here wrote.
"""

import asyncio
import subprocess
import time

import pytest
from aiokafka import TopicPartition
from confluent_kafka import Producer
from modstream.bench.ledger import committed
from modstream.core.events import ErrorReason, ImageUploaded, ModerationDecision, Outcome
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient

from tests import images
from tests.offsets import records_so_far, wait_until_committed_to_end
from tests.records import decision_log

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
COPIES = 300


def producer(settings: Settings) -> Producer:
    # One record per batch: the local broker reports end offsets wrongly for batches of several.
    return Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all", "batch.num.messages": 1})


def produce(settings: Settings, events: list[ImageUploaded], copies: int = 1) -> list[tuple[int, int]]:
    """Each event ``copies`` times back to back, keyed by event id; (partition, offset) of each record."""
    client = producer(settings)
    placed: list[tuple[int, int]] = []

    def delivered(error: object, message: object) -> None:
        assert error is None, error
        placed.append((message.partition(), message.offset()))  # type: ignore[attr-defined]

    for event in events:
        for _ in range(copies):
            client.produce(settings.topic_uploads, event.to_bytes(), event.event_id.encode(), on_delivery=delivered)
    assert client.flush(60) == 0, "records left undelivered"
    return placed


async def test_an_object_the_store_cannot_serve_is_an_error_and_its_partition_moves_on(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    # The local S3 server resets the connection for a 1,000-byte key while it serves every other request.
    poison = ImageUploaded.new(tenant="e2e", bucket=worker_settings.uploads_bucket, key="k" * 1000)
    async with decision_log(worker_settings) as decisions:
        [(partition, offset)] = produce(worker_settings, [poison])
        started = time.monotonic()
        assert await decisions.wait_for([poison.event_id], timeout=120) == 1
        waited = time.monotonic() - started
        [decision] = decisions.all(poison.event_id)
        # Another event on the same partition, after the poison: decided, and committed past both.
        async with UploadClient(worker_settings) as client:
            stored = await client.upload_image(images.varied_images(1, seed=11)[0][1], "e2e")
        follower = ImageUploaded.new(tenant="e2e", bucket=stored.bucket, key=stored.key)
        follower_at = produce_to(worker_settings, follower, partition)
        assert await decisions.wait_for([follower.event_id], timeout=120) == 1
    assert decision.decision is Outcome.ERROR and decision.error is not None
    assert decision.error.reason is ErrorReason.FETCH_FAILED, decision.error
    assert "object store is up but failed this call 8 times" in decision.error.message
    assert decisions.first(follower.event_id).decision is not Outcome.ERROR
    tp = TopicPartition(worker_settings.topic_uploads, partition)
    seen: dict[TopicPartition, int] = {}
    for _ in range(120):
        seen = await committed(worker_settings, worker_settings.consumer_group, [tp])
        if seen.get(tp, -1) > follower_at:
            break
        await asyncio.sleep(0.5)
    assert seen.get(tp, -1) > follower_at, f"committed {seen}, poison at {offset}, follower at {follower_at}"
    assert follower_at > offset
    print(f"\npoison object decided fetch_failed after {waited:.1f} s; partition {partition} committed past it")


def produce_to(settings: Settings, event: ImageUploaded, partition: int) -> int:
    client = producer(settings)
    offsets: list[int | None] = []
    client.produce(
        settings.topic_uploads,
        event.to_bytes(),
        event.event_id.encode(),
        partition=partition,
        on_delivery=lambda error, message: offsets.append(message.offset()),
    )
    assert client.flush(60) == 0 and offsets[0] is not None
    return offsets[0]


async def test_copies_published_back_to_back_get_one_decision_each(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    async with UploadClient(worker_settings) as client:
        stored = await client.upload_image(images.varied_images(1, seed=12)[0][1], "e2e")
    events = [ImageUploaded.new(tenant="e2e", bucket=stored.bucket, key=stored.key) for _ in range(COPIES)]
    ids = {e.event_id for e in events}
    async with decision_log(worker_settings) as decisions:
        produce(worker_settings, events, copies=2)
        assert await decisions.wait_for(ids, timeout=400) == COPIES
    # Every copy handled to the end (committed), then the decisions topic read to its end.
    await wait_until_committed_to_end(worker_settings, worker_settings.consumer_group, worker_settings.topic_uploads)
    found = await records_so_far(worker_settings, worker_settings.topic_decisions, ModerationDecision)
    twice = {e: len(found[e]) for e in ids if len(found[e]) != 1}
    assert not twice, f"{len(twice)} of {COPIES} events decided other than once, e.g. {list(twice.items())[:3]}"
