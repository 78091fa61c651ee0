"""Appeals in the review room: the restrictions on record, one appeal per decision, the job.

The dashboard's decisions feed keeps, per event, the decision that restricts it (a block),
and drops it when a later decision lifts it; an appeal is checked against that
(``core.appeals.refusal``), claimed once per decision (``SET NX``), and queued as a job
that the reviewer who took the decision appealed can never claim (the queue's exclusion,
as for a second review). Its verdict: ``approve`` overturns the restriction, ``remove``
upholds it.
"""

from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from modstream.core.appeals import AppealRules
from modstream.core.events import AppealLodged, ModerationDecision, Outcome
from modstream.review.jobs import APPEAL_SUFFIX, AppealCase, ReviewJob

RESTRICTION = "appeals:restriction:"  # event id -> the decision restricting it (JSON)
APPEALED = "appeals:appealed:"  # decision id -> the appeal heard on it
DUE = "appeals:due"  # zset: "<tenant>|<job id>" of every open appeal, by due time
# Kept past the longest window a tenant may set, so that "out of time" can still be told.
KEEP_PAST_WINDOW = timedelta(days=30)


def kept_for(restriction: ModerationDecision, rules: AppealRules, now: datetime) -> timedelta:
    """How much longer what is on record of ``restriction`` (it, and the appeal heard on it) is kept."""
    return rules.open_until(restriction.occurred_at) + KEEP_PAST_WINDOW - now


class AppealBook:
    def __init__(self, client: "aioredis.Redis") -> None:
        self._redis = client

    async def remember(self, decision: ModerationDecision, rules: AppealRules) -> None:
        """Keep ``decision`` when it restricts its image; a later one that does not lifts it."""
        key = RESTRICTION + decision.event_id
        if decision.decision is Outcome.BLOCK:
            keep = kept_for(decision, rules, datetime.now(UTC))
            if keep.total_seconds() > 0:
                await self._redis.set(key, decision.model_dump_json(), ex=int(keep.total_seconds()))
        elif decision.source in ("human", "appeal"):
            await self._redis.delete(key)  # a person lifted it (an approve, or an appeal overturned it)

    async def restriction(self, event_id: str) -> ModerationDecision | None:
        found = await self._redis.get(RESTRICTION + event_id)
        return None if found is None else ModerationDecision.model_validate_json(found)

    async def first_appeal(self, decision_id: str, appeal_id: str, keep: timedelta) -> str | None:
        """Record ``appeal_id`` as the appeal on ``decision_id``; None when it is the first (or the
        same appeal again), else the id of the appeal heard before."""
        key = APPEALED + decision_id
        if await self._redis.set(key, appeal_id, nx=True, ex=int(keep.total_seconds())):
            return None
        heard = (await self._redis.get(key) or b"").decode()
        return None if heard == appeal_id else heard

    async def track(self, job: ReviewJob) -> None:
        """Count ``job`` among the open appeals until it is decided (``decided``)."""
        if job.appeal is not None:
            await self._redis.zadd(DUE, {f"{job.tenant}|{job.job_id}": job.appeal.due_at.timestamp()})

    async def decided(self, job: ReviewJob) -> None:
        await self._redis.zrem(DUE, f"{job.tenant}|{job.job_id}")

    async def overdue(self, now: datetime) -> dict[str, int]:
        """Open appeals past their due date, by tenant (every tenant with an open appeal: 0 or more)."""
        late: dict[str, int] = {}
        for member, due in await self._redis.zrange(DUE, 0, -1, withscores=True):
            tenant = member.decode().partition("|")[0]
            late[tenant] = late.get(tenant, 0) + (due < now.timestamp())
        return late


def appeal_job(appeal: AppealLodged, restriction: ModerationDecision, rules: AppealRules, now: datetime) -> ReviewJob:
    """The job a person decides ``appeal`` in: the image and the decision appealed, the appeal."""
    return ReviewJob(
        **restriction.model_dump(
            include={
                "tenant",
                "bucket",
                "key",
                "scores",
                "triggered",
                "reasons",
                "model",
                "hashes",
                "bank_match",
                "policy_id",
                "policy_version",
                "thresholds",
                "uploaded_at",
                "decision_id",
            }
        ),
        job_id=appeal.event_id + APPEAL_SUFFIX,
        kind="appeal",
        queue=rules.queue,
        enqueued_at=now,
        appeal=AppealCase(
            appeal_id=appeal.appeal_id,
            appellant=appeal.appellant,
            reason=appeal.reason,
            restricted_by=restriction.reviewer,
            restriction_source=restriction.source,
            restricted_at=restriction.occurred_at,
            lodged_at=appeal.occurred_at,
            due_at=rules.due(appeal.occurred_at),
        ),
    )
