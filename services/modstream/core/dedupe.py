"""Which upload events are decided, or being decided, right now (Redis).

One key per event id. While a copy of the event is being worked on, the key holds a
lease (``lease:<token>``) that the worker renews; once the decision is on the decisions
topic, the key holds the decision id. Claiming is one atomic ``SET NX``, so two copies of
an event in flight together (a producer retry, published back to back) cannot both be
decided: the second waits until the first is decided, then skips, or takes over when the
first worker died and its lease ran out. A crash between publishing and marking can only
cause a repeat, never a loss.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis

from modstream.core.settings import Settings

LEASE = "lease:"
# Renew or drop a lease only while it is still ours: another worker may have taken over.
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass(frozen=True)
class Claim:
    """The outcome of asking for an event: ours to decide (``token``), or decided before."""

    token: str | None = None
    decided_as: str | None = None


def read_claim(found: bytes | None, token: str) -> Claim | None:
    """What the value found under an event's key means; None: someone else holds the lease."""
    if found is None:
        return Claim(token=token)
    value = found.decode()
    if value.startswith(LEASE):
        return None
    return Claim(decided_as=value)


ERASED = "erased"  # the mark of an erased event: it names no decision any more


class DecidedEvents:
    def __init__(self, settings: Settings, prefix: str = "modstream:decided:") -> None:
        self._redis = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5)
        self._ttl = settings.dedupe_ttl_seconds
        self._lease_ms = int(settings.dedupe_lease_seconds * 1000)
        self._prefix = prefix

    async def try_claim(self, event_id: str) -> Claim | None:
        """Take the event's lease, or say it was decided; None while another copy holds it."""
        token = f"{LEASE}{uuid.uuid4().hex}"
        found = await self._redis.set(self._prefix + event_id, token, nx=True, px=self._lease_ms, get=True)
        return read_claim(found, token)

    async def renew(self, event_id: str, token: str) -> bool:
        return bool(await self._redis.eval(_RENEW, 1, self._prefix + event_id, token, self._lease_ms))  # type: ignore[misc]

    async def release(self, event_id: str, token: str) -> None:
        """Give the lease back unused (work abandoned), so a replay need not wait for it to run out."""
        await self._redis.eval(_RELEASE, 1, self._prefix + event_id, token)  # type: ignore[misc]

    async def mark(self, event_id: str, decision_id: str) -> None:
        await self._redis.set(self._prefix + event_id, decision_id, ex=self._ttl)

    async def mark_erased(self, event_id: str) -> bool:
        """Mark the event as erased, so that a replay of its upload event is skipped like a
        decided one instead of decided again over an object that is gone; True when it had a mark."""
        return await self._redis.set(self._prefix + event_id, ERASED, ex=self._ttl, get=True) is not None

    @property
    def lease_seconds(self) -> float:
        return self._lease_ms / 1000

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


@contextlib.asynccontextmanager
async def renewing(decided: DecidedEvents, event_id: str, token: str) -> AsyncIterator[None]:
    """Keep the lease alive while the body works on the event (outages can make that long)."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(decided.lease_seconds / 3)
            with contextlib.suppress(Exception):  # a failed renewal is retried at the next tick
                await decided.renew(event_id, token)

    task = asyncio.create_task(keep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
