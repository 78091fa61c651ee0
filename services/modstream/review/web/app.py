"""The reviewer dashboard: FastAPI routes over the review service.

Pages need a session cookie (no session: redirect to the login page); images and the
JSON API answer 401 instead. Every form post carries the session's CSRF token; the
JSON API authenticates with a bearer token and takes no cookies, so CSRF cannot apply.
Every response carries the security headers of ``headers.py``; failed sign-ins are
throttled per user name and per client address (``throttle.py``); signing in always starts
a new session, and admins list and end sessions at /admin/sessions. Other rooms add admin
pages through ``admin_pages`` (``admin_pages.AdminPage``), and routes behind the API's
bearer tokens through ``extensions`` (``extensions.DashboardExtension``).
"""

import asyncio
import hmac
import math
import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.types import ASGIApp

from modstream.core.events import ModerationDecision, ReviewVerdict
from modstream.core.labels import LabelError
from modstream.core.storage import ObjectMissing
from modstream.review.jobs import Lease, ReviewJob, Verdict, VerdictInput
from modstream.review.queue import LeaseLost
from modstream.review.service import CannotBank, ReviewService, UnknownLabels
from modstream.review.web.admin_pages import AdminPage
from modstream.review.web.extensions import DashboardExtension
from modstream.review.web.headers import SecurityHeaders
from modstream.review.web.preview import NoPreview, for_browser
from modstream.review.web.sessions import BLUR_LEVELS, Session, Sessions
from modstream.review.web.throttle import LoginLimits, LoginThrottle, Refusal
from modstream.review.web.users import User, hash_secret, load_users, user_for_token, verify_secret

HERE = Path(__file__).parent
COOKIE = "modstream_session"
LOGIN_COOKIE = "modstream_login_csrf"
NOTICES = {
    "empty": "That queue is empty.",
    "done": "Verdict saved. The queue is empty now.",
    "lost": "Your lease on that job ran out; it went back to its queue.",
    "saved": "Settings saved.",
    "bye": "You are logged out.",
    "revoked": "Session ended.",
    "gone": "That session had already ended.",
    "defined": "Label defined: every job offers it now.",
}


