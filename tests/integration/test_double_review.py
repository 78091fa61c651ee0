"""Double review on a real review service (Redis, Kafka, S3): a second, blind reviewer who is
never the first, whose verdict is recorded and decides nothing."""

import asyncio
import re
import secrets
from pathlib import Path

import pytest
from modstream.core.events import ModerationDecision, ReviewVerdict
from modstream.review.jobs import Verdict, VerdictInput
from modstream.review.service import ReviewService

from tests.dashboard_helpers import dashboard, log_in, seed_job
from tests.records import RecordLog, records_of

pytestmark = pytest.mark.integration
NOTE = "rita's private reason"
SECOND = ":second"


def unique(name: str) -> str:
    """An event id of this run alone: the topics are shared by every test of the session."""
    return f"{name}-{secrets.token_hex(6)}"


async def test_a_second_review_goes_to_another_reviewer_blind_and_publishes_only_a_verdict(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    path, tokens = users
    rita, remy = ({"authorization": f"Bearer {tokens[name]}"} for name in ("rita", "remy"))
    first = await seed_job(service.settings, service, unique("double"), "q", score=0.8, double_review_rate=1.0)
    other = await seed_job(service.settings, service, unique("other"), "q", score=0.5)
    second_id = first.job_id + SECOND
    async with dashboard(service, path) as api:
        claimed = await api.post("/api/queues/q/claim", headers=rita)
        assert claimed.json()["job"]["job_id"] == first.job_id
        # Labels other than the triggered one, to tell them apart from what the job pre-ticks.
        body = {"verdict": "remove", "labels": ["nsfl"], "note": NOTE}
        decided = await api.post(f"/api/jobs/{first.job_id}/verdict", headers=rita, json=body)
        assert decided.status_code == 200 and decided.json()["source"] == "human"

        # The second job is due as long after its queueing as the first, after the other; never rita's.
        mine = await api.post("/api/queues/q/claim", headers=rita)
        assert mine.json()["job"]["job_id"] == other.job_id
        assert (await api.post("/api/queues/q/claim", headers=rita)).status_code == 204
        found = await service.job(second_id)
        assert found is not None and found[2] == "pending"

        claimed = await api.post("/api/queues/q/claim", headers=remy)
        second = claimed.json()["job"]
        assert (second["job_id"], second["kind"]) == (second_id, "second_review")
        # Blind: the job is the first one as it was queued, before any verdict.
        own = {"job_id", "kind", "enqueued_at", "due_at"}
        assert {k: v for k, v in second.items() if k not in own} == first.model_dump(mode="json", exclude=own)
        # (as a JSON value: the job's policy map `bank_on_remove` names the word, not the verdict)
        assert NOTE not in claimed.text and "rita" not in claimed.text and '"remove"' not in claimed.text

        async with dashboard(service, path) as browser:
            await log_in(browser, "remy")
            page = await browser.get(f"/jobs/{second_id}")
            assert page.status_code == 200 and 'id="verdict"' in page.text
            assert NOTE not in page.text and "rita" not in page.text
            boxes = dict(re.findall(r'name="labels" value="(\w+)"( checked)?', page.text))
            assert boxes == {"nsfl": "", "nsfw": " checked", "sfw": ""}  # the model's triggers, not rita's labels

        answered = await api.post(
            f"/api/jobs/{second_id}/verdict", headers=remy, json={"verdict": "approve", "labels": []}
        )
        assert answered.status_code == 200, answered.text
        assert (answered.json()["job_kind"], answered.json()["human_decision_id"]) == ("second_review", None)
        # No third review: the queue holds only rita's other job, which she still has.
        assert (await api.post("/api/queues/q/claim", headers=remy)).status_code == 204

    async with (
        RecordLog(service.settings, service.settings.topic_review_verdicts, ReviewVerdict) as verdicts,
        RecordLog(service.settings, service.settings.topic_decisions, ModerationDecision) as decisions,
    ):
        for _ in range(240):
            if len(verdicts.all(first.job_id)) >= 2:
                break
            await asyncio.sleep(0.25)
        assert await decisions.wait_for([first.job_id]) == 1
        # A decision of remy's would be on its topic before his verdict was on its own.
        await asyncio.sleep(2)
        by_kind = {v.job_kind: v for v in verdicts.all(first.job_id)}
        [human] = decisions.all(first.job_id)
    assert len(verdicts.all(first.job_id)) == 2
    assert (human.reviewer, human.decision_id) == ("rita", decided.json()["decision_id"])
    original = by_kind["threshold_review"]
    assert (original.reviewer, original.labels, original.note) == ("rita", ["nsfl"], NOTE)
    assert original.human_decision_id == human.decision_id
    recorded = by_kind["second_review"]
    assert (recorded.event_id, recorded.job_id, recorded.reviewer, recorded.verdict) == (
        first.job_id,
        second_id,
        "remy",
        "approve",
    )
    assert (recorded.labels, recorded.note, recorded.human_decision_id) == ([], None, None)
    assert recorded.automatic_decision_id == first.decision_id == original.automatic_decision_id
    audited = await service.audit_entries(actor="remy", action="verdict", limit=50)
    # (the audit log is the session's: other tests' reviewers are named remy too)
    by_remy = [(e.details["job"], e.details["kind"]) for e in audited if e.details["job"].startswith(first.job_id)]
    assert by_remy == [(second_id, "second_review")]


async def test_a_retried_first_verdict_queues_one_second_job(service: ReviewService) -> None:
    first = await seed_job(service.settings, service, unique("retried"), "q", double_review_rate=1.0)
    assert await service.claim_next("q", "rita") is not None
    verdict = VerdictInput(verdict=Verdict.APPROVE, labels=["nsfw"])
    # The same verdict twice at once (a client retrying a slow request): both find rita's
    # lease, publish and queue the second job; one then closes the job, the other finds it closed.
    results = await asyncio.gather(
        service.submit(first.job_id, "rita", verdict),
        service.submit(first.job_id, "rita", verdict),
        return_exceptions=True,
    )
    assert sorted(type(r).__name__ for r in results) == ["LeaseLost", "ModerationDecision"]
    published = await records_of(
        service.settings, service.settings.topic_review_verdicts, ReviewVerdict, first.job_id, wanted=2
    )
    assert len(published) == 2  # both got as far as the second job
    (stats,) = await service.queue_stats()
    assert (stats.pending, stats.in_review) == (1, 0)
    claimed = await service.claim_next("q", "remy")
    assert claimed is not None and claimed[0].job_id == first.job_id + SECOND
    assert await service.claim_next("q", "ada") is None


async def test_without_a_double_review_rate_a_verdict_queues_nothing(service: ReviewService) -> None:
    first = await seed_job(service.settings, service, unique("single"), "q")
    assert await service.claim_next("q", "rita") is not None
    await service.submit(first.job_id, "rita", VerdictInput(verdict=Verdict.REMOVE, labels=["nsfw"]))
    found = await service.job(first.job_id)
    assert found is not None and found[2] == "closed"  # the verdict is done, second job or not
    assert await service.job(first.job_id + SECOND) is None
    (stats,) = await service.queue_stats()
    assert (stats.pending, stats.in_review) == (0, 0)
    assert await service.claim_next("q", "remy") is None
