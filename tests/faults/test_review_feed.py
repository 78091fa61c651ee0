"""The dashboard's review feeds wait out outages: every review request becomes exactly one job.

They run the real dashboard process (``modstream dashboard``, started as the stack starts
it) on a private stack of the broker and Redis only: the feeds need nothing else, so no
worker and no Triton; review requests and decisions go straight to their topics, as the
worker would publish them.

This stack's broker runs on memory storage (the tests' default), which a restart empties,
so stopping it would test a new empty broker, not an outage. It is frozen instead (SIGSTOP,
then SIGCONT): unreachable for a while, with its data kept, as a Kafka restart would; the
restart on durable storage is tests/faults/test_broker_restart.py.
"""

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from modstream.core.events import ModelRef, ModerationDecision, Outcome, ReviewRequest, Trigger, new_id
from modstream.core.kafka import kafka_producer
from modstream.core.settings import Settings
from modstream.core.topics import ensure_topics
from modstream.review.queue import ReviewQueues
from modstream.review.stats import DecisionCounts
from modstream.review.web.users import add_user
from modstream.stack import start_service, start_stack, stop_stack

from tests.conftest import loopback_settings
from tests.scrape import scrape, total

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]
REQUESTS = 200
PER_SECOND = 10
OUTAGE_SECONDS = 15
FREEZE_SECONDS = 14  # over the 10 s of silence after which /healthz shows it


@pytest.fixture(scope="module")
def feed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("review-feed")
    add_user(root / "users.toml", "ada", "admin", "ada-password")
    settings = loopback_settings(root / "state", dashboard_users_file=root / "users.toml")
    try:
        start_stack(settings, only=["kafka", "redis"], timeout=120)
        asyncio.run(ensure_topics(settings))
        start_service(settings, "dashboard", timeout=90)
        yield settings
    finally:
        stop_stack(settings)


async def test_a_redis_outage_is_waited_out_and_every_request_becomes_one_job(feed_stack: Settings) -> None:
    settings, queue = feed_stack, "redis-outage"
    await wait_until(lambda: healthz(settings), "the feeds never all ran", 60)
    sent: list[str] = []
    traffic = asyncio.create_task(publish(settings, queue, sent))
    try:
        await wait_until(lambda: has_jobs(settings, queue, 30), "no job before the outage", 60)
        stop_stack(settings, only=["redis"])
        went_down = time.monotonic()
        await wait_until(lambda: feed_in(settings, "review-requests", "retrying"), "no retrying on /healthz", 30)
        (status, report), up = health(settings), feed_up(settings)
        assert status == 503 and report["feeds"]["review-requests"]["last_error"] == "ConnectionError", report
        assert up["review-requests"] == 0
        await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - went_down)))
        sent_during = len(sent)
    finally:
        start_stack(settings, only=["redis"], timeout=120)
    back = time.monotonic() - went_down
    await traffic
    await wait_until(lambda: has_jobs(settings, queue, REQUESTS), "not every request became a job", 120)
    await wait_until(lambda: healthz(settings), "the feeds did not all recover", 60)

    jobs = await job_statuses(settings, queue, sent)
    assert len(sent) == REQUESTS and set(jobs.values()) == {"pending"}, jobs
    assert await pending(settings, queue) == REQUESTS  # one job per request, none besides
    counted = await automatic_decisions_counted(settings)
    assert counted >= REQUESTS  # every decision counted (at least once: a retried count may repeat)
    assert feed_up(settings) == {
        "review-requests": 1,
        "decisions": 1,
        "appeals": 1,
        "queue-depths": 1,
        "queue-gauges": 1,
        "legacy-order": 1,
    }
    retries = total(scrape(metrics_url(settings)), "modstream_dependency_retries_total", dependency="redis")
    lines = log_lines(settings)
    failing = [line for line in lines if line.get("msg") == "review feed failing, retrying until it works"]
    recovered = [line for line in lines if line.get("msg") == "review feed working again"]
    assert {"review-requests", "decisions"} <= {line["feed"] for line in failing} & {line["feed"] for line in recovered}
    print(
        f"\nRedis down {back:.0f} s while {REQUESTS} review requests came in ({sent_during} sent by its end): "
        f"{REQUESTS} jobs, {counted:.0f} automatic decisions counted, {retries:.0f} Redis retries logged"
    )


