"""Sign-in throttling: so many failed sign-ins per user name and per client address in a
sliding window, then refusals until the oldest failures age out.

The rule is a pure function (:func:`refusal`) over the times of earlier attempts; Redis only
keeps those times (:class:`LoginThrottle`, a thin adapter), so every dashboard replica
counts the same failures.

A refused attempt is not counted: the lock lasts at most one window after the failures
that caused it, however long an attacker keeps knocking, and then the right password works
again. Each attempt is recorded *before* its password is checked (one atomic Redis
transaction adds it and reads the others), so parallel guesses cannot slip past the limit
while their hashes are being computed; a successful attempt is removed again, a failed one
stays until it leaves the window.
"""

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

Scope = Literal["user", "address"]


@dataclass(frozen=True)
class LoginLimits:
    per_user: int = 10
    per_address: int = 30
    window_seconds: float = 900.0


@dataclass(frozen=True)
class Refusal:
    scope: Scope  # which limit was reached
    retry_after: float  # seconds until one more attempt is allowed

    @property
    def message(self) -> str:
        minutes = max(1, round(self.retry_after / 60))
        who = "for this name" if self.scope == "user" else "from this address"
        wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
        return f"Too many failed sign-ins {who}. Try again in {wait}."


def refusal(
    limits: LoginLimits, user_attempts: Sequence[float], address_attempts: Sequence[float], now: float
) -> Refusal | None:
    """None when one more attempt may go ahead, given the times of the earlier ones that
    still count (failed, or still being checked); otherwise which limit says no and for how long."""
    checks: tuple[tuple[Scope, int, Sequence[float]], ...] = (
        ("user", limits.per_user, user_attempts),
        ("address", limits.per_address, address_attempts),
    )
    for scope, limit, times in checks:
        recent = sorted(t for t in times if now - limits.window_seconds < t <= now)
        if len(recent) >= limit:
            # One more is allowed once all but limit - 1 of them have left the window.
            frees_at = recent[len(recent) - limit] + limits.window_seconds
            return Refusal(scope=scope, retry_after=max(frees_at - now, 0.0))
    return None


@dataclass(frozen=True)
class Attempt:
    keys: tuple[str, str]
    member: str


class LoginThrottle:
    def __init__(self, client: "aioredis.Redis", limits: LoginLimits, prefix: str = "dashboard:") -> None:
        self._redis = client
        self.limits = limits
        self._prefix = prefix + "login-attempts:"

    async def begin(self, user: str, address: str) -> Attempt | Refusal:
        """Count this attempt in, or say why it may not go ahead (and then it does not count)."""
        now = time.time()
        keys = (self._key("user", user), self._key("address", address))
        member = f"{now:.6f}:{secrets.token_hex(6)}"
        window_ms = int(self.limits.window_seconds * 1000) + 1000
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in keys:
                pipe.zremrangebyscore(key, "-inf", now - self.limits.window_seconds)
                pipe.zadd(key, {member: now})
                pipe.zrange(key, 0, -1, withscores=True)
                pipe.pexpire(key, window_ms)
            results = await pipe.execute()
        earlier = [[score for name, score in results[i] if name.decode() != member] for i in (2, 6)]
        found = refusal(self.limits, earlier[0], earlier[1], now)
        attempt = Attempt(keys=keys, member=member)
        if found is not None:
            await self._forget(attempt)
            return found
        return attempt

    async def succeeded(self, attempt: Attempt) -> None:
        """A right password does not count against the limits."""
        await self._forget(attempt)

    async def _forget(self, attempt: Attempt) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in attempt.keys:
                pipe.zrem(key, attempt.member)
            await pipe.execute()

    def _key(self, scope: Scope, value: str) -> str:
        # Hashed: a name typed into the form is unbounded and may hold anything.
        return self._prefix + scope + ":" + hashlib.sha256(value.encode()).hexdigest()[:32]
