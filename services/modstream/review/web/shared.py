"""What every route of the dashboard shares, as one typed object: ``create_app`` builds it
and puts it on the app, and routes ask for it as ``Shared``."""

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from modstream.review.service import ReviewService
from modstream.review.web.pages import Pages
from modstream.review.web.sessions import Sessions
from modstream.review.web.throttle import LoginLimits, LoginThrottle
from modstream.review.web.users import hash_secret


@dataclass(frozen=True)
class Dashboard:
    service: ReviewService
    users_file: Path
    """Who may sign in, and their API tokens (read at each use: edits apply at once)."""
    pages: Pages
    sessions: Sessions
    throttle: LoginThrottle
    decoy_hash: str
    """Checked when the name is unknown, so that a wrong name takes as long as a wrong password."""


def dashboard_of(service: ReviewService, users_file: Path, pages: Pages, redis_prefix: str) -> Dashboard:
    """``redis_prefix`` namespaces its sessions, settings and sign-in counts."""
    settings = service.settings
    limits = LoginLimits(
        per_user=settings.dashboard_login_failures_per_user,
        per_address=settings.dashboard_login_failures_per_address,
        window_seconds=settings.dashboard_login_window_seconds,
    )
    return Dashboard(
        service=service,
        users_file=users_file,
        pages=pages,
        sessions=Sessions(service.redis, redis_prefix),
        throttle=LoginThrottle(service.redis, limits, redis_prefix),
        decoy_hash=hash_secret(secrets.token_urlsafe(16)),
    )


def _dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


Shared = Annotated[Dashboard, Depends(_dashboard)]
