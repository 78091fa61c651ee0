"""Upload -> review decision -> job in its queue -> verdict over HTTP -> human decision and verdict event.

The dashboard is the real process (``modstream dashboard``, as the stack starts it): its
review feeds, which start with it, are what turn the request into a job and count the
decisions, so they are only exercised that way (an in-process app runs no lifespan).
"""

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer
from modstream.core.events import ModerationDecision, Outcome, ReviewRequest, ReviewVerdict
from modstream.core.kafka import producer_options
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.ingest.sdk import UploadClient
from modstream.policy.loader import load_policies
from modstream.review.stats import DecisionCounts
from modstream.review.web.users import add_user, mint_token
from modstream.stack import start_service, stop_stack

from tests import images
from tests.e2e.conftest import REVIEW_QUEUE, REVIEW_TENANT
from tests.records import records_of
from tests.scrape import scrape, total

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@dataclass(frozen=True)
class Dashboard:
    settings: Settings
    reviewer: str  # named for this test alone, so the counts by reviewer are its own
    token: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.dashboard_port}"


@pytest.fixture
def dashboard(worker_settings: Settings, tmp_path: Path) -> Iterator[Dashboard]:
    """A real dashboard process on the stack, with a users file of its own."""
    users = tmp_path / "users.toml"
    settings = worker_settings.model_copy(update={"dashboard_users_file": users, "trace_exporter": "none"})
    reviewer = f"flow-{secrets.token_hex(4)}"
    add_user(users, reviewer, "reviewer", "flow-password")
    start_service(settings, "dashboard", timeout=90)
    try:
        yield Dashboard(settings, reviewer, mint_token(users, reviewer))
    finally:
        stop_stack(settings, only=["dashboard"])


async def test_a_review_decision_reaches_a_reviewer_and_their_verdict_is_final(
    worker_settings: Settings, worker: subprocess.Popen[bytes], dashboard: Dashboard
) -> None:
    async with UploadClient(worker_settings) as client:
        event = await client.upload_image(images.encode_noise_png(320, 240), REVIEW_TENANT)

    automatic = await records_of(
        worker_settings, worker_settings.topic_decisions, ModerationDecision, event.event_id, 1
    )
    assert [d.decision for d in automatic] == [Outcome.REVIEW]
    assert automatic[0].review_queue == REVIEW_QUEUE and automatic[0].policy_id == f"tenant:{REVIEW_TENANT}"
    # What the quality loop weighs verdicts with: the thresholds and audit rate in force.
    # The tenant's override (see policies_reviewing) changes only sexual.any of the shipped default.
    ruled = sorted(load_policies(PROJECT_ROOT / "config" / "policies").default.labels)
    assert sorted(automatic[0].thresholds) == ruled and not automatic[0].audit_sample

    auth = {"authorization": f"Bearer {dashboard.token}"}
    async with httpx.AsyncClient(base_url=dashboard.url, headers=auth, timeout=30) as http:
        for _ in range(120):  # the dashboard's review feed turns the request into a job
            queues = {q["name"]: q for q in (await http.get("/api/queues")).json()}
            if queues.get(REVIEW_QUEUE, {}).get("pending"):
                break
            await asyncio.sleep(0.5)
        assert queues[REVIEW_QUEUE]["pending"] == 1

        claimed = await http.post(f"/api/queues/{REVIEW_QUEUE}/claim")
        assert claimed.status_code == 200
        job = claimed.json()["job"]
        assert (job["job_id"], job["kind"], sorted(job["thresholds"])) == (
            event.event_id,
            "threshold_review",
            ruled,  # the tenant's policy reviews sexual.any from 0 (see policies_reviewing)
        )
        # A verdict must say which labels apply (maybe none), and only labels the job asks about;
        # a refused one leaves the job with its reviewer.
        missing = await http.post(f"/api/jobs/{event.event_id}/verdict", json={"verdict": "remove"})
        unknown = await http.post(f"/api/jobs/{event.event_id}/verdict", json={"verdict": "remove", "labels": ["x"]})
        assert (missing.status_code, unknown.status_code) == (422, 422)
        assert f"asks about no label x (its labels: {', '.join(ruled)})" in unknown.json()["detail"]
        verdict = await http.post(
            f"/api/jobs/{event.event_id}/verdict",
            json={"verdict": "remove", "labels": ["sexual.explicit"], "note": "e2e"},
        )
        assert verdict.status_code == 200, verdict.text

    decisions = await records_of(
        worker_settings, worker_settings.topic_decisions, ModerationDecision, event.event_id, 2
    )
    human = [d for d in decisions if d.source == "human"]
    assert len(human) == 1
    assert (human[0].decision, human[0].reviewer, human[0].review_queue) == (
        Outcome.BLOCK,
        dashboard.reviewer,
        REVIEW_QUEUE,
    )
    assert human[0].review_seconds is not None and human[0].scores == automatic[0].scores
    (recorded,) = await records_of(
        worker_settings, worker_settings.topic_review_verdicts, ReviewVerdict, event.event_id, 1
    )
    assert (recorded.verdict, recorded.labels, recorded.note, recorded.job_kind) == (
        "remove",
        ["sexual.explicit"],
        "e2e",
        "threshold_review",
    )
    assert (recorded.automatic_decision_id, recorded.human_decision_id) == (
        automatic[0].decision_id,
        human[0].decision_id,
    )
    # The dashboard's decisions feed counts the human decision under its reviewer.
    for _ in range(60):
        if await counted_for(dashboard.settings, dashboard.reviewer):
            break
        await asyncio.sleep(0.5)
    assert await counted_for(dashboard.settings, dashboard.reviewer) == 1

    # The same review request again (a replay) never creates a second job: once the feed
    # has read it (one more record read on its topic), no job waits or is held.
    (request,) = await records_of(
        worker_settings, worker_settings.topic_review_requests, ReviewRequest, event.event_id, 1
    )
    read_before = requests_read(dashboard.settings)
    producer = AIOKafkaProducer(**producer_options(worker_settings))
    await producer.start()
    await producer.send_and_wait(worker_settings.topic_review_requests, request.to_bytes(), key=event.event_id.encode())
    await producer.stop()
    for _ in range(60):
        if requests_read(dashboard.settings) > read_before:
            break
        await asyncio.sleep(0.5)
    assert requests_read(dashboard.settings) == read_before + 1
    async with httpx.AsyncClient(base_url=dashboard.url, headers=auth, timeout=30) as http:
        queues = {q["name"]: q for q in (await http.get("/api/queues")).json()}
    assert (queues[REVIEW_QUEUE]["pending"], queues[REVIEW_QUEUE]["in_review"]) == (0, 0)
    assert await counted_for(dashboard.settings, dashboard.reviewer) == 1


async def counted_for(settings: Settings, reviewer: str) -> int:
    """Human decisions the dashboard's feed counted for this reviewer (this hour and the last)."""
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        return sum(hour.by_reviewer.get(reviewer, 0) for hour in await DecisionCounts(client).hourly(2))
    finally:
        await client.aclose()


def requests_read(settings: Settings) -> float:
    samples = scrape(f"http://127.0.0.1:{settings.dashboard_metrics_port}/metrics")
    return total(samples, "modstream_events_consumed_total", topic=settings.topic_review_requests)
