"""The audit log: an append-only Redis stream of who did what, and when.

Nothing in modstream edits or deletes entries; the dashboard only reads them.
"""

import json
from datetime import UTC, datetime

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

STREAM = "audit:log"
MAX_ENTRIES = 1_000_000  # approximate cap, so the log cannot fill the server


class AuditEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: str
    action: str
    details: dict[str, str]


class AuditLog:
    def __init__(self, client: "aioredis.Redis", stream: str = STREAM) -> None:
        self._redis = client
        self._stream = stream

    async def append(self, actor: str, action: str, **details: object) -> None:
        fields = {"actor": actor, "action": action, "details": json.dumps({k: str(v) for k, v in details.items()})}
        await self._redis.xadd(self._stream, fields, maxlen=MAX_ENTRIES, approximate=True)  # type: ignore[arg-type]

    async def entries(
        self, *, actor: str | None = None, action: str | None = None, limit: int = 200
    ) -> list[AuditEntry]:
        """Newest first, optionally only one actor's or one action's."""
        found: list[AuditEntry] = []
        last = "+"
        while len(found) < limit:
            batch = await self._redis.xrevrange(self._stream, max=last, count=500)
            if not batch:
                break
            for entry_id, raw in batch:
                fields = {k.decode(): v.decode() for k, v in raw.items()}
                if (actor and fields["actor"] != actor) or (action and fields["action"] != action):
                    continue
                millis = int(entry_id.decode().split("-")[0])
                found.append(
                    AuditEntry(
                        at=datetime.fromtimestamp(millis / 1000, UTC),
                        actor=fields["actor"],
                        action=fields["action"],
                        details=json.loads(fields["details"]),
                    )
                )
                if len(found) == limit:
                    break
            last = "(" + batch[-1][0].decode()
        return found
