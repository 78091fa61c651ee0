"""The soak's count of events decided twice, on real topics: a duplicate that comes after the
last event's first decision is counted too.

This process plays the worker (topics of its own, no real worker reads them): it decides
each upload once, then, after every event has its decision, publishes one event's decision
again, as a redelivery would.
"""

import asyncio

import psutil
import pytest
from modstream.bench.soak import run_soak
from modstream.core.events import ImageUploaded, ModerationDecision, Outcome
from modstream.core.kafka import kafka_consumer, kafka_producer
from modstream.core.settings import Settings
from modstream.core.topics import ensure_topics

from tests import images

pytestmark = pytest.mark.integration
EVENTS = 40
LATE_SECONDS = 3.0  # after the last first decision
QUIET_SECONDS = 6.0


async def decide_each_once_then_repeat_one_late(settings: Settings) -> None:
    decided: list[ModerationDecision] = []
    async with (
        kafka_consumer(settings, settings.topic_uploads) as uploads,
        kafka_producer(settings) as producer,
    ):
        while len(decided) < EVENTS:
            for batch in (await uploads.getmany(timeout_ms=500)).values():
                for record in batch:
                    event = ImageUploaded.model_validate_json(record.value or b"")
                    decision = ModerationDecision(
                        **event.model_dump(include={"event_id", "tenant", "bucket", "key"}),
                        decision=Outcome.ALLOW,
                        policy_id="default",
                        policy_version="soak-test",
                        uploaded_at=event.occurred_at,
                        latency_ms=1.0,
                    )
                    await producer.send_and_wait(settings.topic_decisions, decision.to_bytes())
                    decided.append(decision)
        await asyncio.sleep(LATE_SECONDS)
        await producer.send_and_wait(settings.topic_decisions, decided[0].to_bytes())


async def test_a_late_duplicate_is_counted(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(
        update={"topic_uploads": "soak-test.uploads", "topic_decisions": "soak-test.decisions"}
    )
    await ensure_topics(settings)
    worker = asyncio.create_task(decide_each_once_then_repeat_one_late(settings))
    here = psutil.Process()  # stands in for the worker's and Triton's processes
    report = await run_soak(settings, [images.encode_noise_png()], EVENTS, here, here, quiet_seconds=QUIET_SECONDS)
    await worker
    assert (report["decided"], report["lost"], report["duplicates"]) == (EVENTS, 0, 1)
