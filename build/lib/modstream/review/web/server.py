"""Serve the dashboard (and the review feeds) with uvicorn, on loopback by default."""

from pathlib import Path

import uvicorn

from modstream.core.settings import Settings
from modstream.review.service import ReviewService
from modstream.review.web.app import create_app


def users_file(settings: Settings) -> Path:
    return settings.dashboard_users_file or settings.state_dir / "dashboard-users.toml"


def run_dashboard(settings: Settings, host: str = "127.0.0.1", port: int | None = None) -> None:
    app = create_app(ReviewService(settings), users_file(settings))
    uvicorn.run(app, host=host, port=port or settings.dashboard_port, log_level="warning", access_log=False)
