"""Which review jobs get a second, blind review, and what that job is (pure rules)."""

from datetime import UTC, datetime

from modstream.core.events import Trigger
from modstream.policy.engine import in_audit_sample
from modstream.review.jobs import ReviewJob, chosen_for_second_review

IDS = [f"event-{i}" for i in range(40_000)]
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def first_job(event_id: str, rate: float) -> ReviewJob:
    return ReviewJob(
        job_id=event_id,
        kind="audit_sample",
        queue="audit",
        decision_id=f"auto-{event_id}",
        tenant="t",
        bucket="uploads",
        key=f"k/{event_id}.jpg",
        scores={"nsfw": 0.2, "sfw": 0.8},
        triggered=[Trigger(label="nsfw", score=0.2, threshold=0.1, level="review")],
        reasons=["audit_sample"],
        model=None,
        policy_id="default",
        policy_version="1",
        double_review_rate=rate,
        uploaded_at=T0,
        enqueued_at=T0,
        trace_context={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
    )


def test_the_choice_is_stable_and_near_the_rate() -> None:
    chosen = [i for i in IDS if chosen_for_second_review(i, 0.05)]
    assert chosen == [i for i in IDS if chosen_for_second_review(i, 0.05)]
    # 40,000 draws at 5 %: the standard deviation is 0.11 points, this allows 4 of them.
    assert abs(len(chosen) / len(IDS) - 0.05) < 0.0045
    assert not any(chosen_for_second_review(i, 0.0) for i in IDS[:1000])
    assert all(chosen_for_second_review(i, 1.0) for i in IDS[:1000])
    # A higher rate keeps every item a lower one chose: raising it only adds jobs.
    assert set(chosen) <= {i for i in IDS if chosen_for_second_review(i, 0.2)}


def test_the_choice_is_independent_of_the_audit_sample() -> None:
    audited = [i for i in IDS if in_audit_sample(i, 0.1)]
    double_among_audited = sum(chosen_for_second_review(i, 0.1) for i in audited) / len(audited)
    # ~4,000 audited items at 10 %: the standard deviation is 0.47 points, this allows 4 of them.
    assert abs(double_among_audited - 0.1) < 0.019


def test_a_second_review_is_the_same_image_for_another_reviewer_and_never_asks_for_a_third() -> None:
    event_id = next(i for i in IDS if chosen_for_second_review(i, 0.5))
    first = first_job(event_id, 0.5)
    assert first.wants_second_review and first.event_id == event_id
    later = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
    second = first.second_review(later)
    assert (second.job_id, second.kind, second.event_id, second.enqueued_at) == (
        f"{event_id}:second",
        "second_review",
        event_id,
        later,
    )
    own = {"job_id", "kind", "enqueued_at", "due_at"}
    assert second.model_dump(exclude=own) == first.model_dump(exclude=own)
    # Due as long after its queueing as the first was after its own.
    assert second.due - second.enqueued_at == first.due - first.enqueued_at
    assert not second.wants_second_review
    assert not first_job(event_id, 0.0).wants_second_review
