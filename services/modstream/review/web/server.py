"""Serve the dashboard (and the review feeds) with uvicorn, on loopback by default."""

from pathlib import Path

import uvicorn

from modstream.core.metrics import serve_metrics
from modstream.core.settings import Settings
from modstream.core.tracing import configure_tracing
from modstream.review.service import ReviewService
from modstream.review.web.app import create_app


def users_file(settings: Settings) -> Path:
    return settings.dashboard_users_file or settings.state_dir / "dashboard-users.toml"


def run_dashboard(settings: Settings, port: int | None = None) -> None:
    configure_tracing("modstream-dashboard", settings.trace_exporter)
    if settings.dashboard_metrics_port:
        serve_metrics("modstream-dashboard", settings.bind_host, settings.dashboard_metrics_port)
    app = create_app(ReviewService(settings), users_file(settings))
    host = settings.bind_host
    uvicorn.run(app, host=host, port=port or settings.dashboard_port, log_level="warning", access_log=False)
