"""Review queues against a real Redis (Valkey): exactly-once claims, leases, idempotence, retention."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from modstream.core.events import ModerationDecision, Outcome, Trigger
from modstream.core.settings import Settings
from modstream.review.jobs import ReviewJob, Verdict, VerdictInput
from modstream.review.queue import CLAIM_SCAN, LeaseLost, ReviewQueues
from modstream.review.service import ReviewService
from modstream.review.stats import DecisionCounts

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RETENTION = 3600


def job(job_id: str, score: float = 0.5, queue: str = "q", age_seconds: float = 0) -> ReviewJob:
    return ReviewJob(
        job_id=job_id,
        queue=queue,
        decision_id=f"d-{job_id}",
        tenant="t",
        bucket="uploads",
        key=f"k/{job_id}.jpg",
        scores={"nsfw": score},
        triggered=[Trigger(label="nsfw", score=score, threshold=0.4, level="review")],
        reasons=["threshold"],
        model=None,
        policy_id="default",
        policy_version="1",
        uploaded_at=T0,
        enqueued_at=T0 - timedelta(seconds=age_seconds),
    )


@pytest.fixture
async def queues(stack_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[ReviewQueues]:
    client = aioredis.Redis.from_url(stack_settings.redis_url)
    yield ReviewQueues(client, lease_seconds=30, job_retention_seconds=RETENTION, prefix=f"test:{request.node.name}:")
    await client.aclose()


async def test_twenty_claimers_over_500_jobs_each_job_exactly_once(queues: ReviewQueues) -> None:
    assert all(await asyncio.gather(*(queues.enqueue(job(f"j{i}", score=(i % 97) / 97)) for i in range(500))))
    claimed: Counter[str] = Counter()

    async def reviewer(name: str) -> None:
        while (found := await queues.claim("q", name)) is not None:
            claimed[found[0].job_id] += 1
            await queues.close(found[0].job_id, name)

    await asyncio.gather(*(reviewer(f"r{n}") for n in range(20)))
    assert len(claimed) == 500 and set(claimed.values()) == {1}
    (stats,) = await queues.stats()
    assert (stats.pending, stats.in_review) == (0, 0)


async def test_enqueue_is_idempotent_per_job_even_after_it_closed(queues: ReviewQueues) -> None:
    assert await queues.enqueue(job("same"))
    assert not await queues.enqueue(job("same", score=0.9))
    found = await queues.claim("q", "alice")
    assert found is not None
    await queues.close("same", "alice")
    assert not await queues.enqueue(job("same"))
    assert await queues.claim("q", "bob") is None


async def test_a_claim_passes_over_jobs_that_exclude_the_claimer_and_leaves_them_in_place(
    queues: ReviewQueues,
) -> None:
    await queues.enqueue(job("a", 0.9), excluded=["rita"])
    await queues.enqueue(job("b", 0.6))
    await queues.enqueue(job("c", 0.3), excluded=["rita", "remy"])
    mine = await queues.claim("q", "rita")
    assert mine is not None and mine[0].job_id == "b"
    assert await queues.claim("q", "rita") is None
    (stats,) = await queues.stats()
    assert (stats.pending, stats.in_review) == (2, 1)  # a and c still wait, for others
    others = [await queues.claim("q", reviewer) for reviewer in ("remy", "remy", "ada")]
    assert [found[0].job_id if found else None for found in others] == ["a", None, "c"]


async def test_a_claim_looks_at_no_more_than_claim_scan_jobs(queues: ReviewQueues) -> None:
    for i in range(CLAIM_SCAN):
        await queues.enqueue(job(f"x{i:03}", 0.9, age_seconds=CLAIM_SCAN - i), excluded=["rita"])
    await queues.enqueue(job("free", 0.1))
    assert await queues.claim("q", "rita") is None  # the job she may take lies beyond the scan
    taken = await queues.claim("q", "remy")
    assert taken is not None and taken[0].job_id == "x000"
    mine = await queues.claim("q", "rita")  # now within it
    assert mine is not None and mine[0].job_id == "free"


async def test_an_expired_lease_returns_the_job_and_the_late_reviewer_loses_it(queues: ReviewQueues) -> None:
    await queues.enqueue(job("j"))
    now = T0.timestamp()
    first = await queues.claim("q", "alice", now=now)
    assert first is not None and first[1].expires_at == first[1].claimed_at + timedelta(seconds=30)
    assert await queues.claim("q", "bob", now=now + 10) is None  # still alice's
    (stats,) = await queues.stats(now=now + 10)
    assert (stats.pending, stats.in_review) == (0, 1)
    again = await queues.claim("q", "bob", now=now + 31)  # alice's lease ran out
    assert again is not None and again[0].job_id == "j"
    with pytest.raises(LeaseLost):
        await queues.close("j", "alice", now=now + 32)
    await queues.close("j", "bob", now=now + 32)
    found = await queues.job("j")
    assert found is not None and found[2] == "closed"


async def test_release_gives_the_job_back_only_from_its_holder(queues: ReviewQueues) -> None:
    await queues.enqueue(job("j"))
    assert await queues.claim("q", "alice") is not None
    assert not await queues.release("j", "bob")
    assert await queues.release("j", "alice")
    found = await queues.job("j")
    assert found is not None and found[1] is None and found[2] == "pending"
    again = await queues.claim("q", "bob")
    assert again is not None and again[1].reviewer == "bob"


async def test_extend_keeps_a_held_lease_alive(queues: ReviewQueues) -> None:
    await queues.enqueue(job("j"))
    now = T0.timestamp()
    assert await queues.claim("q", "alice", now=now) is not None
    await queues.extend("j", "alice", seconds=60, now=now + 20)
    assert await queues.claim("q", "bob", now=now + 45) is None
    with pytest.raises(LeaseLost):
        await queues.extend("j", "bob", seconds=60, now=now + 46)


async def test_stats_and_depth_history(queues: ReviewQueues) -> None:
    await queues.enqueue(job("a", age_seconds=120))
    await queues.enqueue(job("b"))
    await queues.enqueue(job("c", queue="gore"))
    now = T0.timestamp()
    stats = {s.name: s for s in await queues.stats(now=now)}
    assert stats["q"].pending == 2 and stats["q"].oldest_age_seconds == 120.0
    assert stats["gore"].pending == 1
    await queues.record_depths(now=now)
    await queues.claim("q", "alice", now=now + 60)
    await queues.record_depths(now=now + 60)
    history = await queues.depth_history(since=now - 1)
    assert [depth for _, depth in history["q"]] == [2, 1]


async def test_only_a_closed_job_gets_the_retention_as_its_ttl(queues: ReviewQueues) -> None:
    for age, name in enumerate(("pending", "released", "leased", "closed")):
        await queues.enqueue(job(name, age_seconds=age))
    ttl = queues._redis.ttl
    key = f"{queues._prefix}job:"
    for name in ("closed", "leased", "released"):
        claimed = await queues.claim("q", "alice")
        assert claimed is not None and claimed[0].job_id == name  # as soon due but older: first
    await queues.close("closed", "alice")
    assert await queues.release("released", "alice")
    assert 0 < await ttl(key + "closed") <= RETENTION
    for name in ("leased", "pending", "released"):
        assert await ttl(key + name) == -1, f"the {name} job got a TTL"  # -1: exists, never expires


async def test_an_expired_job_is_gone_and_its_audit_entries_stay(stack_settings: Settings) -> None:
    """Through the review service (claim, verdict: audited, published, closed), with a 1 s retention."""
    service = ReviewService(stack_settings.model_copy(update={"review_job_retention_seconds": 1}))
    await service.start()
    try:
        job_id = f"retention-{datetime.now(UTC).timestamp()}"
        await service.queues.enqueue(job(job_id, queue=job_id))
        claimed = await service.claim_next(job_id, "alice")
        assert claimed is not None
        await service.submit(job_id, "alice", VerdictInput(verdict=Verdict.APPROVE, labels=[]))
        found = await service.job(job_id)
        assert found is not None and found[2] == "closed"
        for _ in range(100):  # Redis deletes the key once its TTL is out
            if await service.job(job_id) is None:
                break
            await asyncio.sleep(0.1)
        assert await service.job(job_id) is None
        entries = await service.audit_entries(actor="alice", limit=1000)
        assert [e.action for e in entries if e.details.get("job") == job_id] == ["verdict", "claim"]
    finally:
        await service.stop()


async def test_a_decision_is_counted_once_however_often_it_is_read(
    stack_settings: Settings, request: pytest.FixtureRequest
) -> None:
    client = aioredis.Redis.from_url(stack_settings.redis_url)
    counts = DecisionCounts(client, prefix=f"test:{request.node.name}:")
    now = datetime.now(UTC)
    automatic = ModerationDecision(
        event_id="e1",
        tenant="t",
        bucket="uploads",
        key="k/e1.jpg",
        decision=Outcome.REVIEW,
        triggered=[Trigger(label="nsfw", score=0.6, threshold=0.4, level="review")],
        policy_id="default",
        policy_version="1",
        uploaded_at=now,
        latency_ms=5,
        occurred_at=now,
    )
    human = automatic.model_copy(
        update={"decision_id": "h1", "decision": Outcome.BLOCK, "source": "human", "reviewer": "rita", "triggered": []}
    )
    # A feed retrying a record and a consumer replaying its batch read the same decisions again.
    results = await asyncio.gather(*(counts.record(d) for d in [automatic, human] * 5))
    assert results.count(True) == 2
    [hour] = await counts.hourly(1, now=now)
    assert (hour.automatic, hour.human) == (1, 1)
    assert hour.by_outcome == {"block": 1, "review": 1} and hour.by_reviewer == {"rita": 1}
    assert hour.by_label == {"nsfw": 1}
    await client.aclose()
