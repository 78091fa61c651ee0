"""Drift alarms on the real stack: decisions through Kafka into a real archiver process, its
drift read from its own /metrics, its audit-rate changes from Redis and the audit log.

Two tenants in one stream: "steady" keeps its score distribution; "shifting" moves its nsfw
scores up mid-way, then back. The alarm (PSI >= 0.2) must come within one window of the
shift, "steady" must never reach the warning level (0.1), and the raised audit rate must
come and go with the drift.
"""

import asyncio
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from modstream.core.audit_rates import raised_audit_rates
from modstream.core.ports import free_port
from modstream.core.settings import Settings
from modstream.review.audit import AuditLog

from tests.archive import Produce, decision, private_archive, start_archiver

pytestmark = pytest.mark.integration
WINDOW = 5.0
PER_SECOND = 300  # per tenant: ~1,500 decisions a window
PSI = re.compile(r"^modstream_drift_psi\{([^}]*)\} ([0-9.eE+-]+)$", re.MULTILINE)


class Stream:
    """Decisions for both tenants at a steady rate; ``shifted`` moves "shifting"'s scores."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.shifted = False
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        producer, rng = Produce(self.settings), random.Random(9)
        while not self.stopped.is_set():
            started = time.monotonic()
            for _ in range(PER_SECOND // 10):
                now = datetime.now(UTC)
                producer.record("decisions", decision(rng, now, "steady", nsfw=rng.betavariate(2, 8)))
                high = rng.betavariate(5, 3) if self.shifted else rng.betavariate(2, 8)
                producer.record("decisions", decision(rng, now, "shifting", nsfw=high))
            producer.flush()
            time.sleep(max(0.0, 0.1 - (time.monotonic() - started)))


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.2) -> None:
    for _ in range(int(timeout / every)):
        if await condition():
            return
        await asyncio.sleep(every)
    raise TimeoutError(f"not so within {timeout:.0f} s")


async def answers(settings: Settings) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            return (await http.get(f"http://127.0.0.1:{settings.archive_web_port}/livez")).status_code == 200
    except httpx.HTTPError:
        return False


async def psi_readings(settings: Settings) -> dict[str, float]:
    """tenant -> the nsfw PSI the archiver's /metrics shows now."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"http://127.0.0.1:{settings.archive_web_port}/metrics")).text
    found = {}
    for labels, value in PSI.findall(text):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if fields.get("label") == "nsfw":
            found[fields["tenant"]] = float(value)
    return found


async def has_raised(client: "aioredis.Redis", tenants: set[str]) -> bool:
    return set(await raised_audit_rates(client)) == tenants


async def test_a_shift_raises_the_alarm_within_a_window_and_a_steady_stream_none(
    stack_settings: Settings, tmp_path: Path
) -> None:
    settings = (await private_archive(stack_settings)).model_copy(
        update={
            "archive_flush_seconds": 0.5,
            "archive_web_port": free_port(),
            "drift_window_seconds": WINDOW,
            "drift_reference_windows": 2,
            # Windows are compared from 900 decisions on: PSI's noise is then ~0.03.
            "drift_min_count": 900,
            "redis_url": stack_settings.redis_url.rsplit("/", 1)[0] + "/3",  # a database of its own
        }
    )
    client = aioredis.Redis.from_url(settings.redis_url)
    await client.flushdb()
    stream = Stream(settings)
    archiver = start_archiver(settings, tmp_path / "archive.log")
    stream.thread.start()
    steady: list[float] = []

    async def steady_read(enough: Callable[[dict[str, float]], bool]) -> bool:
        readings = await psi_readings(settings)
        if "steady" in readings:
            steady.append(readings["steady"])
        return enough(readings)

    try:
        await until(lambda: answers(settings), 60)
        # The reference (2 windows), then a few readings of both tenants.
        await until(lambda: steady_read(lambda r: len(steady) >= 8 and "shifting" in r), 60, every=0.5)
        assert await raised_audit_rates(client) == {}

        stream.shifted, shifted_at = True, time.monotonic()
        await until(lambda: steady_read(lambda r: r["shifting"] >= 0.2), 4 * WINDOW, every=0.1)
        delay = time.monotonic() - shifted_at
        await until(lambda: has_raised(client, {"shifting"}), 10)
        assert await raised_audit_rates(client) == {"shifting": settings.drift_audit_rate}

        stream.shifted = False
        await until(lambda: has_raised(client, set()), 6 * WINDOW)
        await steady_read(lambda r: True)
    finally:
        stream.stopped.set()
        stream.thread.join(30)
        archiver.terminate()
        archiver.wait(30)
    actions = [(e.action, e.details["tenant"]) for e in await AuditLog(client).entries(actor="drift-monitor")]
    await client.aclose()
    print(f"drift detection delay: {delay:.1f} s (window {WINDOW:.0f} s); steady PSI max {max(steady):.3f}")
    assert delay <= WINDOW + 2.0, f"the alarm took {delay:.1f} s, over one window ({WINDOW} s) and the flush"
    assert max(steady) < 0.1, steady
    assert actions == [("audit_rate_restored", "shifting"), ("audit_rate_raised", "shifting")]  # newest first
