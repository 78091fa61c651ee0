"""Decisions as they appear on the decisions topic."""

import contextlib
from collections.abc import AsyncGenerator, Container

from modstream.core.events import ModerationDecision
from modstream.core.kafka import read_records
from modstream.core.settings import Settings


async def read_decisions(
    settings: Settings,
    *,
    follow: bool,
    idle_seconds: float = 3.0,
    event_ids: Container[str] | None = None,
) -> AsyncGenerator[ModerationDecision, None]:
    """Every decision from the start of the topic (see ``read_records``); ``event_ids``
    keeps only those events."""
    # Closed with this generator, so a reader that stops early also stops its Kafka consumer.
    reading = read_records(settings, settings.topic_decisions, ModerationDecision, follow, idle_seconds)
    async with contextlib.aclosing(reading) as records:
        async for decision in records:
            if event_ids is None or decision.event_id in event_ids:
                yield decision
