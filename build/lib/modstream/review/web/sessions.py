"""Server-side sessions in Redis: an opaque cookie value, the user, the role, a CSRF token."""

import secrets

import redis.asyncio as aioredis
from pydantic import BaseModel

SESSION_SECONDS = 12 * 3600
BLUR_LEVELS = {"none": 0, "low": 8, "medium": 20, "high": 40}


class Session(BaseModel):
    user: str
    role: str
    csrf: str


class Sessions:
    def __init__(self, client: "aioredis.Redis", prefix: str = "dashboard:") -> None:
        self._redis = client
        self._prefix = prefix

    async def create(self, user: str, role: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(user=user, role=role, csrf=secrets.token_urlsafe(32))
        await self._redis.set(self._prefix + "session:" + sid, session.model_dump_json(), ex=SESSION_SECONDS)
        return sid, session

    async def get(self, sid: str) -> Session | None:
        raw = await self._redis.get(self._prefix + "session:" + sid)
        return Session.model_validate_json(raw) if raw else None

    async def delete(self, sid: str) -> None:
        await self._redis.delete(self._prefix + "session:" + sid)

    async def blur(self, user: str) -> str:
        raw = await self._redis.hget(self._prefix + "blur", user)  # type: ignore[misc]
        level = raw.decode() if raw else "medium"
        return level if level in BLUR_LEVELS else "medium"

    async def set_blur(self, user: str, level: str) -> None:
        if level not in BLUR_LEVELS:
            raise ValueError(f"blur level must be one of {', '.join(BLUR_LEVELS)}")
        await self._redis.hset(self._prefix + "blur", user, level)  # type: ignore[misc]
