"""What each reviewer has been shown today, and what the exposure limits let them take next.

Counters per reviewer and UTC day, in Redis (key ``review:exposure:{day}:{reviewer}``, a hash,
kept ``KEEP_DAYS``): images seen and seconds spent looking at them unblurred, by severity; the
severe images in a row; a break's end; an admin's override. An image counts as seen once per
job however often it is claimed (a set of the day's job ids beside the hash). Seconds unblurred
are reported by the review page while the image shows unblurred (``add_unblurred``); each
report is capped, so a page left open cannot report more than it could have shown.

The rule (pure, ``refusals`` and ``break_starts``): a tenant's severe jobs are refused to a
reviewer whose severe seconds today reached that tenant's cap; after a run of severe images as
long as the strictest ``break_after_severe`` among the tenants whose images made it, the next
claim starts a break of the longest ``break_minutes`` among them, and no job goes to that
reviewer until it ends. An admin's override lifts both for the rest of the day (audited by the
caller).
"""

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import redis.asyncio as aioredis

from modstream.core.review_rules import SEVERITIES, ExposureLimits, Severity
from modstream.review.jobs import ReviewJob
from modstream.review.queue import SevereRefused

KEEP_DAYS = 8  # a week back for admins, and today
MAX_REPORT_SECONDS = 60.0  # the page reports at least this often while an image shows unblurred
NEAR_CAP = 0.8  # an admin sees a reviewer as near a cap from this share of it


@dataclass(frozen=True)
class Exposure:
    """One reviewer's counters for one UTC day."""

    reviewer: str
    day: date
    seen: dict[str, int] = field(default_factory=dict)
    unblurred_seconds: dict[str, float] = field(default_factory=dict)
    severe_in_row: int = 0
    # The strictest run length and longest break among the tenants whose images made the run.
    run_limit: int | None = None
    break_minutes: float = 0.0
    break_until: datetime | None = None
    overridden_by: str | None = None

    @property
    def severe_seconds(self) -> float:
        return self.unblurred_seconds.get("severe", 0.0)

    def on_break(self, now: datetime) -> bool:
        return self.overridden_by is None and self.break_until is not None and now < self.break_until

    def share_of_cap(self, limits: ExposureLimits) -> float:
        """How much of ``limits``' daily severe cap is used (1.0 and over: reached)."""
        cap = limits.severe_unblurred_seconds
        return 1.0 if cap == 0 else self.severe_seconds / cap


def refusals(
    exposure: Exposure, limits_of: Callable[[str | None], ExposureLimits], tenants: Collection[str]
) -> SevereRefused:
    """Whose severe jobs ``exposure``'s reviewer may not take now: each tenant with a policy of its
    own by its own cap, any other tenant by the default policy's (``limits_of(None)``)."""
    if exposure.overridden_by is not None:
        return SevereRefused()
    return SevereRefused(
        default=exposure.share_of_cap(limits_of(None)) >= 1.0,
        tenants={tenant: exposure.share_of_cap(limits_of(tenant)) >= 1.0 for tenant in tenants},
    )


def break_starts(exposure: Exposure) -> bool:
    """Whether the next claim must start a break instead: the run of severe images is long enough."""
    return (
        exposure.overridden_by is None
        and exposure.run_limit is not None
        and exposure.severe_in_row >= exposure.run_limit
    )


class OnBreak(Exception):
    """The reviewer must rest before the next job."""

    def __init__(self, until: datetime) -> None:
        super().__init__(f"a break after a run of severe images: no job until {until:%H:%M} UTC")
        self.until = until


# Counts a job as seen once per day and keeps the run of severe images: the job's severity and
# its tenant's run length and break. ARGV: job id, severe (1/0), run limit, break minutes, ttl.
_SEEN = """
local counters, jobs = KEYS[1], KEYS[2]
local id, severe, limit, minutes, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
if redis.call('SADD', jobs, id) == 0 then return 0 end
redis.call('EXPIRE', jobs, ttl)
redis.call('EXPIRE', counters, ttl)
if severe == '1' then
  redis.call('HINCRBY', counters, 'seen:severe', 1)
  redis.call('HINCRBY', counters, 'in_row', 1)
  local kept = tonumber(redis.call('HGET', counters, 'run_limit'))
  if kept == nil or limit < kept then redis.call('HSET', counters, 'run_limit', limit) end
  local longest = tonumber(redis.call('HGET', counters, 'break_minutes') or '0')
  if minutes > longest then redis.call('HSET', counters, 'break_minutes', minutes) end
else
  redis.call('HINCRBY', counters, 'seen:standard', 1)
  redis.call('HSET', counters, 'in_row', 0)
  redis.call('HDEL', counters, 'run_limit', 'break_minutes')
end
return 1
"""


