"""A review job as the tests of queue order, exposure and gold items need one: a label that
triggered it, a tenant, a queue and when it was queued; no image behind it."""

from datetime import UTC, datetime

from modstream.core.events import Trigger
from modstream.review.jobs import ReviewJob


def review_job(
    job_id: str, label: str = "drugs", at: datetime | None = None, queue: str = "q", tenant: str = "t"
) -> ReviewJob:
    queued = at or datetime.now(UTC)
    return ReviewJob(
        job_id=job_id,
        queue=queue,
        decision_id=f"d-{job_id}",
        tenant=tenant,
        bucket="uploads",
        key=f"k/{job_id}.jpg",
        scores={label: 0.7},
        triggered=[Trigger(label=label, score=0.7, threshold=0.5, level="review")],
        reasons=["threshold"],
        model=None,
        policy_id="default",
        policy_version="1",
        uploaded_at=queued,
        enqueued_at=queued,
    )