async def test_a_frozen_broker_is_waited_out_and_every_request_becomes_one_job(feed_stack: Settings) -> None:
    settings, queue = feed_stack, "broker-freeze"
    await wait_until(lambda: healthz(settings), "the feeds never all ran", 60)
    broker = int((settings.state_dir / "pids" / "kafka.pid").read_text())
    sent: list[str] = []
    traffic = asyncio.create_task(publish(settings, queue, sent))
    seen: set[tuple[str, str, str | None]] = set()  # (feed, state, last error) on /healthz
    await wait_until(lambda: has_jobs(settings, queue, 30), "no job before the freeze", 60)
    os.kill(broker, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        while time.monotonic() - frozen < FREEZE_SECONDS:
            feeds = health(settings)[1]["feeds"]
            seen |= {(name, feed["state"], feed["last_error"]) for name, feed in feeds.items()}
            await asyncio.sleep(0.5)
    finally:
        os.kill(broker, signal.SIGCONT)
    await traffic
    await wait_until(lambda: has_jobs(settings, queue, REQUESTS), "not every request became a job", 180)
    await wait_until(lambda: healthz(settings), "the feeds did not all recover", 60)

    jobs = await job_statuses(settings, queue, sent)
    assert len(sent) == REQUESTS and set(jobs.values()) == {"pending"}, jobs
    assert await pending(settings, queue) == REQUESTS
    assert ("review-requests", "retrying", "BrokerSilent") in seen, seen
    print(f"\nbroker frozen {FREEZE_SECONDS} s: {REQUESTS} jobs; on /healthz meanwhile: {sorted(seen, key=str)}")


async def publish(settings: Settings, queue: str, sent: list[str]) -> None:
    """``REQUESTS`` review requests, each with its automatic decision, ``PER_SECOND`` a second."""
    async with kafka_producer(settings) as producer:
        for n in range(REQUESTS):
            request = review_request(queue, n)
            decision = ModerationDecision(
                **request.model_dump(include={"event_id", "tenant", "bucket", "key", "decision_id", "scores"}),
                decision=Outcome.REVIEW,
                triggered=request.triggered,
                review_queue=queue,
                policy_id=request.policy_id,
                policy_version=request.policy_version,
                uploaded_at=request.uploaded_at,
                latency_ms=1.0,
            )
            key = request.event_id.encode()
            await producer.send_and_wait(settings.topic_decisions, decision.to_bytes(), key=key)
            await producer.send_and_wait(settings.topic_review_requests, request.to_bytes(), key=key)
            sent.append(request.event_id)
            await asyncio.sleep(1 / PER_SECOND)


def review_request(queue: str, n: int) -> ReviewRequest:
    return ReviewRequest(
        event_id=f"{queue}-{n}-{new_id()}",
        tenant="feeds",
        bucket="uploads",
        key=f"feeds/{n}.jpg",
        decision_id=new_id(),
        decision=Outcome.REVIEW,
        queue=queue,
        scores={"nsfw": 0.6, "sfw": 0.4},
        triggered=[Trigger(label="nsfw", score=0.6, threshold=0.4, level="review")],
        reasons=["threshold"],
        model=ModelRef(name="image_safety", version="1"),
        policy_id="default",
        policy_version="1",
        uploaded_at=datetime.now(UTC),
    )


async def wait_until(check: Callable[[], Awaitable[bool] | bool], failure: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{failure} within {timeout:.0f} s")


def health(settings: Settings) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"http://127.0.0.1:{settings.dashboard_port}/healthz", timeout=5)
    return response.status_code, response.json()


def healthz(settings: Settings) -> bool:
    status, report = health(settings)
    feeds = {"review-requests", "decisions", "appeals", "queue-depths", "queue-gauges", "legacy-order"}
    return status == 200 and set(report["feeds"]) == feeds


def feed_in(settings: Settings, feed: str, state: str) -> bool:
    return bool(health(settings)[1]["feeds"][feed]["state"] == state)


def metrics_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.dashboard_metrics_port}/metrics"


def feed_up(settings: Settings) -> dict[str, float]:
    samples = scrape(metrics_url(settings))
    return {dict(labels)["feed"]: v for (name, labels), v in samples.items() if name == "modstream_review_feed_up"}


async def has_jobs(settings: Settings, queue: str, count: int) -> bool:
    return await pending(settings, queue) >= count


async def pending(settings: Settings, queue: str) -> int:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        stats = await ReviewQueues(client, lease_seconds=60, job_retention_seconds=60).stats()
        return sum(s.pending for s in stats if s.name == queue)
    finally:
        await client.aclose()


async def job_statuses(settings: Settings, queue: str, event_ids: list[str]) -> dict[str, str]:
    """Each event's job status ("missing" when it has none)."""
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        queues = ReviewQueues(client, lease_seconds=60, job_retention_seconds=60)
        found = {e: await queues.job(e) for e in event_ids}
        return {e: job[2] if job and job[0].queue == queue else "missing" for e, job in found.items()}
    finally:
        await client.aclose()


async def automatic_decisions_counted(settings: Settings) -> float:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        return sum(hour.automatic for hour in await DecisionCounts(client).hourly(2))
    finally:
        await client.aclose()


def log_lines(settings: Settings) -> list[dict[str, str]]:
    path: Path = settings.state_dir / "logs" / "dashboard.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
