"""The whole served pipeline under load: publish N upload events, time each decision.

Events go out all at once (throughput; latency then includes the queue) or at a steady
``rate`` per second (latency at that load).

Images are stored before the clock starts; the clock covers publish -> Kafka -> worker ->
object store -> Triton -> decisions topic -> this process, for every event.
"""

import asyncio
import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from modstream.core.events import ImageUploaded, ModerationDecision, new_id
from modstream.core.kafka import kafka_consumer
from modstream.core.media import sniff_content_type
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient


@dataclass(frozen=True)
class PipelineResult:
    images: int
    decided: int
    duplicates: int  # decisions beyond the first for an event (at-least-once delivery)
    seconds: float
    images_per_second: float
    latency_ms_p50: float
    latency_ms_p95: float
    latency_ms_p99: float
    outcomes: dict[str, int]


async def run_pipeline(
    settings: Settings,
    images: list[bytes],
    *,
    timeout: float = 600.0,
    rate: float = 0.0,
    events: int | None = None,
    quiet_seconds: float = 0.0,
    on_decided: Callable[[ModerationDecision], None] = lambda d: None,
    tenant_of: Callable[[int], str] = lambda index: "bench",
) -> PipelineResult:
    """One event per image, or ``events`` events cycling over the stored images; event ``index``
    is ``tenant_of(index)``'s upload (whose policy decides it).

    With ``quiet_seconds``, decisions are still read after every event has one, until none
    of these events has had a record for that long: a duplicate that comes late is counted.
    """
    total = events or len(images)
    run = new_id()[:12]
    async with UploadClient(settings) as client:
        keys = [f"bench/{run}/{i}" for i in range(len(images))]
        gate = asyncio.Semaphore(16)

        async def store(key: str, data: bytes) -> None:
            async with gate:
                await client.store.aput(settings.uploads_bucket, key, data, sniff_content_type(data))

        await asyncio.gather(*(store(k, d) for k, d in zip(keys, images, strict=True)))
        published: dict[str, float] = {}
        decided: dict[str, float] = {}
        outcomes: dict[str, int] = {}
        duplicates = 0
        consuming = asyncio.Event()

        async def collect() -> None:
            nonlocal duplicates
            async with kafka_consumer(settings, settings.topic_decisions) as consumer:
                consuming.set()
                last_record = time.perf_counter()
                while len(decided) < total or time.perf_counter() - last_record < quiet_seconds:
                    batches = await consumer.getmany(timeout_ms=1000)
                    now = time.perf_counter()
                    for records in batches.values():
                        for record in records:
                            decision = ModerationDecision.model_validate_json(record.value or b"")
                            if decision.event_id in decided:
                                duplicates += 1
                                last_record = now
                            elif decision.event_id in published:
                                decided[decision.event_id] = now
                                last_record = now
                                outcomes[decision.decision.value] = outcomes.get(decision.decision.value, 0) + 1
                                on_decided(decision)

        collector = asyncio.create_task(collect())
        await consuming.wait()
        started = time.perf_counter()
        for index in range(total):
            if rate > 0:  # a steady rate: latency without a queue of our own making
                await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            key, data = keys[index % len(keys)], images[index % len(images)]
            event = ImageUploaded.new(
                tenant=tenant_of(index), bucket=settings.uploads_bucket, key=key, size_bytes=len(data)
            )
            published[event.event_id] = time.perf_counter()
            await client.send(event)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector, timeout)
    finished = max(decided.values(), default=time.perf_counter())
    latencies = sorted((decided[e] - published[e]) * 1000 for e in decided)
    seconds = finished - started
    return PipelineResult(
        images=total,
        decided=len(decided),
        duplicates=duplicates,
        seconds=round(seconds, 3),
        images_per_second=round(len(decided) / seconds, 2) if seconds > 0 else 0.0,
        latency_ms_p50=_percentile(latencies, 50),
        latency_ms_p95=_percentile(latencies, 95),
        latency_ms_p99=_percentile(latencies, 99),
        outcomes=outcomes,
    )


def _percentile(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[pct - 1], 1)
