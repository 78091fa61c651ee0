"""The appeals page on the real review service (Redis, the broker, the dashboard app): appeals
lodged through the service's own path are listed soonest due first, whatever order they came
in, the overdue one marked; each viewer sees who holds one as the job pages tell it; without a
session there is no page."""

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from modstream.core.appeals import AppealRules
from modstream.core.events import AppealLodged
from modstream.core.settings import Settings
from modstream.core.topics import ensure_topics
from modstream.review.appeals import DUE, RESTRICTION
from modstream.review.service import ReviewService

from tests.dashboard_helpers import dashboard, log_in
from tests.statement_cases import decision

pytestmark = pytest.mark.integration
TAG = uuid.uuid4().hex[:8]
QUICK, SLOW = f"quick-{TAG}", f"slow-{TAG}"  # tenants whose appeals are due in 1 and in 10 working days
RULES = {
    QUICK: AppealRules(due_working_days=1, queue=f"appeals-quick-{TAG}"),
    SLOW: AppealRules(due_working_days=10, queue=f"appeals-slow-{TAG}"),
}


@pytest.fixture
async def appeals_service(stack_settings: Settings) -> AsyncIterator[ReviewService]:
    """A review service with the two tenants' rules, its queues and outcomes topic its own.
    The book of open appeals is one key for every tenant: this test's entries leave with it."""
    settings = stack_settings.model_copy(update={"topic_appeal_outcomes": f"appeals-page-{TAG}.outcomes"})
    await ensure_topics(settings)
    service = ReviewService(settings, appeal_rules=lambda tenant: RULES[tenant])
    service.queues._prefix = f"test_appeals_page:{TAG}:"
    await service.start()
    try:
        yield service
    finally:
        for member in await service.redis.zrange(DUE, 0, -1):
            if member.decode().partition("|")[0] in RULES:
                await service.redis.zrem(DUE, member)
        await service.redis.delete(*[RESTRICTION + f"{TAG}-{name}" for name in ("slow", "quick", "late")])
        await service.stop()


async def lodge(service: ReviewService, event_id: str, tenant: str, lodged_at: datetime) -> str:
    """Put a restriction of ``event_id`` on record (as the decisions feed does), appeal it as
    lodged at ``lodged_at``; returns its job id."""
    restricted = decision("model", tenant=tenant, event_id=event_id, occurred_at=lodged_at - timedelta(days=1))
    await service.appeals.remember(restricted, RULES[tenant])
    appeal = AppealLodged(
        event_id=event_id,
        tenant=tenant,
        appellant="reporter" if tenant == QUICK else "uploader",
        appellant_id="pseudonym-7f3a",
        reason="Look again.",
        occurred_at=lodged_at,
    )
    outcome = await service.lodge(appeal)
    assert outcome.outcome == "queued", outcome
    return f"{event_id}:appeal"


def rows_of(page: str) -> dict[str, str]:
    """This test's rows of the appeals table, in page order: job id -> the row's HTML."""
    found = re.findall(r'<tr data-job="([^"]+)"(.*?)</tr>', page, re.DOTALL)
    return {job: html for job, html in found if job.startswith(TAG)}


async def test_open_appeals_are_listed_soonest_due_first_and_the_overdue_one_is_marked(
    appeals_service: ReviewService, users: tuple[Path, dict[str, str]]
) -> None:
    service, now = appeals_service, datetime.now(UTC)
    # Lodged latest-due first: the page's order is the due dates', not the lodging's.
    slow = await lodge(service, f"{TAG}-slow", SLOW, now)  # due in two weeks
    quick = await lodge(service, f"{TAG}-quick", QUICK, now)  # due in one to three days
    late = await lodge(service, f"{TAG}-late", SLOW, now - timedelta(days=20))  # due (about) six days ago

    async with dashboard(service, users[0]) as anonymous:
        refused = await anonymous.get("/appeals")
        assert (refused.status_code, refused.headers["location"]) == (303, "/login")

    async with dashboard(service, users[0]) as rita, dashboard(service, users[0]) as ada:
        csrf = await log_in(rita, "rita")
        await log_in(ada, "ada")
        claimed = await rita.post(f"/queues/{RULES[QUICK].queue}/claim", data={"csrf": csrf})
        assert claimed.headers["location"] == f"/jobs/{quick}"

        page = await rita.get("/appeals")
        assert page.status_code == 200 and '<a href="/appeals">Appeals</a>' in page.text
        rows = rows_of(page.text)
        assert list(rows) == [late, quick, slow]
        assert [' class="overdue"' in html for html in rows.values()] == [True, False, False]
        assert re.search(r'<strong class="overdue">Overdue by \d+ d \d+ h</strong>', rows[late])
        assert "Overdue" not in rows[quick] + rows[slow]
        assert RULES[SLOW].queue in rows[late] and SLOW in rows[late] and "uploader" in rows[late]
        assert RULES[QUICK].queue in rows[quick] and "reporter" in rows[quick]
        assert (now - timedelta(days=20)).strftime("%Y-%m-%d %H:%M") in rows[late]  # lodged
        late_job = await service.job(late)
        assert late_job is not None and late_job[0].appeal is not None
        assert late_job[0].appeal.appeal_id in rows[late]
        assert late_job[0].appeal.due_at.strftime("%Y-%m-%d %H:%M") in rows[late]
        assert "pseudonym-7f3a" not in page.text  # never the appellant's id
        # Rita sees her own job and may open it; the waiting ones are claimed from their queue.
        assert "in review by you" in rows[quick] and f'href="/jobs/{quick}"' in rows[quick]
        assert "waiting" in rows[late] and "/jobs/" not in rows[late] + rows[slow]

        # An admin sees who holds it (as the job page tells an admin), and may open every job.
        admin_rows = rows_of((await ada.get("/appeals")).text)
        assert list(admin_rows) == [late, quick, slow]
        assert "in review by rita" in admin_rows[quick]
        assert all(f'href="/jobs/{job}"' in html for job, html in admin_rows.items())

    async with dashboard(service, users[0]) as remy:
        await log_in(remy, "remy")
        remy_rows = rows_of((await remy.get("/appeals")).text)
        assert "in review by another reviewer" in remy_rows[quick] and "rita" not in remy_rows[quick]
        assert "/jobs/" not in "".join(remy_rows.values())
