"""A worker on the real stack applies the audit rate drift raised for a tenant (read from
Redis with its policy refresh) and lets it go when it is lowered."""

import subprocess

import pytest
import redis.asyncio as aioredis
from modstream.core.audit_rates import AUDIT_RATES
from modstream.core.events import ModerationDecision
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient

from tests import images
from tests.e2e.conftest import RAISED_TENANT
from tests.records import decisions_for

pytestmark = pytest.mark.e2e


async def decide_one(settings: Settings) -> ModerationDecision:
    async with UploadClient(settings) as client:
        event = await client.upload_image(images.encode_noise_png(64, 64), RAISED_TENANT)
    (decision,) = await decisions_for(settings, {event.event_id}, timeout=120)
    return decision


async def test_the_worker_samples_at_the_raised_rate_while_it_is_raised(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    client = aioredis.Redis.from_url(worker_settings.redis_url)
    try:
        before = await decide_one(worker_settings)
        await client.hset(AUDIT_RATES, RAISED_TENANT, "1.0")  # type: ignore[misc]
        during = await decide_one(worker_settings)
        for _ in range(10):  # the worker reads it with its policy refresh (every 2 s)
            if during.audit_rate == 1.0:
                break
            during = await decide_one(worker_settings)
        await client.hdel(AUDIT_RATES, RAISED_TENANT)  # type: ignore[misc]
        after = await decide_one(worker_settings)
        for _ in range(10):
            if after.audit_rate != 1.0:
                break
            after = await decide_one(worker_settings)
    finally:
        await client.hdel(AUDIT_RATES, RAISED_TENANT)  # type: ignore[misc]
        await client.aclose()
    policy_rate = before.audit_rate
    assert policy_rate < 1.0
    assert during.audit_rate == 1.0
    assert during.audit_sample or during.review_queue not in (None, "audit")  # sampled, unless already for review
    assert after.audit_rate == policy_rate
