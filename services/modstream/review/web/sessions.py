"""Server-side sessions in Redis: an opaque cookie value, the user, the role, a CSRF token.

Redis never holds the cookie value itself: a session is stored under the SHA-256 of it (its
``id``, which admins see and revoke by), so reading the store does not let anyone sign in.
Each session is indexed globally and per user (sorted sets scored by expiry time), so an
admin can list them and end them; a deleted session stops working on the next request.
Sessions expire 12 h after sign-in.
"""

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from pydantic import BaseModel

SESSION_SECONDS = 12 * 3600
TOUCH_SECONDS = 30.0  # "last seen" is written at most this often per session
BLUR_LEVELS = {"none": 0, "low": 8, "medium": 20, "high": 40}


class Session(BaseModel):
    user: str
    role: str
    csrf: str
    id: str = ""  # SHA-256 of the cookie value; empty for API bearer tokens
    created_at: datetime | None = None
    last_seen: datetime | None = None
    address: str = ""
    agent: str = ""

    @property
    def expires_at(self) -> datetime | None:
        return self.created_at + timedelta(seconds=SESSION_SECONDS) if self.created_at else None


def session_id(sid: str) -> str:
    """The public id of the session whose cookie holds ``sid``."""
    return hashlib.sha256(sid.encode()).hexdigest()


class Sessions:
    def __init__(self, client: "aioredis.Redis", prefix: str = "dashboard:") -> None:
        self._redis = client
        self._prefix = prefix

    async def create(self, user: str, role: str, *, address: str = "", agent: str = "") -> tuple[str, Session]:
        """A new session (a new cookie value, never a reused one); returns the cookie value."""
        sid = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        session = Session(
            user=user,
            role=role,
            csrf=secrets.token_urlsafe(32),
            id=session_id(sid),
            created_at=now,
            last_seen=now,
            address=address,
            agent=agent[:200],
        )
        expires = now.timestamp() + SESSION_SECONDS
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(session.id), session.model_dump_json(), ex=SESSION_SECONDS)
            pipe.zremrangebyscore(self._index(), "-inf", now.timestamp())  # expired ones leave the index
            pipe.zadd(self._index(), {session.id: expires})
            pipe.zadd(self._index(user), {session.id: expires})
            pipe.expire(self._index(user), SESSION_SECONDS)
            await pipe.execute()
        return sid, session

    async def get(self, sid: str) -> Session | None:
        """The live session behind a cookie value (and a note that it was seen now)."""
        key = self._key(session_id(sid))
        raw = await self._redis.get(key)
        if not raw:
            return None
        session = Session.model_validate_json(raw)
        now = datetime.now(UTC)
        if session.last_seen is None or (now - session.last_seen).total_seconds() >= TOUCH_SECONDS:
            session = session.model_copy(update={"last_seen": now})
            # Only while it still exists: a session revoked meanwhile stays gone.
            await self._redis.set(key, session.model_dump_json(), xx=True, keepttl=True)
        return session

    async def delete(self, sid: str) -> Session | None:
        return await self.revoke(session_id(sid))

    async def revoke(self, id: str) -> Session | None:
        """End a session by its public id at once; returns it, or None if there was none."""
        raw = await self._redis.get(self._key(id))
        session = Session.model_validate_json(raw) if raw else None
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(id))
            pipe.zrem(self._index(), id)
            if session is not None:
                pipe.zrem(self._index(session.user), id)
            await pipe.execute()
        return session

    async def revoke_user(self, user: str) -> list[Session]:
        """End every session of one user."""
        ended = [await self.revoke(s.id) for s in await self.listing(user)]
        return [s for s in ended if s is not None]

    async def listing(self, user: str | None = None) -> list[Session]:
        """Live sessions, all or one user's, the most recently seen first."""
        index = self._index(user)
        await self._redis.zremrangebyscore(index, "-inf", datetime.now(UTC).timestamp())
        ids = [raw.decode() for raw in await self._redis.zrange(index, 0, -1)]
        if not ids:
            return []
        found = await self._redis.mget([self._key(i) for i in ids])
        gone = [i for i, raw in zip(ids, found, strict=True) if raw is None]
        if gone:
            await self._redis.zrem(index, *gone)
        live = [Session.model_validate_json(raw) for raw in found if raw is not None]
        return sorted(live, key=lambda s: s.last_seen or datetime.min.replace(tzinfo=UTC), reverse=True)

    async def blur(self, user: str) -> str:
        raw = await self._redis.hget(self._prefix + "blur", user)  # type: ignore[misc]
        level = raw.decode() if raw else "medium"
        return level if level in BLUR_LEVELS else "medium"

    async def set_blur(self, user: str, level: str) -> None:
        if level not in BLUR_LEVELS:
            raise ValueError(f"blur level must be one of {', '.join(BLUR_LEVELS)}")
        await self._redis.hset(self._prefix + "blur", user, level)  # type: ignore[misc]

    def _key(self, id: str) -> str:
        return self._prefix + "session:" + id

    def _index(self, user: str | None = None) -> str:
        return self._prefix + ("sessions" if user is None else "sessions:user:" + user)
