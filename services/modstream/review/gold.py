"""Gold items in Redis: the items admins marked (a verdicted job and its known answer), which one a
reviewer is shown next, and the tallies of reviewers' answers on them.

Keys (prefix ``review:``): ``gold:item:{event id}`` a hash (the job as it was reviewed, the
answer, who marked it and who gave the verdict it was marked from); ``gold:queue:{queue}`` the
set of a queue's items; ``gold:answered:{reviewer}`` the items a reviewer has answered, never
shown to them again; ``gold:tally`` a hash of answers and right answers per reviewer, tenant and
label (``core/gold.py`` judges them). A showing of an item is a job of its own, with a new id,
leased at once (``ReviewQueues.lease_gold``), so that a page shows nothing that tells it apart.
"""

import json
import random
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from modstream.core.gold import GoldAnswer, Tally
from modstream.review.jobs import ReviewJob

_SEP = "\t"  # between reviewer, tenant and label in a tally's field: none of them holds a tab


@dataclass(frozen=True)
class GoldItem:
    event_id: str
    job: ReviewJob  # as it was reviewed
    answer: GoldAnswer
    marked_by: str
    marked_at: datetime
    decided_by: str  # who gave the verdict it was marked from: never shown it as gold


class GoldBook:
    def __init__(self, client: "aioredis.Redis", prefix: str = "review:") -> None:
        self._redis = client
        self._prefix = prefix

    def _item(self, event_id: str) -> str:
        return f"{self._prefix}gold:item:{event_id}"

    async def mark(self, job: ReviewJob, answer: GoldAnswer, by: str, decided_by: str) -> GoldItem:
        item = GoldItem(job.event_id, job, answer, by, datetime.now(UTC), decided_by)
        fields = {
            "data": job.model_dump_json(),
            "verdict": answer.verdict,
            "labels": json.dumps(sorted(answer.labels)),
            "marked_by": by,
            "marked_at": item.marked_at.isoformat(),
            "decided_by": decided_by,
        }
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._item(job.event_id), mapping=fields)
            pipe.sadd(f"{self._prefix}gold:queue:{job.queue}", job.event_id)
            await pipe.execute()
        return item

    async def get(self, event_id: str) -> GoldItem | None:
        raw = await self._redis.hgetall(self._item(event_id))  # type: ignore[misc]
        if not raw:
            return None
        values = {k.decode(): v.decode() for k, v in raw.items()}
        return GoldItem(
            event_id=event_id,
            job=ReviewJob.model_validate_json(values["data"]),
            answer=GoldAnswer(values["verdict"], frozenset(json.loads(values["labels"]))),
            marked_by=values["marked_by"],
            marked_at=datetime.fromisoformat(values["marked_at"]),
            decided_by=values["decided_by"],
        )

    async def items(self) -> list[GoldItem]:
        found = []
        async for key in self._redis.scan_iter(match=f"{self._prefix}gold:item:*"):
            item = await self.get(key.decode().removeprefix(f"{self._prefix}gold:item:"))
            if item is not None:
                found.append(item)
        return sorted(found, key=lambda item: (item.job.queue, item.marked_at))

    async def draw(self, queue: str, reviewer: str, may_see: Callable[[ReviewJob], bool]) -> GoldItem | None:
        """One of ``queue``'s items at random that ``reviewer`` has not answered, did not decide,
        and may be shown (``may_see``: the exposure limits)."""
        members = await self._redis.smembers(f"{self._prefix}gold:queue:{queue}")  # type: ignore[misc]
        answered = await self._redis.smembers(f"{self._prefix}gold:answered:{reviewer}")  # type: ignore[misc]
        candidates = sorted(m.decode() for m in members - answered)
        random.shuffle(candidates)
        for event_id in candidates:
            item = await self.get(event_id)
            if item is not None and item.decided_by != reviewer and may_see(item.job):
                return item
        return None

    async def record(self, reviewer: str, item: GoldItem, judged: dict[str, bool]) -> None:
        """Count a reviewer's answer on ``item``, judged per label; they are not shown it again."""
        tally = f"{self._prefix}gold:tally"
        async with self._redis.pipeline(transaction=True) as pipe:
            for label, right in judged.items():
                field = _SEP.join((reviewer, item.job.tenant, label))
                pipe.hincrby(tally, field + _SEP + "answers", 1)
                pipe.hincrby(tally, field + _SEP + "right", int(right))
            pipe.sadd(f"{self._prefix}gold:answered:{reviewer}", item.event_id)
            await pipe.execute()

    async def tallies(self) -> list[Tally]:
        raw = await self._redis.hgetall(f"{self._prefix}gold:tally")  # type: ignore[misc]
        counts: dict[tuple[str, str, str], dict[str, int]] = {}
        for field, value in raw.items():
            reviewer, tenant, label, kind = field.decode().split(_SEP)
            counts.setdefault((reviewer, tenant, label), {})[kind] = int(value)
        return [
            Tally(reviewer, tenant, label, n.get("answers", 0), n.get("right", 0))
            for (reviewer, tenant, label), n in sorted(counts.items())
        ]

    async def erase(self, event_ids: Collection[str]) -> int:
        """Remove these uploads' items and the record of who answered them (erasure): how many
        items there were. The tallies stay: they hold no id."""
        if event_ids:
            async for key in self._redis.scan_iter(match=f"{self._prefix}gold:answered:*"):
                await self._redis.srem(key, *event_ids)  # type: ignore[misc]
        removed = 0
        for event_id in event_ids:
            item = await self.get(event_id)
            if item is None:
                continue
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._item(event_id))
                pipe.srem(f"{self._prefix}gold:queue:{item.job.queue}", event_id)
                await pipe.execute()
            removed += 1
        return removed

    async def unmark(self, event_id: str) -> bool:
        return bool(await self.erase([event_id]))
