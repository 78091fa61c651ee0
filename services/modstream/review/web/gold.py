"""Gold items for admins: the items and the reviewers' accuracy on them, marking a verdicted job
as gold with its answer (the page's form and the JSON API), and unmarking one. Reviewers never
see that an item is gold."""

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from modstream.core.gold import GoldAnswer, by_reviewer
from modstream.review.jobs import Verdict
from modstream.review.service import NotGold
from modstream.review.web.access import Admin, AdminPosted, Api, require_admin
from modstream.review.web.sessions import Session
from modstream.review.web.shared import Dashboard, Shared

router = APIRouter()


class GoldInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    job_id: str = Field(min_length=1, max_length=200)
    verdict: Verdict
    labels: list[str] = Field(default_factory=list, max_length=100)


@router.get("/admin/gold")
async def gold_page(request: Request, session: Admin, dashboard: Shared) -> Response:
    return await _render(request, session, dashboard)


async def _render(request: Request, session: Session, dashboard: Dashboard, **context: Any) -> Response:
    service = dashboard.service
    return dashboard.pages.render(
        request,
        "gold.html",
        session,
        status_code=422 if "error" in context else 200,
        items=await service.gold.items(),
        accuracy=by_reviewer(await service.gold.tallies()),
        rules=service.review_rules("").gold,
        **context,
    )


@router.post("/admin/gold")
async def mark_form(
    request: Request,
    session: AdminPosted,
    dashboard: Shared,
    job_id: Annotated[str, Form(max_length=200)] = "",
    verdict: Annotated[str, Form()] = "",
    labels: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    """The answer's labels as the form gives them: names separated by commas or spaces."""
    answer = GoldAnswer(verdict, frozenset(label for label in labels.replace(",", " ").split() if label))
    try:
        await dashboard.service.mark_gold(job_id.strip(), answer, session.user)
    except NotGold as exc:
        return await _render(request, session, dashboard, error=str(exc), job_id=job_id, labels=labels)
    return RedirectResponse("/admin/gold?notice=gold", status_code=303)


@router.post("/admin/gold/{event_id}/unmark")
async def unmark(event_id: str, session: AdminPosted, dashboard: Shared) -> Response:
    if await dashboard.service.gold.unmark(event_id):
        await dashboard.service.audit(session.user, "gold_unmarked", job=event_id)
    return RedirectResponse("/admin/gold", status_code=303)


@router.post("/api/gold", status_code=201)
async def api_mark(body: GoldInput, session: Api, dashboard: Shared) -> dict[str, Any]:
    require_admin(session)
    answer = GoldAnswer(body.verdict.value, frozenset(body.labels))
    try:
        item = await dashboard.service.mark_gold(body.job_id, answer, session.user)
    except NotGold as exc:
        raise HTTPException(422, str(exc)) from exc
    return {
        "event_id": item.event_id,
        "queue": item.job.queue,
        "verdict": answer.verdict,
        "labels": sorted(answer.labels),
    }


@router.get("/api/gold/accuracy")
async def api_accuracy(session: Api, dashboard: Shared) -> list[dict[str, Any]]:
    """Every reviewer's accuracy per label on gold items, with its 95 % Wilson interval."""
    require_admin(session)
    return [
        {"reviewer": a.name, "label": a.label, "answers": a.answers, "right": a.right, "low": a.low, "high": a.high}
        for a in by_reviewer(await dashboard.service.gold.tallies())
    ]
