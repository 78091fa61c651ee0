"""Kafka clients for everything that is not the Faust worker: SDK, CLI, tests, benchmark."""

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.helpers import create_ssl_context
from pydantic import BaseModel, ValidationError

from modstream.core import metrics
from modstream.core.settings import Settings

R = TypeVar("R", bound=BaseModel)


class Publisher(Protocol):
    async def publish(self, topic: str, key: str, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        """Return once the broker has the record; raise ``PublishUnavailable`` when the
        brokers did not take it but may later."""


class PublishUnavailable(Exception):
    """The brokers did not take a record (unreachable, no leader, timed out); worth retrying."""


@contextmanager
def broker_errors(topic: str) -> Iterator[None]:
    """Producer failures as publishers report them: ``PublishUnavailable`` when the brokers
    are away (worth waiting for), anything else (a record refused for good) as it is."""
    try:
        yield
    except Exception as exc:
        if broker_unavailable(exc):
            raise PublishUnavailable(f"{topic}: {exc!r}") from exc
        raise


class KafkaPublisher:
    """A ``Publisher`` over an aiokafka producer (the review service's; the Faust worker has its own)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def publish(self, topic: str, key: str, value: bytes | None, headers: list[tuple[str, bytes]]) -> None:
        """``value`` None: a tombstone (on a compacted topic, the key's removal)."""
        with broker_errors(topic):
            await self._producer.send_and_wait(topic, value, key=key.encode(), headers=headers)
        metrics.records_published.add(1, {"topic": topic})


def broker_unavailable(exc: BaseException) -> bool:
    """Whether a producer's failure means the brokers are away, not that the record is refused.

    Faust wraps aiokafka's errors in its own ``ProducerSendError``; the cause tells.
    """
    for error in (exc, exc.__cause__):
        if isinstance(error, KafkaTimeoutError) or (isinstance(error, KafkaError) and error.retriable):
            return True
    return False


def connection_options(settings: Settings) -> dict[str, Any]:
    """Where the brokers are and how to authenticate to them: TLS and SASL from settings."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        cafile = str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        options["ssl_context"] = create_ssl_context(cafile=cafile)
    if settings.kafka_security_protocol.startswith("SASL") and settings.kafka_sasl_password is not None:
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options


def producer_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = connection_options(settings) | {"acks": "all"}
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
    settings: Settings, *topics: str, group_id: str | None = None, auto_commit: bool = True, **options: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    # Always from the earliest offset: "latest" relies on end offsets, which Tansu
    # (the local broker) reports wrongly; see docs/architecture.md.
    consumer = AIOKafkaConsumer(
        *topics,
        **connection_options(settings),
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=auto_commit and group_id is not None,
        fetch_max_wait_ms=settings.consumer_fetch_max_wait_ms,
        session_timeout_ms=int(settings.broker_session_timeout * 1000),
        heartbeat_interval_ms=max(100, int(settings.broker_session_timeout * 1000) // 3),
        **options,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def read_records(
    settings: Settings, topic: str, record_type: type[R], follow: bool, idle_seconds: float = 3.0
) -> AsyncGenerator[R, None]:
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
