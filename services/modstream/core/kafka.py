"""Kafka clients for everything that is not the Faust worker: SDK, CLI, tests, benchmark."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import BaseModel, ValidationError

from modstream.core.settings import Settings

R = TypeVar("R", bound=BaseModel)


class Publisher(Protocol):
    async def publish(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Return once the broker has the record."""


def producer_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap, "acks": "all"}
    if settings.producer_max_batch_size:
        options["max_batch_size"] = settings.producer_max_batch_size
    return options


@asynccontextmanager
async def kafka_producer(settings: Settings, **options: Any) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**producer_options(settings) | options)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@asynccontextmanager
async def kafka_consumer(
    settings: Settings, *topics: str, group_id: str | None = None
) -> AsyncIterator[AIOKafkaConsumer]:
    # Always from the earliest offset: "latest" relies on end offsets, which Tansu
    # (the local broker) reports wrongly; see ARCHITECTURE.md.
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=group_id is not None,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        heartbeat_interval_ms=max(100, int(settings.broker_session_timeout * 1000) // 3),
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_records(
    settings: Settings, topic: str, record_type: type[R], follow: bool, idle_seconds: float = 3.0
) -> AsyncIterator[R]:
    """Every record of ``record_type`` from the start of ``topic``; with ``follow``, wait
    for more forever.

    Without ``follow`` it stops once nothing new arrived for ``idle_seconds`` (end
    offsets cannot be trusted on the local broker, so "the end" is a quiet moment).
    Records of other types are skipped.
    """
    async with kafka_consumer(settings, topic) as consumer:
        while True:
            batches = await consumer.getmany(timeout_ms=int(idle_seconds * 1000))
            if not batches and not follow:
                return
            for batch in batches.values():
                for record in batch:
                    try:
                        parsed = record_type.model_validate_json(record.value or b"")
                    except ValidationError:
                        continue
                    yield parsed