class ExposureBook:
    def __init__(self, client: "aioredis.Redis", prefix: str = "review:") -> None:
        self._redis = client
        self._prefix = prefix
        self._seen = client.register_script(_SEEN)

    def _key(self, day: date, reviewer: str) -> str:
        return f"{self._prefix}exposure:{day.isoformat()}:{reviewer}"

    def _ttl(self) -> int:
        return KEEP_DAYS * 86400

    async def today(self, reviewer: str, now: datetime | None = None) -> Exposure:
        return await self.on(reviewer, _day(now))

    async def on(self, reviewer: str, day: date) -> Exposure:
        raw = await self._redis.hgetall(self._key(day, reviewer))  # type: ignore[misc]
        values = {k.decode(): v.decode() for k, v in raw.items()}
        until = values.get("break_until")
        return Exposure(
            reviewer=reviewer,
            day=day,
            seen={s: int(values.get(f"seen:{s}", 0)) for s in SEVERITIES},
            unblurred_seconds={s: float(values.get(f"unblurred:{s}", 0.0)) for s in SEVERITIES},
            severe_in_row=int(values.get("in_row", 0)),
            run_limit=int(values["run_limit"]) if "run_limit" in values else None,
            break_minutes=float(values.get("break_minutes", 0.0)),
            break_until=datetime.fromtimestamp(float(until), UTC) if until else None,
            overridden_by=values.get("overridden_by") or None,
        )

    async def reviewers(self, day: date) -> list[str]:
        """Everyone with counters on ``day``."""
        pattern = f"{self._prefix}exposure:{day.isoformat()}:*"
        found = {k.decode().removeprefix(pattern[:-1]) async for k in self._redis.scan_iter(match=pattern)}
        return sorted(name for name in found if not name.endswith(":jobs"))

    async def seen(self, reviewer: str, job: ReviewJob, limits: ExposureLimits, now: datetime | None = None) -> bool:
        """Count ``job`` as shown to ``reviewer`` (once a day); True when it had not been."""
        key = self._key(_day(now), reviewer)
        severe = "1" if job.severity == "severe" else "0"
        args: list[str | int] = [job.job_id, severe, limits.break_after_severe, repr(limits.break_minutes), self._ttl()]
        return bool(await self._seen(keys=[key, key + ":jobs"], args=args))

    async def start_break(self, exposure: Exposure, now: datetime) -> datetime:
        """Begin the break a run of severe images calls for; the run starts again after it."""
        until = now + timedelta(minutes=exposure.break_minutes)
        key = self._key(exposure.day, exposure.reviewer)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"break_until": repr(until.timestamp()), "in_row": 0})
            pipe.hdel(key, "run_limit", "break_minutes")
            pipe.expire(key, self._ttl())
            await pipe.execute()
        return until

    async def add_unblurred(
        self, reviewer: str, severity: Severity, seconds: float, now: datetime | None = None
    ) -> float:
        """Add what the page reports (capped at ``MAX_REPORT_SECONDS``); the day's total for that severity."""
        kept = min(max(seconds, 0.0), MAX_REPORT_SECONDS)
        key = self._key(_day(now), reviewer)
        total = await self._redis.hincrbyfloat(key, f"unblurred:{severity}", kept)  # type: ignore[misc]
        await self._redis.expire(key, self._ttl())
        return float(total)

    async def forget(self, job_ids: Collection[str]) -> int:
        """Take these jobs out of every day's set of jobs seen (erasure): how many mentions went.
        The counts stay: they hold no id."""
        if not job_ids:
            return 0
        removed = 0
        async for key in self._redis.scan_iter(match=f"{self._prefix}exposure:*:jobs"):
            removed += await self._redis.srem(key, *job_ids)  # type: ignore[misc]
        return removed

    async def override(self, reviewer: str, by: str, now: datetime | None = None) -> None:
        """Lift the caps and any break for ``reviewer`` for the rest of the day."""
        key = self._key(_day(now), reviewer)
        await self._redis.hset(key, "overridden_by", by)  # type: ignore[misc]
        await self._redis.expire(key, self._ttl())


def _day(now: datetime | None) -> date:
    return (now or datetime.now(UTC)).astimezone(UTC).date()
