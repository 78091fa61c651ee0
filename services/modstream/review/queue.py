"""Review queues in Redis: idempotent enqueue, leased claims, release, close.

Every state change is one Lua script, so it is atomic on the server: two reviewers can
never hold the same job, and a job is never both pending and leased. A job moves
pending -> leased -> closed, or back to pending when its lease is released or expires
(expired leases are returned by whichever call next touches that queue).

Keys (prefix ``review:``): ``job:{id}`` hash; ``pending:{queue}`` zset by due date (epoch
seconds: claims serve the job due soonest, and the jobs past due are a range count);
``age:{queue}`` zset by enqueue time; ``leases:{queue}`` zset by lease expiry; ``queues`` set
of queue names; ``depth:{queue}`` zset of depth samples. The scripts address keys they
compute, so they assume a single Redis, not a cluster.

A job may exclude reviewers (a second review, its first reviewer): a field
``excluded:{reviewer}`` in its hash. A severe job may be refused to a reviewer by the
exposure limits of its tenant (``refused``, computed by the caller from that reviewer's
counters). A claim takes the first job in order that the claimer may take, looking at no more
than ``CLAIM_SCAN`` pending jobs per queue, so a claim stays cheap however long the queue; jobs
it passes over stay pending, in place, for others.

A closed job's hash expires after the retention; open jobs never do. What happened to it
stays in the audit log (a stream of its own). Enqueue is idempotent only while the hash
is there, so the retention must outlast the review-requests topic's: a request replayed
after its job expired makes a new job.
"""

import json
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis.asyncio as aioredis

from modstream.core.settings import Settings
from modstream.review.jobs import Lease, QueueStats, ReviewJob

# A reviewer who has this many excluded jobs at the head of a queue finds it empty until
# others take some: only their own first verdicts' second reviews exclude them.
CLAIM_SCAN = 100


class LeaseLost(Exception):
    """The reviewer does not (or no longer) hold a live lease on the job."""


@dataclass(frozen=True)
class SevereRefused:
    """Whose severe jobs a claim may not hand out: tenants by name, any other by ``default``."""

    default: bool = False
    tenants: dict[str, bool] = field(default_factory=dict)

    def of(self, tenant: str) -> bool:
        return self.tenants.get(tenant, self.default)

    def allows(self, job: ReviewJob) -> bool:
        """Whether ``job`` may go to the reviewer (the claim script's ``may_take``, but for exclusions)."""
        return job.severity != "severe" or not self.of(job.tenant)

    def to_json(self) -> str:
        return json.dumps({"default": self.default, "tenants": self.tenants or {}})


NOTHING_REFUSED = SevereRefused()


_RETURN_EXPIRED = """
local function return_expired(prefix, queue, now)
  local leases = prefix .. 'leases:' .. queue
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', now)) do
    local job = prefix .. 'job:' .. id
    if redis.call('HEXISTS', job, 'gold') == 1 then
      redis.call('DEL', job)  -- a gold item's showing ends with its lease
    else
      redis.call('HSET', job, 'status', 'pending', 'reviewer', '')
      redis.call('ZADD', prefix .. 'pending:' .. queue, redis.call('HGET', job, 'order'), id)
      redis.call('ZADD', prefix .. 'age:' .. queue, redis.call('HGET', job, 'enqueued'), id)
    end
    redis.call('ZREM', leases, id)
  end
end
"""

_ENQUEUE = """
local prefix, id, queue = ARGV[1], ARGV[2], ARGV[3]
local job = prefix .. 'job:' .. id
if redis.call('EXISTS', job) == 1 then return 0 end
redis.call('HSET', job, 'data', ARGV[4], 'status', 'pending', 'queue', queue, 'order', ARGV[5],
           'enqueued', ARGV[6], 'reviewer', '', 'tenant', ARGV[7], 'severe', ARGV[8])
for i = 9, #ARGV do redis.call('HSET', job, 'excluded:' .. ARGV[i], 1) end
redis.call('ZADD', prefix .. 'pending:' .. queue, ARGV[5], id)
redis.call('ZADD', prefix .. 'age:' .. queue, ARGV[6], id)
redis.call('SADD', prefix .. 'queues', queue)
return 1
"""

