"""A worker says it is ready only when it owns a partition of the uploads topic; alive always.

Two workers share a one-partition uploads topic: one works, the other is idle until the first
one stops.
"""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from modstream.core.kafka import connection_options
from modstream.core.ports import free_port
from modstream.core.settings import Settings

from tests.workers import start_worker, stop_worker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def health(settings: Settings, path: str) -> httpx.Response | None:
    try:
        return httpx.get(f"http://127.0.0.1:{settings.worker_web_port}{path}", timeout=5)
    except httpx.HTTPError:
        return None


async def members(settings: Settings) -> int:
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        [answer] = await admin.describe_consumer_groups([settings.consumer_group])
    finally:
        await admin.close()
    [group] = answer.to_object()["groups"]
    return len(group["members"])


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"not {what} after {timeout} s")


def ready(settings: Settings) -> bool:
    answer = health(settings, "/healthz")
    return answer is not None and answer.status_code == 200


def answering(settings: Settings) -> bool:
    return health(settings, "/healthz") is not None


def test_only_the_worker_with_an_uploads_partition_is_ready(stack_settings: Settings, tmp_path: Path) -> None:
    shared = stack_settings.model_copy(
        update={
            "consumer_group": "health-test",
            "topic_uploads": "health-test.uploads",
            # Both topics the worker reads have one partition: its range assignment gives such
            # co-partitioned topics to one member, so the other has nothing to work on.
            "topic_s3_notifications": "health-test.notifications",
            "topic_partitions": 1,
            "tenants": ["health"],
        }
    )
    one, two = (shared.model_copy(update={"worker_web_port": free_port()}) for _ in range(2))
    first = start_worker(one, tmp_path / "one.log")
    second = None
    try:
        wait_until(lambda: ready(one), 120, "ready")
        second = start_worker(two, tmp_path / "two.log")
        wait_until(lambda: answering(two), 120, "answering")
        # The positive signal: the broker lists both workers as members of the group.
        wait_until(lambda: asyncio.run(members(shared)) == 2, 60, "two members in the group")
        time.sleep(shared.broker_session_timeout)  # the rebalance the join started has ended
        # Range assignment gives both one-partition topics to one member, whichever sorts first:
        # once the rebalance is over, exactly one worker is ready and the other idle.
        wait_until(lambda: ready(one) != ready(two), 60, "exactly one worker ready")
        working, idle_settings = (one, two) if ready(one) else (two, one)
        idle = health(idle_settings, "/healthz")
        assert idle is not None and idle.status_code == 503, idle and idle.text
        assert idle.json()["status"] == "starting"
        assert not [tp for tp in idle.json()["assigned"] if tp.startswith("health-test.")]
        alive = health(idle_settings, "/livez")
        assert alive is not None and alive.status_code == 200

        stop_worker(first if working is one else second)
        wait_until(lambda: ready(idle_settings), 120, "ready after the working worker stopped")
        taken = (health(idle_settings, "/healthz") or httpx.Response(0)).json()["assigned"]
        assert {"health-test.uploads:0", "health-test.notifications:0"} <= set(taken)
    finally:
        stop_worker(first)
        if second is not None:
            stop_worker(second)
