"""Decision counts per hour (automatic vs human, per reviewer, per label), kept in Redis."""

from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from modstream.core.events import ModerationDecision

KEEP = timedelta(days=8)
# A decision is counted once: its id is remembered this long, which covers a feed retrying a
# record after a failed write and a consumer replaying its uncommitted batch.
COUNTED_FOR = timedelta(hours=1)
# Remember the id and count, or do nothing if it was counted: one script, so a failure never
# leaves half a count behind to be added again.
_COUNT_ONCE = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then return 0 end
for i = 3, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


class HourCounts(BaseModel):
    model_config = ConfigDict(frozen=True)

    hour: datetime
    automatic: int
    human: int
    by_outcome: dict[str, int]
    by_reviewer: dict[str, int]
    by_label: dict[str, int]


class DecisionCounts:
    def __init__(self, client: "aioredis.Redis", prefix: str = "stats:hour:") -> None:
        self._redis = client
        self._prefix = prefix

    async def record(self, decision: ModerationDecision) -> bool:
        """Count ``decision`` in its hour; False when it was counted already."""
        key = self._prefix + decision.occurred_at.astimezone(UTC).strftime("%Y%m%d%H")
        fields = [decision.source, f"outcome:{decision.decision.value}"]
        fields += [f"label:{t.label}" for t in decision.triggered]
        if decision.reviewer:
            fields.append(f"reviewer:{decision.reviewer}")
        counted = self._prefix + "counted:" + decision.decision_id
        ttls = [str(int(KEEP.total_seconds())), str(int(COUNTED_FOR.total_seconds()))]
        return bool(await self._redis.eval(_COUNT_ONCE, 2, key, counted, *ttls, *fields))  # type: ignore[misc]

    async def hourly(self, hours: int, now: datetime | None = None) -> list[HourCounts]:
        """The last ``hours`` hours, oldest first (hours without decisions included)."""
        top = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        result = []
        for back in range(hours - 1, -1, -1):
            hour = top - timedelta(hours=back)
            raw = await self._redis.hgetall(self._prefix + hour.strftime("%Y%m%d%H"))  # type: ignore[misc]
            counts = {k.decode(): int(v) for k, v in raw.items()}
            result.append(
                HourCounts(
                    hour=hour,
                    automatic=counts.get("automatic", 0),
                    human=counts.get("human", 0),
                    by_outcome=_group(counts, "outcome:"),
                    by_reviewer=_group(counts, "reviewer:"),
                    by_label=_group(counts, "label:"),
                )
            )
        return result


def _group(counts: dict[str, int], prefix: str) -> dict[str, int]:
    return {k.removeprefix(prefix): v for k, v in sorted(counts.items()) if k.startswith(prefix)}
