"""From when a new label's verdicts count: its definition time in the label registry.

Before a label was defined reviewers could not tick it, so a verdict of that time that does
not name it says nothing about it. The registry (``modstream.core.labels``, in Redis) knows
when each label it holds was defined; for a label it does not hold (one a model brought
without anyone defining it), a person says with ``--since``. Both given: the later counts.
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from modstream.core.labels import LabelRegistry
from modstream.core.settings import Settings


@dataclass(frozen=True)
class CountingFrom:
    """When a label's verdicts start to count, and why."""

    at: datetime | None
    """None: every verdict counts (nothing said when the label came to be)."""
    defined_at: datetime | None
    """The registry's definition time, when it holds the label."""

    def __str__(self) -> str:
        if self.at is None:
            return "every verdict (its definition time is unknown: give --since)"
        if self.defined_at is not None and self.at == self.defined_at:
            return f"verdicts from {self.at:%Y-%m-%d %H:%M:%S} UTC (its definition)"
        return f"verdicts from {self.at:%Y-%m-%d %H:%M:%S} UTC (--since)"


def counting_from(defined_at: datetime | None, since: datetime | None) -> CountingFrom:
    """The later of the label's definition time and ``since``, when either is known."""
    known = [moment for moment in (defined_at, since) if moment is not None]
    return CountingFrom(at=max(known) if known else None, defined_at=defined_at)


async def definition_times(
    settings: Settings, labels: Collection[str], warn: Callable[[str], None]
) -> dict[str, datetime]:
    """Label -> when it was defined, for the ``labels`` the registry holds. When Redis cannot
    be asked, ``warn`` says so and every label counts as unknown (``--since`` still counts)."""
    if not labels:
        return {}
    client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        registry = LabelRegistry(client)
        found = {}
        for label in sorted(labels):
            definition = await registry.get(label)
            if definition is not None:
                found[label] = definition.defined_at
        return found
    except (RedisError, OSError) as exc:
        warn(f"the label registry (Redis) did not answer ({type(exc).__name__}): only --since counts")
        return {}
    finally:
        await client.aclose()
