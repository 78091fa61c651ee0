"""Reviewing in the browser: the queues (with the reviewer's own exposure today), the open
appeals by due date, claiming the next job (of a queue, or the one due soonest of all), a job's
page and image, and the verdict or skip that leads on to the queue's next job."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from modstream.core.storage import ObjectMissing
from modstream.review.exposure import OnBreak
from modstream.review.jobs import Verdict, VerdictInput
from modstream.review.queue import LeaseLost
from modstream.review.service import CannotBank, ReviewService, UnknownLabels
from modstream.review.web.access import Anyone, Page, Posted, held_job, may_see, visible_job
from modstream.review.web.preview import NoPreview, for_browser
from modstream.review.web.reading import shown_lines
from modstream.review.web.shared import Shared

router = APIRouter()
# A reviewer who took the job due soonest of all queues gets the next due of all after it.
ALL_QUEUES = "due"
APPEALS_LISTED = 500  # the appeals page lists the ones due soonest


@router.get("/")
async def queues(request: Request, session: Page, dashboard: Shared) -> Response:
    service = dashboard.service
    exposure = await service.exposure_today(session.user)
    now = datetime.now(UTC)
    return dashboard.pages.render(
        request,
        "queues.html",
        session,
        queues=await service.queue_stats(),
        exposure=exposure,
        on_break=exposure.on_break(now),
        now=now,
        cap=service.review_rules("").exposure,
    )


@router.get("/appeals")
async def appeals(request: Request, session: Page, dashboard: Shared) -> Response:
    """Every open appeal, soonest due first; a job's link only where its page would open."""
    service = dashboard.service
    rows = await service.appeals.open(service.queues, datetime.now(UTC), limit=APPEALS_LISTED)
    return dashboard.pages.render(
        request,
        "appeals.html",
        session,
        appeals=rows,
        openable={row.job_id for row in rows if row.status != "gone" and may_see(session, row.reviewer)},
        limit=APPEALS_LISTED,
    )


@router.post("/queues/{queue}/claim")
async def start_reviewing(queue: str, session: Posted, dashboard: Shared) -> Response:
    return await _next_job(dashboard.service, queue, session.user, empty="empty")


@router.post("/claim")
async def next_due(session: Posted, dashboard: Shared) -> Response:
    """The job due soonest in any queue, then the next due after each verdict."""
    return await _next_job(dashboard.service, None, session.user, empty="empty")


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str, session: Page, dashboard: Shared) -> Response:
    service = dashboard.service
    job, holder, status = await visible_job(service, job_id, session)
    return dashboard.pages.render(
        request,
        "job.html",
        session,
        job=job,
        holder=holder,
        status=status,
        mine=holder == session.user,
        blur=await dashboard.sessions.blur(session.user),
        lines=shown_lines(job.text, job.text_matches),
        following=ALL_QUEUES if request.query_params.get("next") == ALL_QUEUES else "",
        offered=await service.offered_labels(job),
        verdicts=[v.value for v in Verdict],
        banks=sorted(service.bank_names()),
    )


@router.get("/jobs/{job_id}/image")
async def job_image(job_id: str, session: Anyone, dashboard: Shared) -> Response:
    job, _, _ = await visible_job(dashboard.service, job_id, session)
    try:
        data = await dashboard.service.image(job)
    except ObjectMissing as exc:
        raise HTTPException(404, "the image is no longer in storage") from exc
    # Served as the type its magic bytes say (octet-stream if unknown), and never sniffed
    # by the browser (nosniff, from the middleware): a polyglot is never run as a script.
    # TIFF and HEIF, which browsers cannot show, go as a PNG of their first picture.
    try:
        shown, media_type = await asyncio.to_thread(for_browser, data)
    except NoPreview as exc:
        raise HTTPException(415, f"this image cannot be shown: {exc}") from exc
    return Response(shown, media_type=media_type)


@router.post("/jobs/{job_id}/verdict")
async def verdict_form(
    job_id: str,
    session: Posted,
    dashboard: Shared,
    verdict: Annotated[Verdict, Form()],
    note: Annotated[str, Form(max_length=2000)] = "",
    labels: Annotated[list[str] | None, Form()] = None,
    add_to_bank: Annotated[str, Form()] = "",
    phrase: Annotated[str, Form()] = "",
    following: Annotated[str, Form()] = "",
) -> Response:
    service = dashboard.service
    job = await held_job(service, job_id, session)
    try:
        # An unticked box is not sent: no labels at all is an empty list, not a missing field.
        given = VerdictInput(
            verdict=verdict,
            note=note or None,
            labels=labels or [],
            add_to_bank=add_to_bank or None,
            phrase=phrase.strip() or None,
        )
        await service.submit(job_id, session.user, given)
    except LeaseLost:
        return RedirectResponse("/?notice=lost", status_code=303)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors()[0]["msg"]) from exc
    except (UnknownLabels, CannotBank) as exc:
        raise HTTPException(422, str(exc)) from exc
    return await _next_job(service, _next_from(following, job.queue), session.user, empty="done")


@router.post("/jobs/{job_id}/skip")
async def skip_form(
    job_id: str, session: Posted, dashboard: Shared, following: Annotated[str, Form()] = ""
) -> Response:
    service = dashboard.service
    job = await held_job(service, job_id, session)
    queue = _next_from(following, job.queue)
    # Claim the next job before giving this one back, so a skip never returns it.
    try:
        claimed = await service.claim_next(queue, session.user)
    except OnBreak:
        await service.skip(job_id, session.user)
        return RedirectResponse("/?notice=break", status_code=303)
    await service.skip(job_id, session.user)
    if claimed is None:
        return RedirectResponse("/?notice=empty", status_code=303)
    return RedirectResponse(_job_url(claimed[0].job_id, queue), status_code=303)


async def _next_job(service: ReviewService, queue: str | None, reviewer: str, *, empty: str) -> Response:
    try:
        claimed = await service.claim_next(queue, reviewer)
    except OnBreak:
        return RedirectResponse("/?notice=break", status_code=303)
    if claimed is None:
        return RedirectResponse(f"/?notice={empty}", status_code=303)
    return RedirectResponse(_job_url(claimed[0].job_id, queue), status_code=303)


def _next_from(following: str, queue: str) -> str | None:
    """The queue the next job comes from (None: every queue), as the job page's forms say."""
    return None if following == ALL_QUEUES else queue


def _job_url(job_id: str, queue: str | None) -> str:
    return f"/jobs/{job_id}" + (f"?next={ALL_QUEUES}" if queue is None else "")
