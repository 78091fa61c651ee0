"""The review service's feeds: review requests become jobs; decisions become counts.

Both are Kafka consumer groups that commit only what is done: a replayed review request
finds its job already there (enqueue is idempotent per job id). The feeds wait out an
outage as the worker does: a record whose handling fails (Redis away, or anything else
unexpected) is retried in place with capped, jittered backoff until it succeeds, so none
is skipped and nothing after it is committed; a consumer that fails (it cannot start, or
its commit is refused) is made again the same way and resumes from the committed offsets.
A broker that does not answer is waited out inside the Kafka client. Only an unreadable
record (retrying cannot help) is logged and passed over. Each loop's health is kept here,
for the dashboard's ``/healthz`` and the ``modstream.review.feed.up`` gauge.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import TypeVar

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from modstream.core import metrics
from modstream.core.events import AppealLodged, ModerationDecision, ReviewRequest
from modstream.core.kafka import kafka_consumer
from modstream.core.retry import retrying
from modstream.core.settings import Settings
from modstream.core.tracing import KafkaHeaders, trace_carrier
from modstream.review import gauges
from modstream.review.jobs import LABELLING_INFIX, ReviewJob
from modstream.review.service import ReviewService

log = logging.getLogger("modstream.review")
T = TypeVar("T")
DEPTH_SAMPLE_SECONDS = 60.0
SAMPLE_RETRY_SECONDS = 5.0  # a failed sample is tried again this soon, not a whole period later
INTAKE_GROUP, STATS_GROUP = "modstream-review-intake", "modstream-review-stats"
APPEALS_GROUP = "modstream-review-appeals"
# At shutdown each loop finishes its batch and commits; one still waiting out an outage
# after this is cancelled, which leaves its record uncommitted, to be read again.
STOP_GRACE_SECONDS = 5.0
# A broker that answers no fetch or commit for this long shows on /healthz; the Kafka
# client itself keeps trying (fetches answer within a second when all is well).
BROKER_SILENCE_SECONDS = 10.0
# Every failure is retried, not only the kinds known to be transient: skipping a record
# would lose it, and a failure that never ends shows on /healthz and in the log.
ANY_FAILURE = (Exception,)
Action = Callable[[], Awaitable[None]]
# Reads a record (raising ValidationError when it cannot) and returns what to do with it.
Prepare = Callable[[bytes, KafkaHeaders], Action]


class BrokerSilent(Exception):
    """The broker has not answered this feed for a while; the Kafka client keeps trying."""


class FeedState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    RETRYING = "retrying"


@dataclass
class FeedHealth:
    """One loop's state. It names error types only: messages, which may name internal
    addresses, go to the log, so ``/healthz`` can answer without a session."""

    name: str
    state: FeedState = FeedState.STARTING
    failures: int = 0  # in a row, since it last worked
    last_error: str | None = None
    last_error_at: datetime | None = None

    async def watch(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, with its failure (re-raised) or success recorded here."""
        try:
            result = await call()
        except Exception as exc:
            self.failed(exc)
            raise
        self.working()
        return result

    def failed(self, exc: Exception) -> None:
        self.state, self.failures = FeedState.RETRYING, self.failures + 1
        self.last_error, self.last_error_at = type(exc).__name__, datetime.now(UTC)
        if self.failures == 1:
            log.warning(
                "review feed failing, retrying until it works",
                extra={"feed": self.name, "error": f"{type(exc).__name__}: {str(exc)[:300]}"},
            )

    def broker_silent(self) -> None:
        if self.state is FeedState.RUNNING:  # once per silence, not at every poll
            self.failed(BrokerSilent(f"no answer from the broker for over {BROKER_SILENCE_SECONDS:.0f} s"))

    def working(self) -> None:
        if self.failures:
            log.info("review feed working again", extra={"feed": self.name, "failures": self.failures})
        self.state, self.failures = FeedState.RUNNING, 0

    def report(self) -> dict[str, object]:
        at = self.last_error_at.isoformat(timespec="seconds") if self.last_error_at else None
        return {
            "state": self.state.value,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": at,
        }


# The feeds of this process (one dashboard runs one set), read by /healthz and the gauge.
_health: dict[str, FeedHealth] = {}


def health_report() -> tuple[bool, dict[str, object]]:
    """Whether every feed works now, and each feed's state for ``/healthz``."""
    healthy = all(h.state is FeedState.RUNNING for h in _health.values())
    feeds = {name: h.report() for name, h in sorted(_health.items())}
    return healthy, {"status": "ok" if healthy else "degraded", "feeds": feeds}


def _up() -> Iterable[tuple[float, dict[str, str]]]:
    return [(1.0 if h.state is FeedState.RUNNING else 0.0, {"feed": h.name}) for h in list(_health.values())]


metrics.observe_gauge("modstream.review.feed.up", "1", "1 while a review feed works, 0 while it waits out trouble", _up)


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
                "hashes",
                "bank_match",
                "text",
                "text_matches",
                "policy_id",
                "policy_version",
                "thresholds",
                "double_review_rate",
                "bank_on_remove",
                "uploaded_at",
            }
        ),
        job_id=request.event_id,
        kind="audit_sample" if "audit_sample" in request.reasons else "threshold_review",
        enqueued_at=now or datetime.now(UTC),
        trace_context=trace_context or {},
    )


