"""Images erased lately, by the SHA-256 of their bytes, for the workers' score caches.

A worker reuses the scores and the embedding of byte-identical uploads for up to
``score_cache_ttl_seconds`` (``worker/duplicates.py``), in its own memory: an erasure cannot
reach into it. It leaves a notice here instead; every worker reads the notices at its next
refresh (every ``policy_refresh_seconds``) and drops what it holds of them. A notice is kept
only as long as a cache may hold the entry, then trimmed: the digest does not linger here.
"""

import time
from collections.abc import Iterable

import redis.asyncio as aioredis

KEY = "erased:sha256"  # zset: digest -> when it was erased


class ErasedImages:
    def __init__(self, client: "aioredis.Redis", keep_seconds: float) -> None:
        self._redis = client
        self.keep_seconds = keep_seconds

    async def add(self, digests: Iterable[str], now: float | None = None) -> int:
        """Leave a notice for each digest; how many."""
        now = time.time() if now is None else now
        notices = dict.fromkeys(digests, now)
        if notices:
            await self._redis.zadd(KEY, notices)
        await self._redis.zremrangebyscore(KEY, "-inf", now - self.keep_seconds)
        return len(notices)

    async def since(self, after: float) -> tuple[list[str], float]:
        """The digests erased after ``after`` (a time from an earlier call, or a worker's start),
        and the time to ask from next."""
        found = await self._redis.zrangebyscore(KEY, f"({after!r}", "+inf", withscores=True)
        latest = max((when for _, when in found), default=after)
        return [digest.decode() for digest, _ in found], latest
