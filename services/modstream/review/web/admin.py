"""Admins' pages: the audit log, the stats, the sessions (listed and ended), the labels
(listed and defined), and the admin pages other rooms add (``admin_pages``)."""

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from modstream.core.labels import LabelError
from modstream.review.web.access import Admin, AdminPosted
from modstream.review.web.admin_pages import AdminPage
from modstream.review.web.shared import Shared

router = APIRouter(prefix="/admin")


@router.get("/audit")
async def audit_page(
    request: Request, session: Admin, dashboard: Shared, actor: str = "", action: str = ""
) -> Response:
    entries = await dashboard.service.audit_entries(actor=actor or None, action=action or None, limit=500)
    return dashboard.pages.render(request, "audit.html", session, entries=entries, actor=actor, action=action)


@router.get("/stats")
async def stats_page(request: Request, session: Admin, dashboard: Shared) -> Response:
    hours = await dashboard.service.hourly_counts(24)
    depth = await dashboard.service.depth_history(24)
    peak = max([h.automatic + h.human for h in hours] + [1])
    return dashboard.pages.render(request, "stats.html", session, hours=hours, depth=depth, peak=peak)


@router.get("/sessions")
async def sessions_page(request: Request, session: Admin, dashboard: Shared, user: str = "") -> Response:
    listed = await dashboard.sessions.listing(user or None)
    return dashboard.pages.render(request, "sessions.html", session, listed=listed, user=user)


@router.post("/sessions/{session_id}/revoke")
async def revoke_session(session_id: str, session: AdminPosted, dashboard: Shared) -> Response:
    ended = await dashboard.sessions.revoke(session_id)
    if ended is None:
        return RedirectResponse("/admin/sessions?notice=gone", status_code=303)
    await dashboard.service.audit(
        session.user, "session_revoked", user=ended.user, session=ended.id[:12], address=ended.address
    )
    return RedirectResponse("/admin/sessions?notice=revoked", status_code=303)


@router.post("/sessions/revoke-user")
async def revoke_user_sessions(session: AdminPosted, dashboard: Shared, user: Annotated[str, Form()]) -> Response:
    for ended in await dashboard.sessions.revoke_user(user):
        await dashboard.service.audit(
            session.user, "session_revoked", user=ended.user, session=ended.id[:12], address=ended.address
        )
    return RedirectResponse("/admin/sessions?notice=revoked", status_code=303)


@router.get("/labels")
async def labels_page(request: Request, session: Admin, dashboard: Shared) -> Response:
    return dashboard.pages.render(request, "labels.html", session, labels=await dashboard.service.labels.all())


@router.post("/labels")
async def define_label(
    request: Request,
    session: AdminPosted,
    dashboard: Shared,
    name: Annotated[str, Form()] = "",  # missing: refused below with the reason
    description: Annotated[str, Form()] = "",
) -> Response:
    service = dashboard.service
    try:
        await service.define_label(name.strip(), description, session.user)
    except LabelError as exc:
        labels = await service.labels.all()
        return dashboard.pages.render(
            request,
            "labels.html",
            session,
            status_code=422,
            labels=labels,
            error=str(exc),
            name=name,
            description=description,
        )
    return RedirectResponse("/admin/labels?notice=defined", status_code=303)


def added_pages(pages: Sequence[AdminPage]) -> APIRouter:
    """Each of ``pages`` at ``/admin/<path>``, for admins only."""
    added = APIRouter(prefix="/admin")
    for page in pages:
        added.add_api_route(f"/{page.path}", _serve(page), methods=["GET"])
    return added


def _serve(page: AdminPage) -> Callable[..., Awaitable[Response]]:
    async def admin_page(request: Request, session: Admin, dashboard: Shared) -> Response:
        return dashboard.pages.render(request, page.template, session, **await page.context(request.query_params))

    return admin_page
