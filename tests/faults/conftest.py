"""A private stack for the fault tests: they kill and stop its servers, so no other package shares it.

It runs the light profile (one classifier): these tests are about Kafka, S3, Redis and the
worker surviving outages and kills, with thousands of events; the full ensemble would only
make each event 2.4 times as expensive. The ensemble's own failures (a bad image fails its
own request) are tested on the full profile (tests/integration/test_adapters.py)."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from modstream.core.events import ImageUploaded
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient

from tests import images
from tests.conftest import loopback_settings, policies_reviewing, running_stack

REVIEW_TENANT = "faults-review"  # its policy sends every safe-looking image to review


@pytest.fixture(scope="package")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One stack for every fault module: a test that stops or kills a server starts it again
    before it ends, so the next finds it whole (and each test uses event ids of its own)."""
    root = tmp_path_factory.mktemp("faults")
    policies = policies_reviewing(root / "policies", {REVIEW_TENANT: "faults"}, "faults-1", profile="light")
    # The duplicate cache is on (its default): every event here is the same stored photo, so
    # all but the first are decided from it in milliseconds, the fast path on which faust's
    # consumer once lost records at a rebalance (docs/architecture.md). The Triton outage
    # test turns it off for its own worker, so that its events meet Triton.
    settings = loopback_settings(root / "state", consumer_group="faults", policies_dir=policies, profile="light")
    with running_stack(settings):
        yield settings


async def publish_events(
    settings: Settings, count: int, tenants: tuple[str, ...] = ("faults",), parallel: int = 200
) -> list[str]:
    """``count`` upload events over one stored photo, spread over ``tenants``, ``parallel`` sends
    at a time; returns their ids."""
    photo = images.varied_images(1, seed=5)[0][1]
    async with UploadClient(settings) as client:
        first = await client.upload_image(photo, tenants[0])
        events = [
            ImageUploaded.new(tenant=tenants[i % len(tenants)], bucket=first.bucket, key=first.key)
            for i in range(1, count)
        ]
        for start in range(0, len(events), parallel):
            await asyncio.gather(*(client.send(event) for event in events[start : start + parallel]))
    return [first.event_id, *(event.event_id for event in events)]


def worker_log(settings: Settings) -> Path:
    return settings.state_dir / "logs" / "worker.log"