def labelling_job(request: ReviewRequest, label: str, now: datetime | None = None) -> ReviewJob:
    """A job asking a reviewer to label an already decided image for ``label`` (its verdict
    decides nothing); one per image and label, however often the queue is seeded."""
    job = job_for(request, now)
    return job.model_copy(update={"job_id": f"{request.event_id}{LABELLING_INFIX}{label}", "kind": "labelling"})


async def run_feeds(settings: Settings, service: ReviewService, stop: asyncio.Event) -> None:
    """Until ``stop`` is set: enqueue review requests, count decisions, sample queue depths."""
    _health.clear()
    loops = [
        _consume(settings, "review-requests", settings.topic_review_requests, INTAKE_GROUP, _enqueue(service), stop),
        _consume(settings, "decisions", settings.topic_decisions, STATS_GROUP, _count(service), stop),
        _consume(settings, "appeals", settings.topic_appeals, APPEALS_GROUP, _lodge(service), stop),
        _every("queue-depths", DEPTH_SAMPLE_SECONDS, service.queues.record_depths, stop),
        _every("queue-gauges", gauges.REFRESH_SECONDS, lambda: _refresh_gauges(service), stop),
        _every("legacy-order", DEPTH_SAMPLE_SECONDS, service.order_legacy_jobs, stop),
    ]
    tasks = [asyncio.create_task(loop) for loop in loops]
    try:
        await stop.wait()
        await asyncio.wait(tasks, timeout=STOP_GRACE_SECONDS)
    finally:
        for task in tasks:
            task.cancel()  # those still waiting out an outage (a finished task ignores it)
        await asyncio.gather(*tasks, return_exceptions=True)
        _health.clear()


def _enqueue(service: ReviewService) -> Prepare:
    def prepare(value: bytes, headers: KafkaHeaders) -> Action:
        request = ReviewRequest.model_validate_json(value)
        job = job_for(request, trace_context=trace_carrier(headers))

        async def enqueue() -> None:
            if await service.queue_job(job):
                log.info("review job queued", extra={"event_id": request.event_id, "queue": request.queue})

        return enqueue

    return prepare


def _count(service: ReviewService) -> Prepare:
    def prepare(value: bytes, headers: KafkaHeaders) -> Action:
        decision = ModerationDecision.model_validate_json(value)

        async def count() -> None:
            await service.counts.record(decision)  # a repeat is not counted again
            await service.appeals.remember(decision, service.appeal_rules(decision.tenant))

        return count

    return prepare


def _lodge(service: ReviewService) -> Prepare:
    def prepare(value: bytes, headers: KafkaHeaders) -> Action:
        appeal = AppealLodged.model_validate_json(value)

        async def lodge() -> None:
            outcome = await service.lodge(appeal)
            log.info("appeal " + outcome.outcome, extra={"event_id": appeal.event_id, "appeal_id": appeal.appeal_id})

        return lodge

    return prepare


async def _consume(
    settings: Settings, name: str, topic: str, group: str, prepare: Prepare, stop: asyncio.Event
) -> None:
    health = _health[name] = FeedHealth(name)

    async def session() -> None:
        async with kafka_consumer(settings, topic, group_id=group, auto_commit=False) as consumer:
            health.working()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        metrics.events_consumed.add(1, {"topic": topic})
                        try:
                            action = prepare(record.value or b"", list(record.headers or []))
                        except ValidationError as exc:
                            log.error(
                                "unreadable record skipped",
                                extra={"topic": topic, "offset": record.offset, "error": str(exc)[:300]},
                            )
                            continue
                        await retrying(partial(health.watch, action), "redis", transient=ANY_FAILURE)
                if batches:
                    await _commit(consumer, health)
                if batches or not _broker_silent(consumer):
                    health.working()
                else:
                    health.broker_silent()

    await retrying(partial(health.watch, session), "kafka", transient=ANY_FAILURE)


async def _commit(consumer: AIOKafkaConsumer, health: FeedHealth) -> None:
    """Commit what was read; the client retries it until the broker answers, flagged meanwhile."""
    commit = asyncio.ensure_future(consumer.commit())
    while True:
        try:
            return await asyncio.wait_for(asyncio.shield(commit), BROKER_SILENCE_SECONDS)
        except TimeoutError:
            health.broker_silent()


def _broker_silent(consumer: AIOKafkaConsumer) -> bool:
    """Whether a partition of this feed had no fetch answered lately (none known yet: no)."""
    answered = [consumer.last_poll_timestamp(tp) for tp in consumer.assignment()]
    known = [at for at in answered if at is not None]
    return bool(known) and time.time() - min(known) / 1000 > BROKER_SILENCE_SECONDS


async def _refresh_gauges(service: ReviewService) -> None:
    gauges.remember(await service.queues.stats(), await service.appeals.overdue(datetime.now(UTC)))
    gauges.remember_gold(await service.gold.tallies(), lambda tenant: service.review_rules(tenant).gold)


async def _every(name: str, seconds: float, call: Action, stop: asyncio.Event) -> None:
    health = _health[name] = FeedHealth(name)
    while not stop.is_set():
        with contextlib.suppress(Exception):  # recorded by watch and tried again soon
            await health.watch(call)
        pause = seconds if health.state is FeedState.RUNNING else min(seconds, SAMPLE_RETRY_SECONDS)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), pause)
