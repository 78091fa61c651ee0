"""Which upload events already have a published decision (Redis).

An event is marked only after its decision is on the decisions topic, so a crash
between the two can only cause a repeat, never a loss.
"""

import redis.asyncio as aioredis

from modstream.core.settings import Settings


class DecidedEvents:
    def __init__(self, settings: Settings, prefix: str = "modstream:decided:") -> None:
        self._redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5)
        self._ttl = settings.dedupe_ttl_seconds
        self._prefix = prefix

    async def decision_for(self, event_id: str) -> str | None:
        """The id of the decision already published for this event, if any."""
        found = await self._redis.get(self._prefix + event_id)
        return found.decode() if found is not None else None

    async def mark(self, event_id: str, decision_id: str) -> None:
        await self._redis.set(self._prefix + event_id, decision_id, ex=self._ttl)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()
