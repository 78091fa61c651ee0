"""Decisions as they appear on the decisions topic."""

from collections.abc import AsyncIterator, Container

from pydantic import ValidationError

from modstream.core.events import ModerationDecision
from modstream.core.kafka import kafka_consumer
from modstream.core.settings import Settings


async def read_decisions(
    settings: Settings,
    *,
    follow: bool,
    idle_seconds: float = 3.0,
    event_ids: Container[str] | None = None,
) -> AsyncIterator[ModerationDecision]:
    """Every decision from the start of the topic; with ``follow``, wait for more forever.

    Without ``follow`` it stops once nothing new arrived for ``idle_seconds`` (end
    offsets cannot be trusted on the local broker, so "the end" is a quiet moment).
    Records that are not decisions are skipped; ``event_ids`` keeps only those events.
    """
    async with kafka_consumer(settings, settings.topic_decisions) as consumer:
        while True:
            batches = await consumer.getmany(timeout_ms=int(idle_seconds * 1000))
            if not batches and not follow:
                return
            for records in batches.values():
                for record in records:
                    try:
                        decision = ModerationDecision.model_validate_json(record.value or b"")
                    except ValidationError:
                        continue
                    if event_ids is None or decision.event_id in event_ids:
                        yield decision
