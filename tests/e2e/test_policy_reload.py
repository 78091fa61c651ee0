"""A running worker picks up a changed policy without a restart, and keeps the old one if the new is invalid."""

import asyncio
import os
import subprocess
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from modstream.core.events import ModerationDecision
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient
from modstream.review.audit import AuditEntry, AuditLog

from tests import images
from tests.records import first_records
from tests.workers import log_line, log_size

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
TENANT = "reload-e2e"


async def decide_one(settings: Settings) -> ModerationDecision:
    async with UploadClient(settings) as client:
        event = await client.upload_image(images.encode_noise_png(), TENANT)
    decisions = await first_records(settings, settings.topic_decisions, ModerationDecision, [event.event_id])
    return decisions[event.event_id]


def write_policy(settings: Settings, text: str) -> None:
    path = settings.policies_dir / "tenants" / f"{TENANT}.yaml"
    path.write_text(text)
    later = time.time_ns() + 50_000_000
    os.utime(path, ns=(later, later))


async def policy_changes(settings: Settings) -> list[AuditEntry]:
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        return await AuditLog(client).entries(actor="worker", action="policy_change")
    finally:
        await client.aclose()


async def audited(settings: Settings, version: str, timeout: float = 60) -> AuditEntry:
    """The worker's audit entry saying it applied ``version`` of this tenant's policy."""
    async with asyncio.timeout(timeout):
        while True:
            for entry in await policy_changes(settings):
                if entry.details.get(TENANT) == version:
                    return entry
            await asyncio.sleep(0.25)


async def test_policy_changes_apply_live_and_a_broken_one_is_refused(
    worker_settings: Settings, worker: subprocess.Popen[bytes], worker_log: Path
) -> None:
    assert (await decide_one(worker_settings)).policy_id == "default"  # no override for this tenant yet

    write_policy(worker_settings, 'version: "reload-1"\nlabels:\n  sexual.any: {review_at: 0.2}\n')
    await audited(worker_settings, "reload-1")  # applied without a restart, and audit-logged
    first = await decide_one(worker_settings)
    assert (first.policy_id, first.policy_version) == (f"tenant:{TENANT}", "reload-1")

    logged = log_size(worker_log)
    write_policy(worker_settings, 'version: "reload-2"\nlabels:\n  sexual.any: {review_at: 0.9, block_at: 0.5}\n')
    refusal = await log_line(
        worker_log,
        lambda line: (
            line.get("msg") == "policy change refused, keeping the previous policies"
            and f"{TENANT}.yaml" in str(line.get("error"))
        ),
        after=logged,
    )
    assert "review_at" in refusal["error"]  # names the file, the tenant and the field
    kept = await decide_one(worker_settings)  # decided after the refusal
    assert kept.policy_version == "reload-1"
    assert worker.poll() is None
    assert not any(e.details.get(TENANT) == "reload-2" for e in await policy_changes(worker_settings))
