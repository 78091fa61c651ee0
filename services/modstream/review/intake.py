"""The review service's feeds: review requests become jobs; decisions become counts.

Both are Kafka consumer groups, committing only what is done: a replayed review request
finds its job already there (enqueue is idempotent per job id).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from pydantic import ValidationError

from modstream.core import metrics
from modstream.core.events import ModerationDecision, ReviewRequest
from modstream.core.kafka import kafka_consumer
from modstream.core.settings import Settings
from modstream.core.tracing import KafkaHeaders, trace_carrier
from modstream.review import gauges
from modstream.review.jobs import ReviewJob
from modstream.review.service import ReviewService

log = logging.getLogger("modstream.review")
DEPTH_SAMPLE_SECONDS = 60.0
Handler = Callable[[bytes, KafkaHeaders], Awaitable[None]]


def job_for(
    request: ReviewRequest, now: datetime | None = None, trace_context: dict[str, str] | None = None
) -> ReviewJob:
    return ReviewJob(
        **request.model_dump(
            include={
                "decision_id",
                "queue",
                "tenant",
                "bucket",
                "key",
                "scores",
                "triggered",
                "reasons",
                "model",
                "policy_id",
                "policy_version",
                "uploaded_at",
            }
        ),
        job_id=request.event_id,
        enqueued_at=now or datetime.now(UTC),
        trace_context=trace_context or {},
    )


async def run_feeds(settings: Settings, service: ReviewService, stop: asyncio.Event) -> None:
    """Until ``stop`` is set: enqueue review requests, count decisions, sample queue depths."""
    await asyncio.gather(
        _consume(settings, settings.topic_review_requests, "modstream-review-intake", _enqueue(service), stop),
        _consume(settings, settings.topic_decisions, "modstream-review-stats", _count(service), stop),
        _every(DEPTH_SAMPLE_SECONDS, service.queues.record_depths, stop),
        _every(gauges.REFRESH_SECONDS, lambda: _refresh_gauges(service), stop),
    )


def _enqueue(service: ReviewService) -> Handler:
    async def handle(value: bytes, headers: KafkaHeaders) -> None:
        request = ReviewRequest.model_validate_json(value)
        if await service.queues.enqueue(job_for(request, trace_context=trace_carrier(headers))):
            log.info("review job queued", extra={"event_id": request.event_id, "queue": request.queue})

    return handle


def _count(service: ReviewService) -> Handler:
    async def handle(value: bytes, headers: KafkaHeaders) -> None:
        await service.counts.record(ModerationDecision.model_validate_json(value))

    return handle


async def _consume(settings: Settings, topic: str, group: str, handle: Handler, stop: asyncio.Event) -> None:
    async with kafka_consumer(settings, topic, group_id=group, auto_commit=False) as consumer:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    metrics.events_consumed.add(1, {"topic": topic})
                    try:
                        await handle(record.value or b"", list(record.headers or []))
                    except ValidationError as exc:
                        log.error(
                            "unreadable record skipped",
                            extra={"topic": topic, "offset": record.offset, "error": str(exc)[:300]},
                        )
            if batches:
                await consumer.commit()


async def _refresh_gauges(service: ReviewService) -> None:
    gauges.remember(await service.queues.stats())


async def _every(seconds: float, call: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    while not stop.is_set():
        await call()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
