"""The JSON API, for bearer tokens (``modstream dashboard token NAME``): the queues, claiming
the next job (of a queue, or due soonest of all: 429 while the exposure limits call for a
break), the caller's exposure today, a job with the labels a verdict may name, the verdict, a skip, and lodging an
appeal (for a platform with no Kafka client; an admin's token)."""

import dataclasses
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import JSONResponse

from modstream.core.events import AppealLodged, AppealOutcome, ModerationDecision, ReviewVerdict
from modstream.review.exposure import OnBreak
from modstream.review.jobs import Lease, ReviewJob, VerdictInput
from modstream.review.queue import LeaseLost
from modstream.review.service import CannotBank, ReviewService, UnknownLabels
from modstream.review.web.access import Api, held_job, require_admin, visible
from modstream.review.web.shared import Shared

router = APIRouter(prefix="/api")


@router.get("/queues")
async def api_queues(session: Api, dashboard: Shared) -> list[dict[str, Any]]:
    return [q.model_dump() for q in await dashboard.service.queue_stats()]


@router.post("/queues/{queue}/claim")
async def api_claim(queue: str, session: Api, dashboard: Shared) -> Response:
    return await _claim(dashboard.service, queue, session.user)


@router.post("/claim")
async def api_claim_next_due(session: Api, dashboard: Shared) -> Response:
    return await _claim(dashboard.service, None, session.user)


@router.get("/exposure")
async def api_exposure(session: Api, dashboard: Shared) -> dict[str, Any]:
    """What the caller was shown today, by severity, and any break."""
    return dataclasses.asdict(await dashboard.service.exposure_today(session.user))


async def _claim(service: ReviewService, queue: str | None, reviewer: str) -> Response:
    try:
        claimed = await service.claim_next(queue, reviewer)
    except OnBreak as exc:
        seconds = max(1, int((exc.until - datetime.now(UTC)).total_seconds()))
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": str(seconds)})
    if claimed is None:
        return Response(status_code=204)
    job, lease = claimed
    return JSONResponse(await _job_document(service, job, lease, "leased"))


@router.get("/jobs/{job_id}")
async def api_job(job_id: str, session: Api, dashboard: Shared) -> dict[str, Any]:
    """A job its caller holds (or any job, for an admin), with the labels a verdict may name."""
    return await _job_document(dashboard.service, *await visible(dashboard.service, job_id, session))


@router.post("/jobs/{job_id}/verdict")
async def api_verdict(
    job_id: str, body: VerdictInput, session: Api, dashboard: Shared
) -> ModerationDecision | ReviewVerdict:
    """The final decision the verdict published; for a second review, which decides nothing, the verdict."""
    await held_job(dashboard.service, job_id, session)
    try:
        return await dashboard.service.submit(job_id, session.user, body)
    except LeaseLost as exc:
        raise HTTPException(409, str(exc)) from exc
    except (UnknownLabels, CannotBank) as exc:
        raise HTTPException(422, str(exc)) from exc


@router.post("/jobs/{job_id}/skip")
async def api_skip(job_id: str, session: Api, dashboard: Shared) -> dict[str, bool]:
    await held_job(dashboard.service, job_id, session)
    return {"released": await dashboard.service.skip(job_id, session.user)}


@router.post("/appeals", status_code=201)
async def api_appeal(body: AppealLodged, session: Api, dashboard: Shared) -> AppealOutcome:
    """Lodge an appeal, as on the appeals topic: 201 with the outcome when it is queued for a
    person, 422 with it when it is refused (the outcome says why)."""
    require_admin(session)
    outcome = await dashboard.service.lodge(body)
    if outcome.outcome == "refused":
        raise HTTPException(422, outcome.model_dump(mode="json"))
    return outcome


async def _job_document(service: ReviewService, job: ReviewJob, lease: Lease | None, status: str) -> dict[str, Any]:
    return {
        "job": job.model_dump(mode="json"),
        "lease": lease.model_dump(mode="json") if lease else None,
        "status": status,
        "labels_offered": list(await service.offered_labels(job)),
    }
