"""Appeals in the review room: the restrictions on record, one appeal per decision, the job.

The dashboard's decisions feed keeps, per event, the decision that restricts it (a block),
and drops it when a later decision lifts it; an appeal is checked against that
(``core.appeals.refusal``), claimed once per decision (``SET NX``), and queued as a job
that the reviewer who took the decision appealed can never claim (the queue's exclusion,
as for a second review). Its verdict: ``approve`` overturns the restriction, ``remove``
upholds it.

The open appeals are the members of ``DUE``, by due time: the overdue gauge counts those past
due (``past_due``), and the appeals page lists them soonest due first (``AppealBook.open``).
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import redis.asyncio as aioredis

from modstream.core.appeals import AppealRules
from modstream.core.events import AppealLodged, ModerationDecision, Outcome
from modstream.review.jobs import APPEAL_SUFFIX, AppealCase, Lease, ReviewJob
from modstream.review.queue import ReviewQueues

RESTRICTION = "appeals:restriction:"  # event id -> the decision restricting it (JSON)
APPEALED = "appeals:appealed:"  # decision id -> the appeal heard on it
DUE = "appeals:due"  # zset: "<tenant>|<job id>" of every open appeal, by due time
# Kept past the longest window a tenant may set, so that "out of time" can still be told.
KEEP_PAST_WINDOW = timedelta(days=30)


def kept_for(restriction: ModerationDecision, rules: AppealRules, now: datetime) -> timedelta:
    """How much longer what is on record of ``restriction`` (it, and the appeal heard on it) is kept."""
    return rules.open_until(restriction.occurred_at) + KEEP_PAST_WINDOW - now


def past_due(due: float, now: datetime) -> bool:
    """Whether an open appeal due at ``due`` (epoch seconds, its score in ``DUE``) is overdue at
    ``now``: the one rule of the overdue gauge and the appeals page."""
    return due < now.timestamp()


@dataclass(frozen=True)
class OpenAppeal:
    """An open appeal as the appeals page lists it. Status ``gone``: the book still counts it, but
    its job is no longer open in the queues (``case`` and ``queue`` are None when the job is
    missing)."""

    job_id: str
    tenant: str
    due_at: datetime
    overdue: bool
    left: timedelta
    """Until it is due; negative once overdue."""
    status: Literal["waiting", "in review", "gone"]
    reviewer: str | None
    """Who holds its lease, while in review."""
    queue: str | None
    case: AppealCase | None


def open_appeals(
    entries: Iterable[tuple[str, float, tuple[ReviewJob, Lease | None, str] | None]], now: datetime
) -> list[OpenAppeal]:
    """The open appeals of ``entries`` (a ``DUE`` member, its due time, its job as the queues
    hold it), soonest due first (then by job id). A job whose lease ran out at ``now`` is
    waiting: the queue takes it back at its next claim."""
    rows = []
    for member, due, found in entries:
        tenant, _, job_id = member.partition("|")
        job, lease, state = found if found is not None else (None, None, "missing")
        holder = lease.reviewer if lease is not None and lease.expires_at > now else None
        due_at = datetime.fromtimestamp(due, UTC)
        rows.append(
            OpenAppeal(
                job_id=job_id,
                tenant=tenant,
                due_at=due_at,
                overdue=past_due(due, now),
                left=due_at - now,
                status="gone" if state in ("missing", "closed") else "in review" if holder else "waiting",
                reviewer=holder,
                queue=None if job is None else job.queue,
                case=None if job is None else job.appeal,
            )
        )
    return sorted(rows, key=lambda row: (row.due_at, row.job_id))


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

    async def open_appeal(self, event_id: str) -> tuple[str, datetime] | None:
        """The job and due time of an appeal on ``event_id`` not yet decided, if there is one."""
        async for member, due in self._redis.zscan_iter(DUE, match=f"*|{event_id}{APPEAL_SUFFIX}"):
            return member.decode().partition("|")[2], datetime.fromtimestamp(due, UTC)
        return None

    async def forget(self, event_id: str, decision_ids: Collection[str]) -> int:
        """Drop the restriction on record for ``event_id`` and the appeals heard on its decisions
        (``decision_ids``, and the restriction's): the upload is erased, nothing is left to appeal.
        How many records."""
        restriction = await self.restriction(event_id)
        decisions = {*decision_ids, *([] if restriction is None else [restriction.decision_id])}
        return int(await self._redis.delete(RESTRICTION + event_id, *(APPEALED + d for d in decisions)))

    async def overdue(self, now: datetime) -> dict[str, int]:
        """Open appeals past their due date, by tenant (every tenant with an open appeal: 0 or more)."""
        late: dict[str, int] = {}
        for member, due in await self._redis.zrange(DUE, 0, -1, withscores=True):
            tenant = member.decode().partition("|")[0]
            late[tenant] = late.get(tenant, 0) + past_due(due, now)
        return late

    async def open(self, jobs: ReviewQueues, now: datetime, limit: int = 500) -> list[OpenAppeal]:
        """The ``limit`` open appeals due soonest (those the overdue gauge counts), soonest first,
        each with its job as ``jobs`` hold it now (one read per appeal)."""
        members = await self._redis.zrange(DUE, 0, limit - 1, withscores=True)
        entries = []
        for member, due in members:
            name = member.decode()
            entries.append((name, due, await jobs.job(name.partition("|")[2])))
        return open_appeals(entries, now)


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
                "text",
                "text_matches",
                "policy_id",
                "policy_version",
                "thresholds",
                "uploaded_at",
                "decision_id",
            }
        ),
        job_id=appeal.event_id + APPEAL_SUFFIX,
        kind="appeal",
        queue=rules.queue_for(restriction),
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
