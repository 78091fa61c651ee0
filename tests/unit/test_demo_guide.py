"""The demo's closing lines name the review queues its images went to, with their depth."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from modstream.core.events import ModerationDecision, Outcome
from modstream.demo.guide import Tally, closing_lines, follow_decisions, wait_for_jobs


def decision(event_id: str, outcome: Outcome, queue: str | None = None) -> ModerationDecision:
    return ModerationDecision(
        event_id=event_id,
        tenant="demo",
        bucket="uploads",
        key=f"demo/{event_id}.jpg",
        decision=outcome,
        review_queue=queue,
        policy_id="tenant:demo",
        policy_version="1",
        uploaded_at=datetime.now(UTC),
        latency_ms=1.0,
    )


async def test_each_event_counts_once_and_reviews_are_kept_with_their_queue() -> None:
    sent = [
        decision("a", Outcome.ALLOW),
        decision("b", Outcome.REVIEW, "demo-review"),
        decision("b", Outcome.REVIEW, "demo-review"),  # redelivered
        decision("c", Outcome.ALLOW, "audit"),  # an audit sample: the allow stands
        decision("d", Outcome.REVIEW, "demo-review"),
    ]

    async def topic() -> AsyncIterator[ModerationDecision]:
        for d in sent:
            yield d

    shown: list[str] = []
    tally = await follow_decisions(topic(), 4, lambda d: shown.append(d.event_id), timeout=5)
    assert tally.complete and shown == ["a", "b", "c", "d"]
    assert tally.outcomes == {"allow": 2, "review": 2}
    assert tally.in_review == {"b": "demo-review", "c": "audit", "d": "demo-review"}

    lines = "\n".join(closing_lines(tally, {"demo-review": 5, "audit": 1}, 0, "http://127.0.0.1:1/", "pw", seeded=2))
    assert "4 of 4 images decided[/bold]: 2 allow, 2 review" in lines
    assert '2 of these images went to human review in the queue "demo-review" (jobs waiting there now: 5)' in lines
    assert '1 of these images went to human review in the queue "audit" (jobs waiting there now: 1)' in lines
    assert "Reviewer dashboard: http://127.0.0.1:1/ (user admin, password pw)" in lines
    assert "2 of them were approved by the demo's own reviewer (demo-reviewer" in lines
    assert "modstream quality report --tenant demo" in lines


async def test_waiting_for_jobs_returns_those_that_never_came() -> None:
    made: set[str] = {"b"}

    async def has_job(job_id: str) -> bool:
        made.add("d")  # the intake catches up after the first look
        return job_id in made

    assert await wait_for_jobs({"b", "d"}, has_job, timeout=5) == set()
    assert await wait_for_jobs({"x"}, has_job, timeout=0.6) == {"x"}
    tally = Tally(expected=2)
    assert "none of these images went to human review" in "\n".join(closing_lines(tally, {}, 0, "u", None))
    assert "review jobs not in the queues yet: 1;" in "\n".join(closing_lines(tally, {}, 1, "u", None))
