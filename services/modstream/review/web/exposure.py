"""Reviewers' exposure: the page's reports of seconds spent on an image unblurred, and the
admins' view of who is near a cap, with the override that lifts one (audited)."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from modstream.review.exposure import NEAR_CAP
from modstream.review.queue import LeaseLost
from modstream.review.web.access import Admin, AdminPosted, Posted
from modstream.review.web.shared import Shared

router = APIRouter()


@router.post("/jobs/{job_id}/unblurred", status_code=204)
async def report_unblurred(
    job_id: str, session: Posted, dashboard: Shared, seconds: Annotated[float, Form(ge=0.0)]
) -> Response:
    """What the job page sends while and after its image shows unblurred."""
    try:
        await dashboard.service.report_unblurred(job_id, session.user, seconds)
    except LeaseLost as exc:
        raise HTTPException(409, str(exc)) from exc
    return Response(status_code=204)


@router.get("/admin/exposure")
async def exposure_page(request: Request, session: Admin, dashboard: Shared) -> Response:
    """Today's counters of every reviewer, each against the strictest cap of any tenant."""
    service = dashboard.service
    now = datetime.now(UTC)
    tenants = ["", *service.review_rules.tenants()]
    limits = {tenant or "default": service.review_rules(tenant).exposure for tenant in tenants}
    strictest = min(limits.items(), key=lambda item: item[1].severe_unblurred_seconds)
    reviewers = [await service.exposure.on(name, now.date()) for name in await service.exposure.reviewers(now.date())]
    rows = [(e, e.share_of_cap(strictest[1]), e.on_break(now)) for e in reviewers]
    return dashboard.pages.render(
        request,
        "exposure.html",
        session,
        rows=sorted(rows, key=lambda row: -row[1]),
        strictest=strictest,
        near=NEAR_CAP,
        day=now.date(),
    )


@router.post("/admin/exposure/{reviewer}/override")
async def override(
    reviewer: str, session: AdminPosted, dashboard: Shared, reason: Annotated[str, Form(max_length=500)] = ""
) -> Response:
    if not reason.strip():
        raise HTTPException(422, "an override needs a reason: it goes in the audit log")
    await dashboard.service.override_exposure(reviewer, session.user, reason.strip())
    return RedirectResponse("/admin/exposure?notice=overridden", status_code=303)
