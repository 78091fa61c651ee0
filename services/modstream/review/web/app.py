"""The reviewer dashboard: FastAPI routers over the review service, one per concern, composed
by ``create_app``.

``access`` says who is asking (a session for pages, a bearer token for the JSON API, a CSRF
token on every form post); ``login`` signs in and out; ``jobs`` is reviewing in the browser,
``exposure`` what reviewers were shown (the page's reports, the admins' view and override),
``gold`` the gold items (marking, the reviewers' accuracy on them),
``preferences`` a reviewer's own settings, ``admin`` the admins' pages, ``api`` the JSON API,
``health`` the feeds' state. They share one typed object (``shared.Dashboard``) and render
through ``pages``. Every response carries the security headers of ``headers.py``. Other rooms
add admin pages (``admin_pages.AdminPage``, such as the quality room's), pages for every
signed-in user (``admin_pages.ReaderPage``, such as the models room's cards; ``reader_pages``)
and routes behind the API's bearer tokens (``extensions.DashboardExtension``, such as the bank
room's HMA API), handed in by the composer (``cli/dashboard.py``).
"""

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp

from modstream.review.service import ReviewService
from modstream.review.web import admin, api, exposure, gold, health, jobs, login, preferences
from modstream.review.web.access import LoginRequired, api_user, to_login
from modstream.review.web.admin_pages import AdminPage, ReaderPage
from modstream.review.web.extensions import DashboardExtension
from modstream.review.web.headers import SecurityHeaders
from modstream.review.web.pages import Pages
from modstream.review.web.reader_pages import reader_pages as reader_router
from modstream.review.web.saliency import ExplainMaps
from modstream.review.web.saliency import router as saliency_router
from modstream.review.web.shared import dashboard_of

HERE = Path(__file__).parent


class DashboardApp(FastAPI):
    """FastAPI with the security headers outside every other layer, so that even Starlette's
    own plain 500 answer carries them."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def create_app(
    service: ReviewService,
    users_file: Path,
    *,
    run_feeds: bool = True,
    redis_prefix: str = "dashboard:",
    admin_pages: Sequence[AdminPage] = (),
    reader_pages: Sequence[ReaderPage] = (),
    extensions: Sequence[DashboardExtension] = (),
    explain: ExplainMaps | None = None,
) -> FastAPI:
    """The dashboard; ``redis_prefix`` namespaces its sessions, settings and sign-in counts;
    ``extensions`` start and stop with it and serve their routes behind its API tokens;
    ``explain`` makes a job's occlusion maps for the review page (none: the page offers none)."""
    lifespan = _lifespan(service, extensions, run_feeds=run_feeds)
    app = DashboardApp(title="modstream review", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    pages = Pages(HERE / "templates", admin_pages, reader_pages)
    app.state.dashboard = dashboard_of(service, users_file, pages, redis_prefix)
    app.state.explain = explain
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(LoginRequired, to_login)
    routers = (health.router, login.router, jobs.router, exposure.router, gold.router, preferences.router, admin.router)
    for router in routers:
        app.include_router(router)
    app.include_router(admin.added_pages(admin_pages))
    app.include_router(reader_router(reader_pages))
    app.include_router(saliency_router)
    app.include_router(api.router)
    for extension in extensions:
        app.include_router(extension.router(api_user))
    return app


def _lifespan(
    service: ReviewService, extensions: Sequence[DashboardExtension], *, run_feeds: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """The review service, then the extensions, then (with ``run_feeds``) the review feeds;
    stopped in the reverse order."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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

    return lifespan
