"""A worker killed with SIGKILL mid-stream loses nothing and double-actions nothing."""

import asyncio
import subprocess
from pathlib import Path

import pytest
from modstream.core.events import ModerationDecision, ReviewRequest
from modstream.core.kafka import read_records
from modstream.core.settings import Settings
from modstream.review.intake import INTAKE_GROUP, run_feeds
from modstream.review.service import ReviewService

from tests.faults.conftest import REVIEW_TENANT, publish_events
from tests.offsets import records_so_far, wait_until_committed_to_end
from tests.records import decision_log
from tests.workers import spawn_worker, stop_worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]
EVENTS = 5000


async def test_sigkill_mid_stream_then_restart(fault_stack: Settings, tmp_path: Path) -> None:
    event_ids = await publish_events(fault_stack, EVENTS, tenants=("faults", REVIEW_TENANT))
    decisions = decision_log(fault_stack)
    review = ReviewService(fault_stack)
    stop_review = asyncio.Event()
    review_feeds = asyncio.create_task(run_feeds(fault_stack, review, stop_review))
    worker: subprocess.Popen[bytes] | None = None
    try:
        worker = spawn_worker(fault_stack, tmp_path / "worker.log", timeout=120)
        before_kill = await decisions.wait_for(event_ids, EVENTS // 3, timeout=300)
        worker.kill()
        # Reaped before the restart: a dying process still holds its PID and web port.
        worker.wait(timeout=30)
        worker = spawn_worker(fault_stack, tmp_path / "worker.log", timeout=120)
        decided = await decisions.wait_for(event_ids, EVENTS, timeout=600)
        assert decided == EVENTS, f"{EVENTS - decided} of {EVENTS} events have no decision"

        # Every upload handled to the end, replays after the restart included (the worker
        # commits only then), and every review request taken in by the intake (likewise).
        await wait_until_committed_to_end(fault_stack, fault_stack.consumer_group, fault_stack.topic_uploads)
        topic = fault_stack.topic_review_requests
        await wait_until_committed_to_end(fault_stack, INTAKE_GROUP, topic)
        so_far = await records_so_far(fault_stack, fault_stack.topic_decisions, ModerationDecision)
        duplicates = {e: so_far[e] for e in event_ids if len(so_far[e]) > 1}
        for event_id, copies in duplicates.items():
            assert len({(d.decision, tuple(sorted(d.scores.items()))) for d in copies}) == 1, event_id
        requests = [r async for r in read_records(fault_stack, topic, ReviewRequest, False, 2)]
        reviewed = {r.event_id for r in requests if r.event_id in set(event_ids)}
        stats = await review.queues.stats()
        jobs = sum(s.pending + s.in_review for s in stats)
        print(
            f"\n{EVENTS} events: {before_kill} decided before SIGKILL; after restart all decided; "
            f"{len(duplicates)} decided twice (same decision); {len(requests)} review requests for "
            f"{len(reviewed)} events; {jobs} review jobs"
        )
        # One job per event, however often it was requested: over every request on the topic,
        # since the stack is shared with the package's other tests (audit samples among them).
        assert jobs == len({r.event_id for r in requests})
        assert len(reviewed) > EVENTS // 3
    finally:
        stop_review.set()
        await review_feeds
        await decisions.close()
        if worker is not None:
            stop_worker(worker)
