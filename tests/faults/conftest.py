"""A private stack for fault tests: they kill and stop its servers, so nobody else shares it."""

import asyncio
import shutil
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from modstream.core.events import ImageUploaded, ModerationDecision
from modstream.core.kafka import read_records
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.ingest.sdk import UploadClient
from modstream.stack import start_stack, stop_stack

from tests import images
from tests.conftest import loopback_settings

REVIEW_TENANT = "faults-review"  # its policy sends every safe-looking image to review


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    root = tmp_path_factory.mktemp("faults")
    policies = root / "policies"
    shutil.copytree(PROJECT_ROOT / "config" / "policies", policies)
    (policies / "tenants" / f"{REVIEW_TENANT}.yaml").write_text(
        'version: "faults-1"\nlabels:\n  sfw: {review_at: 0.5, block_at: 1.0, queue: faults}\n'
    )
    settings = loopback_settings(root / "state", consumer_group="faults", policies_dir=policies)
    try:
        start_stack(settings, timeout=240)
        ObjectStore(settings).ensure_bucket(settings.uploads_bucket)
        yield settings
    finally:
        stop_stack(settings)


async def publish_events(settings: Settings, count: int, tenants: tuple[str, ...] = ("faults",)) -> list[str]:
    """``count`` upload events over one stored photo, spread over ``tenants``; returns their ids."""
    photo = images.varied_images(1, seed=5)[0][1]
    async with UploadClient(settings) as client:
        first = await client.upload_image(photo, tenants[0])
        events = [
            ImageUploaded.new(tenant=tenants[i % len(tenants)], bucket=first.bucket, key=first.key)
            for i in range(1, count)
        ]
        for start in range(0, len(events), 200):
            await asyncio.gather(*(client.send(event) for event in events[start : start + 200]))
    return [first.event_id, *(event.event_id for event in events)]


class DecisionLog:
    """Every decision on the decisions topic, grouped by event id, read in the background."""

    def __init__(self, settings: Settings) -> None:
        self.by_event: dict[str, list[ModerationDecision]] = defaultdict(list)
        self._task = asyncio.create_task(self._read(settings))

    async def _read(self, settings: Settings) -> None:
        async for decision in read_records(settings, settings.topic_decisions, ModerationDecision, follow=True):
            self.by_event[decision.event_id].append(decision)

    def decided(self, event_ids: list[str]) -> int:
        return sum(1 for e in event_ids if e in self.by_event)

    async def wait_for(self, event_ids: list[str], count: int, timeout: float) -> int:
        """Wait until ``count`` of ``event_ids`` are decided (or the time is up); returns how many are."""
        for _ in range(int(timeout * 2)):
            if self.decided(event_ids) >= count:
                break
            await asyncio.sleep(0.5)
        return self.decided(event_ids)

    def duplicates(self, event_ids: list[str]) -> dict[str, list[ModerationDecision]]:
        return {e: self.by_event[e] for e in event_ids if len(self.by_event.get(e, [])) > 1}

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def worker_log(settings: Settings) -> Path:
    return settings.state_dir / "logs" / "worker.log"
