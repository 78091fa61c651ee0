"""A reviewer's own settings: how blurred images first show."""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from modstream.review.web.access import Page, Posted
from modstream.review.web.sessions import BLUR_LEVELS
from modstream.review.web.shared import Shared

router = APIRouter()


@router.get("/settings")
async def settings_page(request: Request, session: Page, dashboard: Shared) -> Response:
    blur = await dashboard.sessions.blur(session.user)
    return dashboard.pages.render(request, "settings.html", session, levels=list(BLUR_LEVELS), blur=blur)


@router.post("/settings")
async def save_settings(session: Posted, dashboard: Shared, blur: Annotated[str, Form()]) -> Response:
    if blur not in BLUR_LEVELS:
        raise HTTPException(422, f"blur must be one of {', '.join(BLUR_LEVELS)}")
    await dashboard.sessions.set_blur(session.user, blur)
    await dashboard.service.audit(session.user, "settings", blur=blur)
    return RedirectResponse("/settings?notice=saved", status_code=303)
