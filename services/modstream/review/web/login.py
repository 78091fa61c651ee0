"""Signing in and out.

The login form carries a CSRF token of its own (in a short-lived cookie), as there is no
session yet. Failed sign-ins are throttled per user name and per client address
(``throttle.py``), refused before the password is looked at; signing in always starts a new
session.
"""

import asyncio
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from modstream.review.web.access import COOKIE, Posted, same_origin, same_token
from modstream.review.web.shared import Shared
from modstream.review.web.throttle import Refusal
from modstream.review.web.users import User, load_users, verify_secret

LOGIN_COOKIE = "modstream_login_csrf"

router = APIRouter()


@router.get("/login")
async def login_page(request: Request, dashboard: Shared) -> Response:
    token = secrets.token_urlsafe(32)
    response = dashboard.pages.render(request, "login.html", None, csrf=token)
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", max_age=600)
    return response


@router.post("/login")
async def login(
    request: Request,
    dashboard: Shared,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    csrf: Annotated[str, Form()] = "",  # missing: refused below like a wrong one (403)
) -> Response:
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not same_token(csrf, expected) or not same_origin(request):
        raise HTTPException(403, "missing or wrong CSRF token")
    service, pages = dashboard.service, dashboard.pages
    address = _address(request)
    attempt = await dashboard.throttle.begin(username, address)
    if isinstance(attempt, Refusal):
        # Refused before the password is looked at: the right one does not get in either.
        await service.audit(
            username or "-",
            "login_throttled",
            address=address,
            limit=attempt.scope,
            retry_after=math.ceil(attempt.retry_after),
        )
        refused = pages.render(request, "login.html", None, status_code=429, csrf=expected, error=attempt.message)
        refused.headers["Retry-After"] = str(math.ceil(attempt.retry_after))
        return refused
    # scrypt takes a while on purpose: off the event loop, so other requests go on.
    users = load_users(dashboard.users_file)
    user = await asyncio.to_thread(_signed_in, users, username, password, dashboard.decoy_hash)
    if user is None:
        await service.audit(username or "-", "login_failed", address=address)
        return pages.render(request, "login.html", None, csrf=expected, error="Wrong name or password.")
    await dashboard.throttle.succeeded(attempt)
    # Session fixation: whatever session cookie came with the sign-in ends here; the
    # signed-in session always gets a new id.
    previous = request.cookies.get(COOKIE)
    if previous:
        await dashboard.sessions.delete(previous)
    sid, session = await dashboard.sessions.create(
        user.name, user.role, address=address, agent=request.headers.get("user-agent", "")
    )
    await service.audit(user.name, "login", role=user.role, address=address, session=session.id[:12])
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=12 * 3600)
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, session: Posted, dashboard: Shared) -> Response:
    await dashboard.sessions.delete(request.cookies.get(COOKIE, ""))
    await dashboard.service.audit(session.user, "logout")
    response = RedirectResponse("/login?notice=bye", status_code=303)
    response.delete_cookie(COOKIE)
    return response


def _signed_in(users: dict[str, User], name: str, password: str, decoy_hash: str) -> User | None:
    """The user, if the password is theirs; an unknown name costs the same work as a known one."""
    user = users.get(name)
    if user is None or not user.password_hash:
        verify_secret(password, decoy_hash)
        return None
    return user if verify_secret(password, user.password_hash) else None


def _address(request: Request) -> str:
    """The client's address (behind a proxy: uvicorn's --forwarded-allow-ips decides whom to believe)."""
    return request.client.host if request.client else "unknown"
