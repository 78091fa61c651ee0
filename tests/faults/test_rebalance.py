"""Workers join, leave and are SIGKILLed while a backlog flows: every upload offset still gets
an automatic decision, none gets two different ones, no commit lies past a hole, and each
event that asked for review has exactly one review job however often a replay asked again.

Each round uses a fresh uploads topic and consumer group, so every partition starts with no
commit (where faust-streaming 0.15.3 skipped records), and the duplicate cache is on, so
events are decided in milliseconds and many are acknowledged before any commit: the window
is wide. ``MODSTREAM_REBALANCE_ROUNDS`` runs more rounds (the long variant)."""

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from modstream.bench.ledger import Account, read_ledger
from modstream.core.events import ReviewRequest
from modstream.core.kafka import read_records
from modstream.core.ports import free_port
from modstream.core.settings import Settings
from modstream.review.intake import INTAKE_GROUP, run_feeds
from modstream.review.service import ReviewService

from tests.faults.conftest import REVIEW_TENANT, publish_events
from tests.offsets import wait_until_committed_to_end
from tests.records import decision_log
from tests.workers import assigned, start_worker, stop_worker, wait_for_worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1800)]
ROUNDS = int(os.environ.get("MODSTREAM_REBALANCE_ROUNDS", "1"))
WAVE = 300  # uploads published at each change of membership
JOIN_SECONDS = 30.0
TENANTS = ("faults", REVIEW_TENANT)  # half the uploads ask for review


def round_settings(stack: Settings, round_no: int) -> Settings:
    return stack.model_copy(
        update={
            "topic_uploads": f"uploads-rebalance-{round_no}-{time.time_ns()}",
            "consumer_group": f"rebalance-{round_no}-{time.time_ns()}",
            "score_cache_entries": 10_000,  # the default: the fast path is the risky one
            "dedupe_lease_seconds": 5.0,  # a killed worker's claims run out soon
            "worker_web_port": 0,
        }
    )


def worker(settings: Settings, log: Path) -> tuple[subprocess.Popen[bytes], Settings]:
    own = settings.model_copy(update={"worker_web_port": free_port()})
    return start_worker(own, log), own


async def churn(settings: Settings, tmp_path: Path, round_no: int) -> tuple[Account, int]:
    """One round: three workers join one after another, one is killed and one stopped, a wave
    of uploads with each change."""
    logs = tmp_path / f"round-{round_no}"
    logs.mkdir()
    decisions = decision_log(settings)
    processes: list[subprocess.Popen[bytes]] = []
    rebalances = 0
    try:
        # Each worker's join is a rebalance, and a wave of uploads is published the moment it
        # reports its partitions: records reach partitions with no commit yet while the group
        # settles (the first wave lands on empty partitions), and one worker is killed mid-wave.
        first, first_settings = worker(settings, logs / "first.log")
        processes.append(first)
        wait_for_worker(first_settings.worker_web_port, first, logs / "first.log")
        event_ids = await publish_events(settings, WAVE, TENANTS)
        for name in ("second", "third"):
            joining, joining_settings = worker(settings, logs / f"{name}.log")
            processes.append(joining)
            # Published once it reports partitions, or after JOIN_SECONDS all the same: faust's
            # consumer sometimes took minutes to give a third worker any.
            with contextlib.suppress(RuntimeError):
                wait_for_worker(joining_settings.worker_web_port, joining, logs / f"{name}.log", JOIN_SECONDS)
            event_ids += await publish_events(settings, WAVE, TENANTS)
            rebalances += 1
        processes[1].send_signal(signal.SIGKILL)
        processes[1].wait()
        event_ids += await publish_events(settings, WAVE, TENANTS)
        rebalances += 1
        processes[2].send_signal(signal.SIGTERM)
        event_ids += await publish_events(settings, WAVE, TENANTS)
        rebalances += 1
        await decisions.wait_for(event_ids, timeout=300)
        await decisions.settled(event_ids, quiet=8, timeout=300)
        # The one worker left holds every partition the others had.
        held = assigned(first_settings)
        assert len(held) == settings.topic_partitions, f"the first worker holds {held}"
        return await read_ledger(settings, settings.consumer_group), rebalances
    finally:
        await decisions.close()
        for process in processes:
            stop_worker(process)


async def test_no_upload_is_skipped_or_decided_two_ways_through_rebalances(
    fault_stack: Settings, tmp_path: Path
) -> None:
    review = ReviewService(fault_stack)
    stop_review = asyncio.Event()
    review_feeds = asyncio.create_task(run_feeds(fault_stack, review, stop_review))
    results = []
    try:
        for round_no in range(ROUNDS):
            account, rebalances = await churn(round_settings(fault_stack, round_no), tmp_path, round_no)
            results.append((account, rebalances))
            print(
                f"\nround {round_no}: {account.uploads} uploads, {account.decided} decided, "
                f"{len(account.lost)} lost {[(u.partition, u.offset) for u in account.lost][:10]}, "
                f"{len(account.repeated)} decided again the same way, {len(account.conflicting)} two ways, "
                f"commits past the decided prefix {account.committed_past}, {rebalances} membership changes"
            )
        # One review job per event that asked, however often a replay asked again: over every
        # request on the topic, since the stack is shared with the package's other tests.
        topic = fault_stack.topic_review_requests
        await wait_until_committed_to_end(fault_stack, INTAKE_GROUP, topic)
        requests = [r async for r in read_records(fault_stack, topic, ReviewRequest, False, 2)]
        jobs = sum(s.pending + s.in_review for s in await review.queues.stats())
        print(f"{len(requests)} review requests for {len({r.event_id for r in requests})} events: {jobs} jobs")
    finally:
        stop_review.set()
        await review_feeds
    failed = [(n, a) for n, (a, _) in enumerate(results) if not a.sound]
    assert not failed, f"{len(failed)} of {ROUNDS} rounds lost or conflicted: {[(n, a.lost[:5]) for n, a in failed]}"
    assert jobs == len({r.event_id for r in requests}) >= ROUNDS * 5 * WAVE // 3
