"""Who is asking, and which jobs they may see.

Pages need a session cookie (no session: ``LoginRequired``, a redirect to the login page);
images take a session or an API bearer token and answer 401 otherwise; the JSON API takes a
bearer token only (a cookie there would make it forgeable cross-site, so CSRF cannot apply).
Every form post carries the session's CSRF token and, when the browser says where it comes
from, comes from this site. A job is seen by its lease holder, or by any admin.
"""

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from modstream.review.jobs import Lease, ReviewJob
from modstream.review.service import ReviewService
from modstream.review.web.sessions import Session
from modstream.review.web.shared import Dashboard, Shared
from modstream.review.web.users import load_users, user_for_token

COOKIE = "modstream_session"


class LoginRequired(Exception):
    """A page was asked for without a session."""


async def to_login(request: Request, exc: Exception) -> Response:
    """The answer to ``LoginRequired``."""
    return RedirectResponse("/login", status_code=303)


async def page_user(request: Request, dashboard: Shared) -> Session:
    session = await _session_of(request, dashboard)
    if session is None:
        raise LoginRequired
    return session


async def any_user(request: Request, dashboard: Shared) -> Session:
    """A browser session or an API bearer token; 401 otherwise (images, JSON)."""
    session = await _session_of(request, dashboard)
    if session is not None:
        return session
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = user_for_token(load_users(dashboard.users_file), header[7:].strip())
        if user is not None:
            return Session(user=user.name, role=user.role, csrf="")
    raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})


async def api_user(request: Request, dashboard: Shared) -> Session:
    """The JSON API's caller (and the extensions'): a bearer token, never a cookie."""
    session = await any_user(request, dashboard)
    if session.csrf:
        # A cookie session on the JSON API would make it forgeable cross-site.
        raise HTTPException(401, "the JSON API takes a bearer token, not a session cookie")
    return session


async def admin_user(session: Annotated[Session, Depends(page_user)]) -> Session:
    return require_admin(session)


async def form_user(request: Request, session: Annotated[Session, Depends(page_user)]) -> Session:
    form = await request.form()
    if not same_token(str(form.get("csrf", "")), session.csrf) or not same_origin(request):
        raise HTTPException(403, "missing or wrong CSRF token")
    return session


async def admin_form_user(session: Annotated[Session, Depends(form_user)]) -> Session:
    return require_admin(session)


Page = Annotated[Session, Depends(page_user)]
Anyone = Annotated[Session, Depends(any_user)]
Posted = Annotated[Session, Depends(form_user)]
Admin = Annotated[Session, Depends(admin_user)]
AdminPosted = Annotated[Session, Depends(admin_form_user)]
Api = Annotated[Session, Depends(api_user)]


async def visible(service: ReviewService, job_id: str, session: Session) -> tuple[ReviewJob, Lease | None, str]:
    """The job, its lease and status, if this user may see it: its lease holder, or any admin."""
    found = await service.job(job_id)
    if found is None:
        raise HTTPException(404, "no such job")
    lease = found[1]
    if not may_see(session, lease.reviewer if lease else None):
        raise HTTPException(403, "this job is not leased to you")
    return found


def may_see(session: Session, holder: str | None) -> bool:
    """Whether this user may see a job whose lease ``holder`` has (None: nobody): the holder, or any admin."""
    return holder == session.user or session.role == "admin"


async def visible_job(service: ReviewService, job_id: str, session: Session) -> tuple[ReviewJob, str | None, str]:
    """As ``visible``, with the lease holder's name."""
    job, lease, status = await visible(service, job_id, session)
    return job, lease.reviewer if lease else None, status


async def held_job(service: ReviewService, job_id: str, session: Session) -> ReviewJob:
    """The job, if this user holds its lease (an admin who does not is refused like anyone)."""
    job, holder, _ = await visible_job(service, job_id, session)
    if holder != session.user:
        raise HTTPException(403, "this job is not leased to you")
    return job


def same_token(given: str, expected: str) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 403).
    return hmac.compare_digest(given.encode(), expected.encode())


def same_origin(request: Request) -> bool:
    """When the browser says where a post comes from, it must be this site.

    Browsers say it with ``Sec-Fetch-Site``, whatever the referrer policy. Under the
    dashboard's ``Referrer-Policy: no-referrer`` they send no Referer and ``Origin: null`` on
    every post, so ``Origin`` is only used by clients that send it for real.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")  # none: the user's own navigation
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return True  # nothing said: the CSRF token decides alone
    host = origin.split("://", 1)[-1].split("/", 1)[0]
    return host == request.headers.get("host")


async def _session_of(request: Request, dashboard: Dashboard) -> Session | None:
    sid = request.cookies.get(COOKIE)
    return await dashboard.sessions.get(sid) if sid else None


def require_admin(session: Session) -> Session:
    if session.role != "admin":
        raise HTTPException(403, "admins only")
    return session
