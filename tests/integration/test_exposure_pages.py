"""Exposure limits and due dates in the dashboard, over HTTP against a real Valkey: what a
reviewer sees of their own counters and of the queues' due dates, the page's reports of time
unblurred, the API's answer during a break, and the admins' Exposure page and override."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from modstream.core.review_rules import ExposureLimits, ReviewRules, SameForAll
from modstream.core.settings import Settings
from modstream.review.service import ReviewService

from tests.dashboard_helpers import dashboard, log_in
from tests.review_jobs import review_job as job

pytestmark = pytest.mark.integration
# A 2-minute cap, and a break of 10 minutes after 2 severe images in a row.
RULES = ReviewRules(
    severe=frozenset({"violence.gore"}),
    exposure=ExposureLimits(severe_unblurred_hours_per_day=2 / 60, break_after_severe=2, break_minutes=10),
)


@pytest.fixture
async def service(redis_settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[ReviewService]:
    """Claims, reports and pages touch Redis only: no broker or object store behind this one."""
    made = ReviewService(redis_settings, review_rules=SameForAll(RULES))
    made.queues._prefix = made.exposure._prefix = f"exposure-pages:{request.node.name}:"
    yield made
    await made.redis.aclose()


async def test_the_queue_list_shows_due_dates_and_the_reviewers_own_exposure(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    now = datetime.now(UTC)
    await service.queue_job(job("late", "drugs", now - timedelta(hours=25)))
    await service.queue_job(job("gore", "violence.gore", now - timedelta(minutes=10), queue="gore"))
    async with dashboard(service, users[0]) as rita:
        csrf = await log_in(rita, "rita")
        page = (await rita.get("/")).text
        assert '<td class="num late">1</td>' in page  # one job past due
        assert "1 h 0 min ago" in page  # the late one fell due an hour ago
        claimed = await rita.post("/claim", data={"csrf": csrf})
        assert claimed.headers["location"] == "/jobs/late?next=due"
        page = (await rita.get("/jobs/late?next=due")).text
        assert page.count('<input type="hidden" name="following" value="due">') == 2  # verdict and skip
        # The next due of every queue, not of the job's own: the severe one, in another queue.
        skipped = await rita.post("/jobs/late/skip", data={"csrf": csrf, "following": "due"})
        assert skipped.headers["location"] == "/jobs/gore?next=due"
        shown = await rita.post("/jobs/gore/unblurred", data={"csrf": csrf, "seconds": "42.5"})
        assert shown.status_code == 204
        page = (await rita.get("/")).text
        assert '<strong class="seen-severe">1</strong> severe and 1 other' in page
        assert '<strong class="unblurred-severe">0 min</strong> of 2' in page
        for _ in range(2):
            await rita.post("/jobs/gore/unblurred", data={"csrf": csrf, "seconds": "60"})
        assert "You have reached the daily cap" in (await rita.get("/")).text
        refused = await rita.post("/jobs/gore/unblurred", data={"csrf": csrf, "seconds": "-1"})
        assert refused.status_code == 422
    async with dashboard(service, users[0]) as remy:
        csrf = await log_in(remy, "remy")
        stolen = await remy.post("/jobs/gore/unblurred", data={"csrf": csrf, "seconds": "5"})
        assert stolen.status_code == 409  # only the reviewer holding the job reports on it
    exposure = await service.exposure_today("rita")
    assert exposure.unblurred_seconds["severe"] == 162.5 and exposure.seen == {"severe": 1, "standard": 1}


async def test_during_a_break_the_api_answers_429_and_an_admin_lifts_it_with_a_reason(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    now = datetime.now(UTC)
    for i in range(3):
        await service.queue_job(job(f"gore-{i}", "violence.gore", now + timedelta(seconds=i)))
    token = {"authorization": f"Bearer {users[1]['remy']}"}
    async with dashboard(service, users[0]) as api:
        for i in range(2):
            taken = await api.post("/api/claim", headers=token)
            assert taken.status_code == 200 and taken.json()["job"]["job_id"] == f"gore-{i}"
            assert taken.json()["job"]["severity"] == "severe"
            await service.queues.close(f"gore-{i}", "remy")
        resting = await api.post("/api/claim", headers=token)
        assert resting.status_code == 429 and 590 <= int(resting.headers["retry-after"]) <= 600
        mine = (await api.get("/api/exposure", headers=token)).json()
        assert mine["seen"] == {"severe": 2, "standard": 0} and mine["break_until"] is not None
    async with dashboard(service, users[0]) as remy:
        await log_in(remy, "remy")
        assert "On a break until" in (await remy.get("/")).text
        assert (await remy.get("/admin/exposure")).status_code == 403
    async with dashboard(service, users[0]) as ada:
        csrf = await log_in(ada, "ada")
        page = await ada.get("/admin/exposure")
        assert page.status_code == 200 and 'data-reviewer="remy"' in page.text and "until" in page.text
        blank = await ada.post("/admin/exposure/remy/override", data={"csrf": csrf, "reason": "  "})
        assert blank.status_code == 422
        lifted = await ada.post("/admin/exposure/remy/override", data={"csrf": csrf, "reason": "remy asked"})
        assert lifted.status_code == 303
        assert "lifted by ada" in (await ada.get("/admin/exposure")).text
    async with dashboard(service, users[0]) as api:
        again = await api.post("/api/claim", headers=token)
        assert again.status_code == 200 and again.json()["job"]["job_id"] == "gore-2"
    audited = [e for e in await service.audit_entries(actor="ada", limit=20) if e.action == "exposure_override"]
    assert audited and audited[0].details == {"reviewer": "remy", "reason": "remy asked"}


async def test_a_reviewer_near_the_cap_is_marked_for_admins(
    service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    await service.queue_job(job("gore", "violence.gore", datetime.now(UTC)))
    assert await service.claim_next(None, "rita") is not None
    await service.report_unblurred("gore", "rita", 60)
    await service.report_unblurred("gore", "rita", 40)  # 100 s of a 120 s cap: 83 %
    async with dashboard(service, users[0]) as ada:
        await log_in(ada, "ada")
        page = (await ada.get("/admin/exposure")).text
    assert '<tr class="near-cap" data-reviewer="rita">' in page and "83 % (near)" in page
