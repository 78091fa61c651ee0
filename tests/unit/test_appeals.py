"""Appeals, the pure rules: the window, the due date in working days, what is refused and why."""

from datetime import UTC, datetime, timedelta

import pytest
from modstream.core.appeals import AppealRules, refusal
from modstream.core.events import AppealLodged, AppealRefusal, Outcome
from modstream.policy.engine import Policy
from modstream.review.appeals import appeal_job
from pydantic import ValidationError

from tests.statement_cases import decision

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # a Monday


def lodged(event_id: str = "evt-human", tenant: str = "acme") -> AppealLodged:
    return AppealLodged(
        event_id=event_id, tenant=tenant, appellant="uploader", appellant_id="u-1", reason="a painting", occurred_at=NOW
    )


@pytest.mark.parametrize(
    ("lodged_at", "days", "due"),
    [
        (datetime(2026, 12, 7, 12, tzinfo=UTC), 3, datetime(2026, 12, 10, 12, tzinfo=UTC)),  # Mon -> Thu
        (datetime(2026, 12, 10, 9, tzinfo=UTC), 3, datetime(2026, 12, 15, 9, tzinfo=UTC)),  # Thu -> Tue
        (datetime(2026, 12, 12, 9, tzinfo=UTC), 1, datetime(2026, 12, 14, 9, tzinfo=UTC)),  # Sat -> Mon
    ],
)
def test_the_due_date_counts_working_days_only(lodged_at: datetime, days: int, due: datetime) -> None:
    assert AppealRules(due_working_days=days).due(lodged_at) == due


def test_a_window_shorter_than_six_months_is_a_policy_error() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 183"):
        Policy.model_validate({"id": "p", "version": "1", "labels": {}, "appeals": {"window_days": 30}})


def test_what_can_be_heard_and_what_is_refused() -> None:
    rules = AppealRules()
    blocked = decision("human", occurred_at=NOW - timedelta(days=10))
    assert refusal(lodged(), blocked, rules, NOW) is None
    assert refusal(lodged(), blocked, rules, NOW + timedelta(days=173)) is None  # the window's last day
    late = refusal(lodged(), blocked, rules, NOW + timedelta(days=174))
    assert late is not None and late[0] is AppealRefusal.OUT_OF_TIME and "until 2027-05-29" in late[1]
    for nothing in (None, blocked.model_copy(update={"decision": Outcome.ALLOW})):
        refused = refusal(lodged(), nothing, rules, NOW)
        assert refused is not None and refused[0] is AppealRefusal.NO_RESTRICTION
    elsewhere = refusal(lodged(tenant="other"), blocked, rules, NOW)
    unknown = refusal(lodged(tenant="other"), None, rules, NOW)
    assert elsewhere == unknown  # another tenant's restriction is not told apart from none


def test_an_appeal_job_names_the_decider_the_reason_and_its_due_date() -> None:
    blocked = decision("human", occurred_at=NOW - timedelta(days=1))
    job = appeal_job(lodged(), blocked, AppealRules(queue="appeals-acme"), NOW)
    assert (job.job_id, job.event_id, job.kind, job.queue) == (
        "evt-human:appeal",
        "evt-human",
        "appeal",
        "appeals-acme",
    )
    assert job.decision_id == blocked.decision_id and not job.decides
    assert job.appeal is not None and job.appeal.restricted_by == "lena" and job.appeal.reason == "a painting"
    assert job.appeal.due_at == datetime(2026, 12, 10, 12, tzinfo=UTC)


def test_an_appeal_waits_in_the_queue_of_the_foremost_label_it_was_restricted_for() -> None:
    rules = AppealRules(queue="appeals", queues={"violence.gore": "appeals-gore", "sexual.explicit": "appeals-sexual"})
    # A person's label first (they removed it for gore), then what triggered.
    by_reviewer = decision("model_then_human").model_copy(update={"labels": ["violence.gore", "sexual.explicit"]})
    assert by_reviewer.labels_for() == ["violence.gore", "sexual.explicit"]
    assert appeal_job(lodged(), by_reviewer, rules, NOW).queue == "appeals-gore"
    assert appeal_job(lodged(), decision("model"), rules, NOW).queue == "appeals-sexual"  # what triggered
    # A bank's block names no label; a label with no queue of its own: the tenant's queue.
    assert appeal_job(lodged(), decision("bank_match"), rules, NOW).queue == "appeals"
    assert appeal_job(lodged(), decision("model"), AppealRules(queues={"violence.gore": "g"}), NOW).queue == "appeals"
    with pytest.raises(ValidationError):
        AppealRules(queues={"violence.gore": "Not A Queue"})
