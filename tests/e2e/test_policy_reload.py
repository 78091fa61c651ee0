"""A running worker picks up a changed policy without a restart, and keeps the old one if the new is invalid."""

import asyncio
import os
import subprocess
import time

import pytest
import redis.asyncio as aioredis
from modstream.core.events import ModerationDecision
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient
from modstream.review.audit import AuditLog

from tests import images
from tests.records import first_records

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


async def test_policy_changes_apply_live_and_a_broken_one_is_refused(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    assert (await decide_one(worker_settings)).policy_id == "default"  # no override for this tenant yet

    write_policy(worker_settings, 'version: "reload-1"\nlabels:\n  nsfw: {review_at: 0.2}\n')
    await asyncio.sleep(worker_settings.policy_refresh_seconds * 2 + 1)
    first = await decide_one(worker_settings)
    assert (first.policy_id, first.policy_version) == (f"tenant:{TENANT}", "reload-1")

    write_policy(worker_settings, 'version: "reload-2"\nlabels:\n  nsfw: {review_at: 0.9, block_at: 0.5}\n')
    await asyncio.sleep(worker_settings.policy_refresh_seconds * 2 + 1)
    kept = await decide_one(worker_settings)
    assert kept.policy_version == "reload-1"  # the invalid file was refused
    assert worker.poll() is None

    client = aioredis.Redis.from_url(worker_settings.redis_url)
    changes = await AuditLog(client).entries(actor="worker", action="policy_change")
    await client.aclose()
    assert any(e.details.get(TENANT) == "reload-1" for e in changes)
    assert not any(e.details.get(TENANT) == "reload-2" for e in changes)