_CLAIM = (
    _RETURN_EXPIRED
    + """
-- ARGV: prefix, reviewer, now, expires, scan, refused (JSON: {"default": bool, "tenants":
-- {tenant: bool}}: whose severe jobs this reviewer may not take), then the queues to serve.
local prefix, reviewer, now, expires, scan = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local refused = cjson.decode(ARGV[6])
local function may_take(job)
  if redis.call('HEXISTS', job, 'excluded:' .. reviewer) == 1 then return false end
  if redis.call('HGET', job, 'severe') ~= '1' then return true end
  local by_tenant = refused['tenants'][redis.call('HGET', job, 'tenant')]
  if by_tenant == nil then return not refused['default'] end
  return not by_tenant
end
-- The first job of a queue this reviewer may take, and its due date; in pages of 10: the
-- head of a queue is nearly always claimable.
local function first_takeable(queue)
  local pending = prefix .. 'pending:' .. queue
  local from, last = 0, scan - 1
  while from <= last do
    local ids = redis.call('ZRANGE', pending, from, math.min(from + 9, last), 'WITHSCORES')
    if #ids == 0 then return nil end
    for i = 1, #ids, 2 do
      if may_take(prefix .. 'job:' .. ids[i]) then return ids[i], tonumber(ids[i + 1]) end
    end
    from = from + #ids / 2
  end
  return nil
end
local best, best_due, best_queue = nil, nil, nil
for i = 7, #ARGV do
  local queue = ARGV[i]
  return_expired(prefix, queue, now)
  local id, due = first_takeable(queue)
  if id and (best_due == nil or due < best_due) then best, best_due, best_queue = id, due, queue end
end
if not best then return nil end
local job = prefix .. 'job:' .. best
redis.call('ZREM', prefix .. 'pending:' .. best_queue, best)
redis.call('ZREM', prefix .. 'age:' .. best_queue, best)
redis.call('ZADD', prefix .. 'leases:' .. best_queue, expires, best)
redis.call('HSET', job, 'status', 'leased', 'reviewer', reviewer, 'claimed', now, 'expires', expires)
local first = redis.call('HSETNX', job, 'first_claimed', now)
return {best, redis.call('HGET', job, 'data'), first}
"""
)

# Shared check: the caller holds a live lease on this job. Returns the job key or nil.
_HELD = """
local function held(prefix, id, reviewer, now)
  local job = prefix .. 'job:' .. id
  local status, who, expires = unpack(redis.call('HMGET', job, 'status', 'reviewer', 'expires'))
  if status ~= 'leased' or who ~= reviewer or tonumber(expires) < tonumber(now) then return nil end
  return job
end
"""

_RELEASE = (
    _HELD
    + """
local prefix, id, reviewer, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local job = held(prefix, id, reviewer, now)
if not job then return 0 end
local queue = redis.call('HGET', job, 'queue')
redis.call('ZREM', prefix .. 'leases:' .. queue, id)
if redis.call('HEXISTS', job, 'gold') == 1 then
  redis.call('DEL', job)
  return 1
end
redis.call('HSET', job, 'status', 'pending', 'reviewer', '')
redis.call('ZADD', prefix .. 'pending:' .. queue, redis.call('HGET', job, 'order'), id)
redis.call('ZADD', prefix .. 'age:' .. queue, redis.call('HGET', job, 'enqueued'), id)
return 1
"""
)

# Extends a held lease: a verdict keeps the job while its decision is being published.
_EXTEND = (
    _HELD
    + """
local prefix, id, reviewer, now, expires = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local job = held(prefix, id, reviewer, now)
if not job then return 0 end
redis.call('HSET', job, 'expires', expires)
redis.call('ZADD', prefix .. 'leases:' .. redis.call('HGET', job, 'queue'), expires, id)
return 1
"""
)

_CLOSE = (
    _HELD
    + """
local prefix, id, reviewer, now, retention = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local job = held(prefix, id, reviewer, now)
if not job then return 0 end
redis.call('ZREM', prefix .. 'leases:' .. redis.call('HGET', job, 'queue'), id)
if redis.call('HEXISTS', job, 'gold') == 1 then
  redis.call('DEL', job)  -- nothing replays a gold showing: its answer is in the tallies
  return 1
end
redis.call('HSET', job, 'status', 'closed', 'closed', now)
redis.call('EXPIRE', job, retention)
return 1
"""
)