class DashboardApp(FastAPI):
    """FastAPI with the security headers outside every other layer, so that even Starlette's
    own plain 500 answer carries them."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


class LoginRequired(Exception):
    """A page was asked for without a session."""


def create_app(
    service: ReviewService,
    users_file: Path,
    *,
    run_feeds: bool = True,
    redis_prefix: str = "dashboard:",
    admin_pages: Sequence[AdminPage] = (),
    extensions: Sequence[DashboardExtension] = (),
) -> FastAPI:
    """The dashboard; ``redis_prefix`` namespaces its sessions, settings and sign-in counts;
    ``extensions`` start and stop with it and serve their routes behind its API tokens."""
    sessions = Sessions(service.redis, redis_prefix)
    settings = service.settings
    limits = LoginLimits(
        per_user=settings.dashboard_login_failures_per_user,
        per_address=settings.dashboard_login_failures_per_address,
        window_seconds=settings.dashboard_login_window_seconds,
    )
    throttle = LoginThrottle(service.redis, limits, redis_prefix)
    # Checked when the name is unknown, so that a wrong name takes as long as a wrong password.
    decoy_hash = hash_secret(secrets.token_urlsafe(16))
    templates = Jinja2Templates(directory=[HERE / "templates", *(page.templates for page in admin_pages)])
    templates.env.globals["admin_pages"] = tuple(admin_pages)  # for the navigation

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        from modstream.review.intake import run_feeds as feeds

        await service.start()
        started: list[DashboardExtension] = []
        try:
            for extension in extensions:
                await extension.start()
                started.append(extension)
            stop = asyncio.Event()
            task = asyncio.create_task(feeds(service.settings, service, stop)) if run_feeds else None
            yield
            stop.set()
            if task is not None:
                await task
        finally:
            for extension in reversed(started):
                await extension.stop()
            await service.stop()

    app = DashboardApp(title="modstream review", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """Each review feed's state (503 while one is not working), for monitors: no session
        needed, as it names error types only, never an address or a message."""
        from modstream.review.intake import health_report

        healthy, report = health_report()
        return JSONResponse(report, status_code=200 if healthy else 503)  # no-store: the middleware

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse("/login", status_code=303)

    # --- who is asking -------------------------------------------------------------

    async def session_of(request: Request) -> Session | None:
        sid = request.cookies.get(COOKIE)
        return await sessions.get(sid) if sid else None

    async def page_user(request: Request) -> Session:
        session = await session_of(request)
        if session is None:
            raise LoginRequired
        return session

    async def any_user(request: Request) -> Session:
        """A browser session or an API bearer token; 401 otherwise (images, JSON)."""
        session = await session_of(request)
        if session is not None:
            return session
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            user = user_for_token(load_users(users_file), header[7:].strip())
            if user is not None:
                return Session(user=user.name, role=user.role, csrf="")
        raise HTTPException(401, "sign in first", headers={"WWW-Authenticate": "Bearer"})

    async def api_user(request: Request) -> Session:
        session = await any_user(request)
        if session.csrf:
            # A cookie session on the JSON API would make it forgeable cross-site.
            raise HTTPException(401, "the JSON API takes a bearer token, not a session cookie")
        return session

    async def admin_user(session: Annotated[Session, Depends(page_user)]) -> Session:
        return _admin(session)

    async def form_user(request: Request, session: Annotated[Session, Depends(page_user)]) -> Session:
        form = await request.form()
        if not _same_token(str(form.get("csrf", "")), session.csrf) or not _same_origin(request):
            raise HTTPException(403, "missing or wrong CSRF token")
        return session

    async def admin_form_user(session: Annotated[Session, Depends(form_user)]) -> Session:
        return _admin(session)

    Page = Annotated[Session, Depends(page_user)]
    Posted = Annotated[Session, Depends(form_user)]
    Admin = Annotated[Session, Depends(admin_user)]
    AdminPosted = Annotated[Session, Depends(admin_form_user)]
    Api = Annotated[Session, Depends(api_user)]

    def render(
        request: Request, template: str, session: Session | None, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        notice = NOTICES.get(request.query_params.get("notice", ""))
        return templates.TemplateResponse(
            request, template, {"session": session, "notice": notice, **context}, status_code=status_code
        )

    # --- login ---------------------------------------------------------------------

    @app.get("/login")
    async def login_page(request: Request) -> Response:
        token = secrets.token_urlsafe(32)
        response = render(request, "login.html", None, csrf=token)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", max_age=600)
        return response

    @app.post("/login")
    async def login(
        request: Request,
        username: Annotated[str, Form()],
        password: Annotated[str, Form()],
        csrf: Annotated[str, Form()] = "",  # missing: refused below like a wrong one (403)
    ) -> Response:
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not expected or not _same_token(csrf, expected) or not _same_origin(request):
            raise HTTPException(403, "missing or wrong CSRF token")
        address = _address(request)
        attempt = await throttle.begin(username, address)
        if isinstance(attempt, Refusal):
            # Refused before the password is looked at: the right one does not get in either.
            await service.audit(
                username or "-",
                "login_throttled",
                address=address,
                limit=attempt.scope,
                retry_after=math.ceil(attempt.retry_after),
            )
            refused = render(request, "login.html", None, status_code=429, csrf=expected, error=attempt.message)
            refused.headers["Retry-After"] = str(math.ceil(attempt.retry_after))
            return refused
        # scrypt takes a while on purpose: off the event loop, so other requests go on.
        user = await asyncio.to_thread(_signed_in, load_users(users_file), username, password, decoy_hash)
        if user is None:
            await service.audit(username or "-", "login_failed", address=address)
            return render(request, "login.html", None, csrf=expected, error="Wrong name or password.")
        await throttle.succeeded(attempt)
        # Session fixation: whatever session cookie came with the sign-in ends here; the
        # signed-in session always gets a new id.
        previous = request.cookies.get(COOKIE)
        if previous:
            await sessions.delete(previous)
        sid, session = await sessions.create(
            user.name, user.role, address=address, agent=request.headers.get("user-agent", "")
        )
        await service.audit(user.name, "login", role=user.role, address=address, session=session.id[:12])
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, sid, httponly=True, samesite="strict", max_age=12 * 3600)
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/logout")
    async def logout(request: Request, session: Posted) -> Response:
        await sessions.delete(request.cookies.get(COOKIE, ""))
        await service.audit(session.user, "logout")
        response = RedirectResponse("/login?notice=bye", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    # --- reviewing -----------------------------------------------------------------

    @app.get("/")
    async def queues(request: Request, session: Page) -> Response:
        return render(request, "queues.html", session, queues=await service.queue_stats())

    @app.post("/queues/{queue}/claim")
    async def start_reviewing(queue: str, session: Posted) -> Response:
        return await _next_job(queue, session.user, empty="empty")

    @app.get("/jobs/{job_id}")
    async def job_page(request: Request, job_id: str, session: Page) -> Response:
        job, holder, status = await _visible_job(job_id, session)
        return render(
            request,
            "job.html",
            session,
            job=job,
            holder=holder,
            status=status,
            mine=holder == session.user,
            blur=await sessions.blur(session.user),
            offered=await service.offered_labels(job),
            verdicts=[v.value for v in Verdict],
            banks=sorted(service.bank_names()),
        )

    @app.get("/jobs/{job_id}/image")
    async def job_image(job_id: str, session: Annotated[Session, Depends(any_user)]) -> Response:
        job, _, _ = await _visible_job(job_id, session)
        try:
            data = await service.image(job)
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

    @app.post("/jobs/{job_id}/verdict")
    async def verdict_form(
        job_id: str,
        session: Posted,
        verdict: Annotated[Verdict, Form()],
        note: Annotated[str, Form(max_length=2000)] = "",
        labels: Annotated[list[str] | None, Form()] = None,
        add_to_bank: Annotated[str, Form()] = "",
    ) -> Response:
        job = await _held_job(job_id, session)
        try:
            # An unticked box is not sent: no labels at all is an empty list, not a missing field.
            given = VerdictInput(
                verdict=verdict, note=note or None, labels=labels or [], add_to_bank=add_to_bank or None
            )
            await service.submit(job_id, session.user, given)
        except LeaseLost:
            return RedirectResponse("/?notice=lost", status_code=303)
        except ValidationError as exc:
            raise HTTPException(422, exc.errors()[0]["msg"]) from exc
        except (UnknownLabels, CannotBank) as exc:
            raise HTTPException(422, str(exc)) from exc
        return await _next_job(job.queue, session.user, empty="done")

    @app.post("/jobs/{job_id}/skip")
    async def skip_form(job_id: str, session: Posted) -> Response:
        job = await _held_job(job_id, session)
        # Claim the next job before giving this one back, so a skip never returns it.
        following = await service.claim_next(job.queue, session.user)
        await service.skip(job_id, session.user)
        if following is None:
            return RedirectResponse("/?notice=empty", status_code=303)
        return RedirectResponse(f"/jobs/{following[0].job_id}", status_code=303)

    async def _next_job(queue: str, reviewer: str, *, empty: str) -> Response:
        claimed = await service.claim_next(queue, reviewer)
        if claimed is None:
            return RedirectResponse(f"/?notice={empty}", status_code=303)
        return RedirectResponse(f"/jobs/{claimed[0].job_id}", status_code=303)

    async def _visible(job_id: str, session: Session) -> tuple[ReviewJob, Lease | None, str]:
        """The job, its lease and status, if this user may see it: its lease holder, or any admin."""
        found = await service.job(job_id)
        if found is None:
            raise HTTPException(404, "no such job")
        lease = found[1]
        if (lease.reviewer if lease else None) != session.user and session.role != "admin":
            raise HTTPException(403, "this job is not leased to you")
        return found

    async def _visible_job(job_id: str, session: Session) -> tuple[ReviewJob, str | None, str]:
        job, lease, status = await _visible(job_id, session)
        return job, lease.reviewer if lease else None, status

    async def _held_job(job_id: str, session: Session) -> ReviewJob:
        job, holder, _ = await _visible_job(job_id, session)
        if holder != session.user:
            raise HTTPException(403, "this job is not leased to you")
        return job

    # --- settings and admin --------------------------------------------------------

    @app.get("/settings")
    async def settings_page(request: Request, session: Page) -> Response:
        return render(
            request, "settings.html", session, levels=list(BLUR_LEVELS), blur=await sessions.blur(session.user)
        )

    @app.post("/settings")
    async def save_settings(session: Posted, blur: Annotated[str, Form()]) -> Response:
        if blur not in BLUR_LEVELS:
            raise HTTPException(422, f"blur must be one of {', '.join(BLUR_LEVELS)}")
        await sessions.set_blur(session.user, blur)
        await service.audit(session.user, "settings", blur=blur)
        return RedirectResponse("/settings?notice=saved", status_code=303)

    @app.get("/admin/audit")
    async def audit_page(request: Request, session: Admin, actor: str = "", action: str = "") -> Response:
        entries = await service.audit_entries(actor=actor or None, action=action or None, limit=500)
        return render(request, "audit.html", session, entries=entries, actor=actor, action=action)

    @app.get("/admin/stats")
    async def stats_page(request: Request, session: Admin) -> Response:
        hours = await service.hourly_counts(24)
        depth = await service.depth_history(24)
        peak = max([h.automatic + h.human for h in hours] + [1])
        return render(request, "stats.html", session, hours=hours, depth=depth, peak=peak)

    @app.get("/admin/sessions")
    async def sessions_page(request: Request, session: Admin, user: str = "") -> Response:
        listed = await sessions.listing(user or None)
        return render(request, "sessions.html", session, listed=listed, user=user)

    @app.post("/admin/sessions/{session_id}/revoke")
    async def revoke_session(session_id: str, session: AdminPosted) -> Response:
        ended = await sessions.revoke(session_id)
        if ended is None:
            return RedirectResponse("/admin/sessions?notice=gone", status_code=303)
        await service.audit(
            session.user, "session_revoked", user=ended.user, session=ended.id[:12], address=ended.address
        )
        return RedirectResponse("/admin/sessions?notice=revoked", status_code=303)

    @app.post("/admin/sessions/revoke-user")
    async def revoke_user_sessions(session: AdminPosted, user: Annotated[str, Form()]) -> Response:
        for ended in await sessions.revoke_user(user):
            await service.audit(
                session.user, "session_revoked", user=ended.user, session=ended.id[:12], address=ended.address
            )
        return RedirectResponse("/admin/sessions?notice=revoked", status_code=303)

    @app.get("/admin/labels")
    async def labels_page(request: Request, session: Admin) -> Response:
        return render(request, "labels.html", session, labels=await service.labels.all())

    @app.post("/admin/labels")
    async def define_label(
        request: Request,
        session: AdminPosted,
        name: Annotated[str, Form()] = "",  # missing: refused below with the reason
        description: Annotated[str, Form()] = "",
    ) -> Response:
        try:
            await service.define_label(name.strip(), description, session.user)
        except LabelError as exc:
            labels = await service.labels.all()
            return render(
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

    def serve_admin_page(page: AdminPage) -> None:
        async def admin_page(request: Request, session: Admin) -> Response:
            return render(request, page.template, session, **await page.context(request.query_params))

        app.add_api_route(f"/admin/{page.path}", admin_page, methods=["GET"])

    for page in admin_pages:
        serve_admin_page(page)

    # --- JSON API (bearer tokens) --------------------------------------------------

    @app.get("/api/queues")
    async def api_queues(session: Api) -> list[dict[str, Any]]:
        return [q.model_dump() for q in await service.queue_stats()]

    @app.post("/api/queues/{queue}/claim")
    async def api_claim(queue: str, session: Api) -> Response:
        claimed = await service.claim_next(queue, session.user)
        if claimed is None:
            return Response(status_code=204)
        job, lease = claimed
        return JSONResponse(await _job_document(job, lease, "leased"))

    @app.get("/api/jobs/{job_id}")
    async def api_job(job_id: str, session: Api) -> dict[str, Any]:
        """A job its caller holds (or any job, for an admin), with the labels a verdict may name."""
        return await _job_document(*await _visible(job_id, session))

    async def _job_document(job: ReviewJob, lease: Lease | None, status: str) -> dict[str, Any]:
        return {
            "job": job.model_dump(mode="json"),
            "lease": lease.model_dump(mode="json") if lease else None,
            "status": status,
            "labels_offered": list(await service.offered_labels(job)),
        }

    @app.post("/api/jobs/{job_id}/verdict")
    async def api_verdict(job_id: str, body: VerdictInput, session: Api) -> ModerationDecision | ReviewVerdict:
        """The final decision the verdict published; for a second review, which decides nothing, the verdict."""
        await _held_job(job_id, session)
        try:
            return await service.submit(job_id, session.user, body)
        except LeaseLost as exc:
            raise HTTPException(409, str(exc)) from exc
        except (UnknownLabels, CannotBank) as exc:
            raise HTTPException(422, str(exc)) from exc

    @app.post("/api/jobs/{job_id}/skip")
    async def api_skip(job_id: str, session: Api) -> dict[str, bool]:
        await _held_job(job_id, session)
        return {"released": await service.skip(job_id, session.user)}

    for extension in extensions:
        app.include_router(extension.router(api_user))

    return app


def _admin(session: Session) -> Session:
    if session.role != "admin":
        raise HTTPException(403, "admins only")
    return session


def _same_token(given: str, expected: str) -> bool:
    # Bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 403).
    return hmac.compare_digest(given.encode(), expected.encode())


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


def _same_origin(request: Request) -> bool:
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
