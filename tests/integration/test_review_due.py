"""Due dates by severity and reviewers' exposure limits, against a real Valkey: the order claims
serve, the ageing bound under a flood of severe jobs, the jobs past due, and the limits the
claim enforces (a tenant's daily cap, the break after a run of severe images, an admin's
audited override)."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from modstream.core.review_rules import DueTargets, ExposureLimits, ReviewRules
from modstream.core.settings import Settings
from modstream.review.exposure import MAX_REPORT_SECONDS, OnBreak
from modstream.review.jobs import ReviewJob
from modstream.review.queue import LeaseLost, ReviewQueues
from modstream.review.service import ReviewService

from tests.review_jobs import review_job

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RULES = ReviewRules(severe=frozenset({"violence.gore"}))  # due: severe 1 h, standard 24 h


def job(
    job_id: str,
    label: str = "drugs",
    at: datetime = T0,
    queue: str = "q",
    tenant: str = "t",
    rules: ReviewRules = RULES,
) -> ReviewJob:
    return review_job(job_id, label, at, queue, tenant).under(rules)


@pytest.fixture
async def queues(redis_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[ReviewQueues]:
    client = aioredis.Redis.from_url(redis_settings.redis_url)
    yield ReviewQueues(client, lease_seconds=600, job_retention_seconds=3600, prefix=f"due:{request.node.name}:")
    await client.aclose()


async def drain(queues: ReviewQueues, queue: str | list[str], at: datetime) -> list[str]:
    order = []
    while (found := await queues.claim(queue, "alice", now=at.timestamp())) is not None:
        order.append(found[0].job_id)
        await queues.close(found[0].job_id, "alice", now=at.timestamp())
    return order


def test_a_job_is_severe_by_its_tenants_severe_labels_and_due_by_its_targets() -> None:
    severe, standard = job("s", "violence.gore"), job("n", "drugs")
    assert (severe.severity, severe.due) == ("severe", T0 + timedelta(hours=1))
    assert (standard.severity, standard.due) == ("standard", T0 + timedelta(hours=24))
    own = RULES.model_copy(update={"queues": {"fast": DueTargets(severe_hours=0.25, standard_hours=2)}})
    assert job("f", "drugs", queue="fast", rules=own).due == T0 + timedelta(hours=2)
    assert job("g", "violence.gore", rules=ReviewRules()).severity == "standard"  # not severe for that tenant


async def test_the_job_due_soonest_is_claimed_first(queues: ReviewQueues) -> None:
    for item in [
        job("standard-old", at=T0 - timedelta(hours=2)),
        job("standard-new"),
        job("severe-new", "violence.gore", at=T0 + timedelta(minutes=5)),
        job("severe-old", "violence.gore"),
        # Queued 23.5 h before the severe ones: due (T0 + 0.5 h) before them, so first.
        job("standard-ancient", at=T0 - timedelta(hours=23.5)),
    ]:
        await queues.enqueue(item)
    order = await drain(queues, "q", T0 + timedelta(minutes=10))
    assert order == ["standard-ancient", "severe-old", "severe-new", "standard-old", "standard-new"]


async def test_a_flood_of_severe_jobs_cannot_starve_a_standard_one(queues: ReviewQueues) -> None:
    """The ageing bound: a severe job goes first only if it was queued at most 23 h (the two
    targets' difference) after the standard job. Severe jobs arrive every 5 minutes, twice as fast
    as the one reviewer claims (every 10 minutes), from two hours before the standard job on: a
    queue by severity alone would never serve it."""
    standard = job("standard")
    arrivals = [T0 + timedelta(minutes=5 * i) for i in range(-24, 12 * 60)]  # to T0 + 60 h
    await queues.enqueue(standard)
    pending = list(arrivals)
    claimed: list[tuple[datetime, ReviewJob]] = []
    now = T0 - timedelta(hours=2)
    while now < T0 + timedelta(hours=60):
        while pending and pending[0] <= now:
            at = pending.pop(0)
            await queues.enqueue(job(f"severe-{at:%d%H%M}", "violence.gore", at=at))
        found = await queues.claim("q", "alice", now=now.timestamp())
        if found is not None:
            claimed.append((now, found[0]))
            await queues.close(found[0].job_id, "alice", now=now.timestamp())
            if found[0].job_id == "standard":
                break
        now += timedelta(minutes=10)
    served_at, last = claimed[-1]
    assert last.job_id == "standard", "the standard job was never served"
    before = [item for _, item in claimed[:-1]]
    # Every job served before it was due no later than it: queued at most 23 h after it.
    bound = standard.enqueued_at + timedelta(hours=23)
    assert all(item.severity == "severe" and item.enqueued_at <= bound for item in before)
    # And every one of those went first: the flood held it exactly that long, and no longer.
    assert len(before) == sum(1 for at in arrivals if at <= bound)
    assert served_at - standard.due < timedelta(hours=27)
    # Overloaded, the severe jobs were late too: none of them went ahead by jumping the order.
    assert all(item.due <= standard.due for item in before)


async def test_the_queue_list_counts_jobs_past_due_and_says_when_the_next_falls_due(queues: ReviewQueues) -> None:
    await queues.enqueue(job("late-1", "violence.gore", at=T0 - timedelta(hours=3)))
    await queues.enqueue(job("late-2", at=T0 - timedelta(hours=25)))
    await queues.enqueue(job("fresh", at=T0))
    (stats,) = await queues.stats(now=T0.timestamp())
    assert (stats.pending, stats.past_due) == (3, 2)
    assert stats.next_due_in_seconds == -2 * 3600.0  # late-2, due 1 h before late-1
    assert stats.oldest_age_seconds == 25 * 3600.0


async def test_claiming_the_next_due_serves_every_queue_by_due_date(queues: ReviewQueues) -> None:
    await queues.enqueue(job("gore-1", "violence.gore", queue="gore", at=T0))
    await queues.enqueue(job("drugs-old", queue="drugs", at=T0 - timedelta(hours=23, minutes=30)))
    await queues.enqueue(job("drugs-new", queue="drugs", at=T0))
    await queues.enqueue(job("gore-2", "violence.gore", queue="gore", at=T0 + timedelta(minutes=1)))
    order = await drain(queues, await queues.names(), T0 + timedelta(minutes=2))
    assert order == ["drugs-old", "gore-1", "gore-2", "drugs-new"]


@dataclass
class TwoTenants:
    """``capped`` with a 1-minute daily cap, ``breaks`` with a break after 2 severe images;
    everyone else the defaults (4 h, 20)."""

    rules: dict[str, ReviewRules] = field(
        default_factory=lambda: {
            "capped": RULES.model_copy(update={"exposure": ExposureLimits(severe_unblurred_hours_per_day=1 / 60)}),
            "breaks": RULES.model_copy(update={"exposure": ExposureLimits(break_after_severe=2, break_minutes=10)}),
        }
    )

    def __call__(self, tenant: str) -> ReviewRules:
        return self.rules.get(tenant, RULES)

    def tenants(self) -> list[str]:
        return sorted(self.rules)


@pytest.fixture
async def service(redis_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[ReviewService]:
    made = ReviewService(redis_settings, review_rules=TwoTenants())
    prefix = f"exposure:{request.node.name}:"
    made.queues._prefix = made.exposure._prefix = prefix
    yield made
    await made.redis.aclose()


async def review(service: ReviewService, reviewer: str) -> ReviewJob | None:
    claimed = await service.claim_next(None, reviewer)
    if claimed is not None:
        await service.queues.close(claimed[0].job_id, reviewer)
    return claimed[0] if claimed else None


async def test_a_reviewer_at_a_tenants_cap_gets_none_of_its_severe_jobs_but_the_rest(service: ReviewService) -> None:
    now = datetime.now(UTC)
    await service.queue_job(job("capped-gore-1", "violence.gore", tenant="capped", at=now))
    await service.queue_job(job("capped-gore-2", "violence.gore", tenant="capped", at=now))
    await service.queue_job(job("other-gore", "violence.gore", tenant="other", at=now + timedelta(seconds=1)))
    await service.queue_job(job("capped-drugs", "drugs", tenant="capped", at=now - timedelta(hours=20)))
    claimed = await service.claim_next(None, "rosa")
    assert claimed is not None and claimed[0].job_id == "capped-gore-1"
    # The page reports the image shown unblurred: 45 s + 45 s, over capped's 60 s cap.
    for _ in range(2):
        await service.report_unblurred("capped-gore-1", "rosa", 45)
    await service.queues.close("capped-gore-1", "rosa")
    assert (await service.exposure_today("rosa")).severe_seconds == 90
    # Rotation: capped's other severe job waits for someone else; the rest still come to rosa.
    assert [(await review(service, "rosa")).job_id for _ in range(2)] == ["other-gore", "capped-drugs"]  # type: ignore[union-attr]
    assert await review(service, "rosa") is None
    taken = await review(service, "sam")
    assert taken is not None and taken.job_id == "capped-gore-2"


async def test_a_run_of_severe_images_starts_a_break_and_an_admins_override_ends_it(service: ReviewService) -> None:
    now = datetime.now(UTC)
    for i in range(4):
        await service.queue_job(job(f"gore-{i}", "violence.gore", tenant="breaks", at=now + timedelta(seconds=i)))
    await service.queue_job(job("drugs", "drugs", tenant="breaks", at=now - timedelta(hours=23.5)))
    assert (await review(service, "remy")).job_id == "drugs"  # type: ignore[union-attr]
    assert [(await review(service, "remy")).job_id for _ in range(2)] == ["gore-0", "gore-1"]  # type: ignore[union-attr]
    with pytest.raises(OnBreak) as started:
        await service.claim_next(None, "remy")
    assert timedelta(minutes=9) < started.value.until - datetime.now(UTC) <= timedelta(minutes=10)
    with pytest.raises(OnBreak):  # the break holds, for every queue
        await service.claim_next("q", "remy")
    exposure = await service.exposure_today("remy")
    assert (exposure.seen["severe"], exposure.seen["standard"], exposure.severe_in_row) == (2, 1, 0)
    await service.override_exposure("remy", "ada", "short-staffed tonight, remy agreed")
    assert (await review(service, "remy")).job_id == "gore-2"  # type: ignore[union-attr]
    entries = await service.audit_entries(actor="ada", limit=50)
    overrides = [e for e in entries if e.action == "exposure_override" and e.details.get("reviewer") == "remy"]
    assert overrides and overrides[0].details["reason"] == "short-staffed tonight, remy agreed"
    breaks = [e for e in await service.audit_entries(actor="remy", limit=50) if e.action == "break"]
    assert breaks and breaks[0].details["severe_in_row"] == "2"


async def test_an_image_counts_once_and_only_its_holder_reports_capped_seconds(service: ReviewService) -> None:
    now = datetime.now(UTC)
    await service.queue_job(job("gore", "violence.gore", at=now))
    claimed = await service.claim_next("q", "lena")
    assert claimed is not None
    await service.skip("gore", "lena")
    assert await service.claim_next("q", "lena") is not None  # the same image again
    with pytest.raises(LeaseLost):
        await service.report_unblurred("gore", "mo", 5)
    assert await service.report_unblurred("gore", "lena", 3600) == MAX_REPORT_SECONDS
    exposure = await service.exposure_today("lena")
    assert exposure.seen == {"severe": 1, "standard": 0}
    assert exposure.unblurred_seconds == {"severe": MAX_REPORT_SECONDS, "standard": 0.0}


async def test_jobs_queued_before_due_dates_get_one_at_start_and_are_not_starved(queues: ReviewQueues) -> None:
    """An upgrade: jobs ordered by the old rule (1e10 x a priority step + the enqueue time) would
    sort after every new job for ever; the service gives them a standard due date when it starts."""
    queued = T0 - timedelta(hours=2)
    for name, step in (("old-held", 2000), ("old-pending", 1000)):
        await queues.enqueue(job(name, at=queued))
        legacy = step * 1e10 + queued.timestamp()
        await queues._redis.hset(f"{queues._prefix}job:{name}", "order", repr(legacy))  # type: ignore[misc]
        await queues._redis.zadd(f"{queues._prefix}pending:q", {name: legacy})
        if name == "old-held":
            held = await queues.claim("q", "rita", now=T0.timestamp())
            assert held is not None and held[0].job_id == "old-held"
    await queues.enqueue(job("new", at=T0))
    assert await drain(queues, "q", T0) == ["new", "old-pending"]  # the old rule: new jobs first
    await queues.enqueue(job("newer", at=T0 + timedelta(minutes=1)))
    await queues.enqueue(job("old-again", at=queued))
    legacy = 1000 * 1e10 + queued.timestamp()
    await queues._redis.hset(f"{queues._prefix}job:old-again", "order", repr(legacy))  # type: ignore[misc]
    await queues._redis.zadd(f"{queues._prefix}pending:q", {"old-again": legacy})
    assert await queues.reorder_legacy(24 * 3600) == 2  # the pending one and the held one
    await queues.stats(now=T0.timestamp() + 601)  # rita's lease ran out: the held one is back, in order
    assert await drain(queues, "q", T0 + timedelta(minutes=11)) == ["old-again", "old-held", "newer"]