_STATS = (
    _RETURN_EXPIRED
    + """
local prefix, now = ARGV[1], ARGV[2]
local out = {}
for _, queue in ipairs(redis.call('SMEMBERS', prefix .. 'queues')) do
  return_expired(prefix, queue, now)
  local pending = prefix .. 'pending:' .. queue
  local oldest = redis.call('ZRANGE', prefix .. 'age:' .. queue, 0, 0, 'WITHSCORES')
  local soonest = redis.call('ZRANGE', pending, 0, 0, 'WITHSCORES')
  table.insert(out, {queue, redis.call('ZCARD', pending), redis.call('ZCARD', prefix .. 'leases:' .. queue),
                     oldest[2] or '', soonest[2] or '', redis.call('ZCOUNT', pending, '-inf', now)})
end
return out
"""
)

# Jobs queued before due dates were ordered by priority (a score of 1e10 x a priority step plus
# the enqueue time): from then on every order is an epoch of seconds, under 1e11. ARGV: prefix,
# seconds to add to a legacy job's enqueue time (its due target).
_REORDER_LEGACY = """
local prefix, within = ARGV[1], tonumber(ARGV[2])
local moved = 0
for _, queue in ipairs(redis.call('SMEMBERS', prefix .. 'queues')) do
  local pending = prefix .. 'pending:' .. queue
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', pending, 1e11, '+inf')) do
    local job = prefix .. 'job:' .. id
    local due = tonumber(redis.call('HGET', job, 'enqueued')) + within
    redis.call('HSET', job, 'order', due)
    redis.call('ZADD', pending, due, id)
    moved = moved + 1
  end
  for _, id in ipairs(redis.call('ZRANGE', prefix .. 'leases:' .. queue, 0, -1)) do
    local job = prefix .. 'job:' .. id
    local order = tonumber(redis.call('HGET', job, 'order'))
    if order and order >= 1e11 then
      redis.call('HSET', job, 'order', tonumber(redis.call('HGET', job, 'enqueued')) + within)
      moved = moved + 1
    end
  end
end
return moved
"""

# A showing of a gold item: a job leased at once to one reviewer, never pending, gone when
# its lease ends however it ends. ARGV: prefix, id, queue, data, gold item, reviewer, now, expires.
_LEASE_GOLD = """
local prefix, id, queue = ARGV[1], ARGV[2], ARGV[3]
local job = prefix .. 'job:' .. id
if redis.call('EXISTS', job) == 1 then return 0 end
redis.call('HSET', job, 'data', ARGV[4], 'gold', ARGV[5], 'status', 'leased', 'queue', queue, 'reviewer', ARGV[6],
           'claimed', ARGV[7], 'expires', ARGV[8], 'enqueued', ARGV[7], 'order', ARGV[8])
redis.call('ZADD', prefix .. 'leases:' .. queue, ARGV[8], id)
return 1
"""

_ERASE = """
local prefix = ARGV[1]
local erased = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local job = prefix .. 'job:' .. id
  local queue = redis.call('HGET', job, 'queue')
  if queue then
    redis.call('ZREM', prefix .. 'pending:' .. queue, id)
    redis.call('ZREM', prefix .. 'age:' .. queue, id)
    redis.call('ZREM', prefix .. 'leases:' .. queue, id)
    erased = erased + redis.call('DEL', job)
  end
end
return erased
"""


