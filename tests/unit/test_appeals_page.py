"""The appeals page's list, the pure part: soonest due first, overdue by the overdue gauge's own
rule, who holds each one, and how long is left written for a reader."""

from datetime import UTC, datetime, timedelta

from modstream.core.appeals import AppealRules
from modstream.core.events import AppealLodged
from modstream.review.appeals import appeal_job, open_appeals, past_due
from modstream.review.jobs import Lease, ReviewJob
from modstream.review.web.pages import duration

from tests.statement_cases import decision

NOW = datetime(2026, 12, 9, 12, 0, tzinfo=UTC)  # a Wednesday


def job_for(event_id: str, tenant: str, lodged_at: datetime, due_working_days: int) -> ReviewJob:
    """The job of an appeal lodged at ``lodged_at`` with a tenant whose appeals are due in
    ``due_working_days``."""
    lodged = AppealLodged(
        event_id=event_id,
        tenant=tenant,
        appellant="reporter",
        appellant_id="u-secret-1",
        reason="look again",
        occurred_at=lodged_at,
    )
    restriction = decision("model", event_id=event_id, tenant=tenant, occurred_at=lodged_at - timedelta(days=1))
    rules = AppealRules(due_working_days=due_working_days, queue=f"appeals-{tenant}")
    return appeal_job(lodged, restriction, rules, lodged_at)


def entry(job: ReviewJob, lease: Lease | None = None) -> tuple[str, float, tuple[ReviewJob, Lease | None, str]]:
    """As ``AppealBook.open`` reads it: the ``DUE`` member, its score, the job from the queues."""
    assert job.appeal is not None
    status = "leased" if lease else "pending"
    return f"{job.tenant}|{job.job_id}", job.appeal.due_at.timestamp(), (job, lease, status)


def lease(job: ReviewJob, reviewer: str, expires_at: datetime) -> Lease:
    return Lease(
        job_id=job.job_id, reviewer=reviewer, claimed_at=expires_at - timedelta(minutes=5), expires_at=expires_at
    )


def test_open_appeals_are_listed_soonest_due_first_with_the_overdue_ones_marked() -> None:
    slow = job_for("e-slow", "slow", NOW - timedelta(hours=1), 10)  # due in two weeks
    quick = job_for("e-quick", "quick", NOW - timedelta(hours=1), 1)  # due tomorrow
    late = job_for("e-late", "slow", NOW - timedelta(days=20), 10)  # due six days ago
    rows = open_appeals(
        [
            entry(slow),
            entry(quick, lease(quick, "rita", NOW + timedelta(minutes=3))),
            entry(late, lease(late, "remy", NOW - timedelta(seconds=1))),  # the lease ran out
            ("gone|e-gone:appeal", (NOW + timedelta(days=1, hours=1)).timestamp(), None),
        ],
        NOW,
    )
    assert [r.job_id for r in rows] == ["e-late:appeal", "e-quick:appeal", "e-gone:appeal", "e-slow:appeal"]
    assert [r.overdue for r in rows] == [True, False, False, False]
    assert rows[0].left == timedelta(days=-6) and rows[1].left == timedelta(hours=23)
    assert [(r.status, r.reviewer) for r in rows] == [
        ("waiting", None),  # remy's lease ran out: back in the queue at its next claim
        ("in review", "rita"),
        ("gone", None),
        ("waiting", None),
    ]
    assert [(r.tenant, r.queue) for r in rows] == [
        ("slow", "appeals-slow"),
        ("quick", "appeals-quick"),
        ("gone", None),
        ("slow", "appeals-slow"),
    ]
    first = rows[0].case
    assert first is not None and first.appellant == "reporter" and first.lodged_at == NOW - timedelta(days=20)
    assert "u-secret-1" not in repr(rows)  # the appellant's id is not in the job, nor on the page


def test_overdue_is_the_gauges_rule_strictly_after_the_due_time() -> None:
    due = NOW.timestamp()
    assert not past_due(due, NOW) and past_due(due, NOW + timedelta(microseconds=1))
    job = job_for("e-now", "t", NOW - timedelta(days=1), 1)  # due exactly now
    assert job.appeal is not None and job.appeal.due_at == NOW
    (row,) = open_appeals([entry(job)], NOW)
    assert not row.overdue and row.left == timedelta(0)
    (row,) = open_appeals([entry(job)], NOW + timedelta(minutes=90))
    assert row.overdue and duration(row.left) == "1 h 30 min"


def test_time_left_reads_in_its_two_largest_units() -> None:
    assert duration(timedelta(days=2, hours=3, minutes=59)) == "2 d 3 h"
    assert duration(timedelta(hours=5, minutes=20, seconds=30)) == "5 h 20 min"
    assert duration(timedelta(minutes=7, seconds=59)) == "7 min"
    assert duration(timedelta(seconds=59)) == "under a minute"
    assert duration(-timedelta(days=6)) == "6 d 0 h"  # an overdue appeal's "overdue by"
