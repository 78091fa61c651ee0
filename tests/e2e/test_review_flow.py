"""Upload -> review decision -> job in its queue -> verdict over HTTP -> human decision and verdict event."""

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from modstream.core.events import ModerationDecision, Outcome, ReviewRequest, ReviewVerdict
from modstream.core.kafka import producer_options
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient
from modstream.review.intake import run_feeds
from modstream.review.service import ReviewService

from tests import images
from tests.dashboard_helpers import dashboard, make_users
from tests.e2e.conftest import REVIEW_QUEUE, REVIEW_TENANT
from tests.records import records_of

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
async def review(worker_settings: Settings) -> AsyncIterator[ReviewService]:
    """The review service with its Kafka feeds running, as the dashboard process runs them."""
    service = ReviewService(worker_settings)
    await service.start()
    stop = asyncio.Event()
    feeds = asyncio.create_task(run_feeds(worker_settings, service, stop))
    yield service
    stop.set()
    await feeds
    await service.stop()


async def test_a_review_decision_reaches_a_reviewer_and_their_verdict_is_final(
    worker_settings: Settings, worker: subprocess.Popen[bytes], review: ReviewService, tmp_path: Path
) -> None:
    async with UploadClient(worker_settings) as client:
        event = await client.upload_image(images.encode_noise_png(320, 240), REVIEW_TENANT)

    automatic = await records_of(
        worker_settings, worker_settings.topic_decisions, ModerationDecision, event.event_id, 1
    )
    assert [d.decision for d in automatic] == [Outcome.REVIEW]
    assert automatic[0].review_queue == REVIEW_QUEUE and automatic[0].policy_id == f"tenant:{REVIEW_TENANT}"

    for _ in range(120):  # the review feed turns the request into a job
        stats = {s.name: s for s in await review.queue_stats()}
        if stats.get(REVIEW_QUEUE) and stats[REVIEW_QUEUE].pending:
            break
        await asyncio.sleep(0.5)
    assert stats[REVIEW_QUEUE].pending == 1

    tokens = make_users(tmp_path / "users.toml")
    async with dashboard(review, tmp_path / "users.toml") as http:
        auth = {"authorization": f"Bearer {tokens['rita']}"}
        claimed = await http.post(f"/api/queues/{REVIEW_QUEUE}/claim", headers=auth)
        assert claimed.status_code == 200
        assert claimed.json()["job"]["job_id"] == event.event_id
        verdict = await http.post(
            f"/api/jobs/{event.event_id}/verdict",
            json={"verdict": "remove", "corrected_labels": ["nsfw"], "note": "e2e"},
            headers=auth,
        )
        assert verdict.status_code == 200, verdict.text

    decisions = await records_of(
        worker_settings, worker_settings.topic_decisions, ModerationDecision, event.event_id, 2
    )
    human = [d for d in decisions if d.source == "human"]
    assert len(human) == 1
    assert (human[0].decision, human[0].reviewer, human[0].review_queue) == (Outcome.BLOCK, "rita", REVIEW_QUEUE)
    assert human[0].review_seconds is not None and human[0].scores == automatic[0].scores
    (recorded,) = await records_of(
        worker_settings, worker_settings.topic_review_verdicts, ReviewVerdict, event.event_id, 1
    )
    assert (recorded.verdict, recorded.corrected_labels, recorded.note) == ("remove", ["nsfw"], "e2e")
    assert (recorded.automatic_decision_id, recorded.human_decision_id) == (
        automatic[0].decision_id,
        human[0].decision_id,
    )

    # The same review request again (a replay) never creates a second job.
    (request,) = await records_of(
        worker_settings, worker_settings.topic_review_requests, ReviewRequest, event.event_id, 1
    )
    producer = AIOKafkaProducer(**producer_options(worker_settings))
    await producer.start()
    await producer.send_and_wait(worker_settings.topic_review_requests, request.to_bytes(), key=event.event_id.encode())
    await producer.stop()
    await asyncio.sleep(3)
    stats = {s.name: s for s in await review.queue_stats()}
    assert (stats[REVIEW_QUEUE].pending, stats[REVIEW_QUEUE].in_review) == (0, 0)
    found = await review.job(event.event_id)
    assert found is not None and found[2] == "closed"