class ReviewQueues:
    def __init__(
        self, client: "aioredis.Redis", *, lease_seconds: float, job_retention_seconds: int, prefix: str = "review:"
    ) -> None:
        self._redis = client
        self._prefix = prefix
        self.lease_seconds = lease_seconds
        self.job_retention_seconds = job_retention_seconds
        self._enqueue = client.register_script(_ENQUEUE)
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)
        self._extend = client.register_script(_EXTEND)
        self._close = client.register_script(_CLOSE)
        self._stats = client.register_script(_STATS)
        self._erase = client.register_script(_ERASE)
        self._lease_gold = client.register_script(_LEASE_GOLD)
        self._reorder_legacy = client.register_script(_REORDER_LEGACY)

    @classmethod
    def of(cls, client: "aioredis.Redis", settings: Settings) -> "ReviewQueues":
        """The queues with the settings' lease and retention, as every process reaches them."""
        return cls(
            client,
            lease_seconds=settings.review_lease_seconds,
            job_retention_seconds=settings.review_job_retention_seconds,
        )

    async def enqueue(self, job: ReviewJob, excluded: Collection[str] = ()) -> bool:
        """Add the job, which the ``excluded`` reviewers can never claim, unless a job with its
        id was ever enqueued; True when added."""
        enqueued = job.enqueued_at.timestamp()
        severe = "1" if job.severity == "severe" else "0"
        data = job.model_dump_json()
        args = [
            self._prefix,
            job.job_id,
            job.queue,
            data,
            repr(job.due.timestamp()),
            repr(enqueued),
            job.tenant,
            severe,
        ]
        return bool(await self._enqueue(args=[*args, *excluded]))

    async def claim(
        self,
        queues: str | Sequence[str],
        reviewer: str,
        now: float | None = None,
        refused: SevereRefused = NOTHING_REFUSED,
    ) -> tuple[ReviewJob, Lease] | None:
        """Lease the job due soonest, of these queues, that this reviewer may take; None when there
        is none. The lease says whether this was the job's first claim."""
        now = _now(now)
        expires = now + self.lease_seconds
        names = [queues] if isinstance(queues, str) else list(queues)
        if not names:
            return None
        args: list[str | int] = [
            self._prefix,
            reviewer,
            repr(now),
            repr(expires),
            CLAIM_SCAN,
            refused.to_json(),
            *names,
        ]
        found = await self._claim(args=args)
        if not found:
            return None
        job = ReviewJob.model_validate_json(found[1])
        lease = Lease(
            job_id=job.job_id,
            reviewer=reviewer,
            claimed_at=_time(now),
            expires_at=_time(expires),
            first_claim=bool(found[2]),
        )
        return job, lease

    async def reorder_legacy(self, within_seconds: float) -> int:
        """Give jobs queued before due dates existed (pending or held) the due date ``within_seconds``
        after their queueing (their severity was never known); how many."""
        return int(await self._reorder_legacy(args=[self._prefix, repr(within_seconds)]))

    async def lease_gold(self, showing: ReviewJob, item: str, reviewer: str, now: float | None = None) -> Lease:
        """Lease ``showing``, a new job showing gold item ``item``, to ``reviewer`` at once."""
        now = _now(now)
        expires = now + self.lease_seconds
        args = [self._prefix, showing.job_id, showing.queue, showing.model_dump_json(), item, reviewer]
        if not await self._lease_gold(args=[*args, repr(now), repr(expires)]):
            raise ValueError(f"job {showing.job_id} exists already")
        return Lease(job_id=showing.job_id, reviewer=reviewer, claimed_at=_time(now), expires_at=_time(expires))

    async def reviewer_of(self, job_id: str) -> str | None:
        """Who holds the job, or gave its verdict once closed."""
        who = await self._redis.hget(f"{self._prefix}job:{job_id}", "reviewer")  # type: ignore[misc]
        return who.decode() if who else None

    async def closed_by(self, job_id: str, reviewer: str, within: float, now: float | None = None) -> bool:
        """Whether ``reviewer`` closed the job (gave its verdict) less than ``within`` seconds ago."""
        status, who, closed = await self._redis.hmget(f"{self._prefix}job:{job_id}", ["status", "reviewer", "closed"])  # type: ignore[misc]
        if status != b"closed" or who is None or who.decode() != reviewer or closed is None:
            return False
        return _now(now) - float(closed) < within

    async def gold_of(self, job_id: str) -> str | None:
        """The gold item a job shows; None for every other job."""
        item = await self._redis.hget(f"{self._prefix}job:{job_id}", "gold")  # type: ignore[misc]
        return item.decode() if item else None

    async def soonest(self, queues: Collection[str]) -> str | None:
        """Of ``queues``, the one whose first waiting job is due soonest (None: all empty)."""
        heads = [(await self._redis.zrange(f"{self._prefix}pending:{q}", 0, 0, withscores=True), q) for q in queues]
        due = [(found[0][1], queue) for found, queue in heads if found]
        return min(due)[1] if due else None

    async def names(self) -> list[str]:
        """Every queue that ever held a job."""
        return sorted(m.decode() for m in await self._redis.smembers(f"{self._prefix}queues"))  # type: ignore[misc]

    async def release(self, job_id: str, reviewer: str, now: float | None = None) -> bool:
        """Give a held job back to its queue (a skip); False when the reviewer did not hold it."""
        return bool(await self._release(args=[self._prefix, job_id, reviewer, repr(_now(now))]))

    async def extend(self, job_id: str, reviewer: str, seconds: float, now: float | None = None) -> None:
        now = _now(now)
        if not await self._extend(args=[self._prefix, job_id, reviewer, repr(now), repr(now + seconds)]):
            raise LeaseLost(f"{reviewer} does not hold a live lease on job {job_id}")

    async def close(self, job_id: str, reviewer: str, now: float | None = None) -> None:
        args: list[str | int] = [self._prefix, job_id, reviewer, repr(_now(now)), self.job_retention_seconds]
        if not await self._close(args=args):
            raise LeaseLost(f"{reviewer} does not hold a live lease on job {job_id}")

    async def job(self, job_id: str) -> tuple[ReviewJob, Lease | None, str] | None:
        """The job, its lease if leased, and its status (pending, leased or closed)."""
        fields = await self._redis.hgetall(f"{self._prefix}job:{job_id}")  # type: ignore[misc]
        if not fields:
            return None
        values = {k.decode(): v.decode() for k, v in fields.items()}
        job = ReviewJob.model_validate_json(values["data"])
        lease = None
        if values["status"] == "leased":
            lease = Lease(
                job_id=job_id,
                reviewer=values["reviewer"],
                claimed_at=_time(float(values["claimed"])),
                expires_at=_time(float(values["expires"])),
            )
        return job, lease, values["status"]

    async def jobs_of(self, event_id: str) -> list[ReviewJob]:
        """Every job about ``event_id``, pending, leased or closed (its review, second review,
        appeal and labelling jobs: their ids all start with the event id)."""
        prefix = f"{self._prefix}job:"
        keys = [prefix + event_id] + [k.decode() async for k in self._redis.scan_iter(match=f"{prefix}{event_id}:*")]
        found = []
        for key in keys:
            data = await self._redis.hget(key, "data")  # type: ignore[misc]
            job = None if data is None else ReviewJob.model_validate_json(data)
            # Another event's id may begin with this one's and a colon: its jobs are not ours.
            if job is not None and job.event_id == event_id:
                found.append(job)
        return found

    async def erase(self, job_ids: Collection[str]) -> int:
        """Remove the jobs whatever their state (a reviewer holding one loses the lease); how many."""
        return int(await self._erase(args=[self._prefix, *job_ids])) if job_ids else 0

    async def stats(self, now: float | None = None) -> list[QueueStats]:
        now = _now(now)
        rows = await self._stats(args=[self._prefix, repr(now)])
        return sorted(
            (
                QueueStats(
                    name=name.decode(),
                    pending=int(pending),
                    in_review=int(leased),
                    oldest_age_seconds=round(now - float(oldest), 1) if oldest else None,
                    next_due_in_seconds=round(float(soonest) - now, 1) if soonest else None,
                    past_due=int(past_due),
                )
                for name, pending, leased, oldest, soonest, past_due in rows
            ),
            key=lambda s: s.name,
        )

    async def record_depths(self, now: float | None = None, keep_seconds: float = 7 * 86400) -> None:
        """One depth sample per queue, for the depth-over-time page."""
        now = _now(now)
        for stats in await self.stats(now):
            key = f"{self._prefix}depth:{stats.name}"
            await self._redis.zadd(key, {f"{now:.0f}:{stats.pending}": now})
            await self._redis.zremrangebyscore(key, "-inf", now - keep_seconds)

    async def depth_history(self, since: float) -> dict[str, list[tuple[datetime, int]]]:
        history: dict[str, list[tuple[datetime, int]]] = {}
        for name in await self.names():
            samples = await self._redis.zrangebyscore(f"{self._prefix}depth:{name}", since, "+inf")
            history[name] = [(_time(float(t)), int(d)) for t, d in (s.decode().split(":") for s in samples)]
        return history


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def _time(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
