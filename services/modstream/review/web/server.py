"""Serve the dashboard (and the review feeds) with uvicorn, on loopback by default."""

import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

import uvicorn

from modstream.core.appeals import AppealRules
from modstream.core.logs import configure_logging
from modstream.core.metrics import serve_metrics
from modstream.core.review_rules import RulesByTenant
from modstream.core.settings import Settings
from modstream.core.tracing import configure_tracing
from modstream.review.service import ReviewService
from modstream.review.web.admin_pages import AdminPage, ReaderPage
from modstream.review.web.app import create_app
from modstream.review.web.extensions import DashboardExtension
from modstream.review.web.saliency import ExplainMaps

log = logging.getLogger("modstream.dashboard")


def users_file(settings: Settings) -> Path:
    return settings.dashboard_users_file or settings.state_dir / "dashboard-users.toml"


def run_dashboard(
    settings: Settings,
    port: int | None = None,
    admin_pages: Sequence[AdminPage] = (),
    reader_pages: Sequence[ReaderPage] = (),
    extensions: Sequence[DashboardExtension] = (),
    bank_names: Callable[[], Collection[str]] = tuple,
    taxonomy_labels: Callable[[], Collection[str]] = tuple,
    appeal_rules: Callable[[str], AppealRules] = lambda tenant: AppealRules(),
    bank_value: Callable[[str, str], str] = lambda kind, value: value,
    review_rules: RulesByTenant | None = None,
    explain: ExplainMaps | None = None,
) -> None:
    """``bank_names``: the banks a reviewer may add an image to (the bank room's live view);
    ``bank_value``: a signal type's value as banks keep it (the bank room's check of a phrase);
    ``taxonomy_labels``: the labels the models score, which no defined label may take;
    ``appeal_rules``: a tenant's appeals section, ``review_rules`` its review section (the
    policies' live views); ``explain``: a job's occlusion maps (the explain room's)."""
    # JSON lines on stderr (the dashboard's log): ours from info up (the feeds' failures and
    # recoveries), every library's warnings; log_config=None below keeps uvicorn from
    # installing its own plain-text handlers, so its errors come through here too.
    configure_logging(root=True)
    configure_tracing("modstream-dashboard", settings.trace_exporter)
    if settings.dashboard_metrics_port:
        serve_metrics("modstream-dashboard", settings.bind_host, settings.dashboard_metrics_port)
    service = ReviewService(
        settings,
        bank_names=bank_names,
        taxonomy_labels=taxonomy_labels,
        appeal_rules=appeal_rules,
        bank_value=bank_value,
        review_rules=review_rules,
    )
    app = create_app(
        service,
        users_file(settings),
        admin_pages=admin_pages,
        reader_pages=reader_pages,
        extensions=extensions,
        explain=explain,
    )
    host, port = settings.bind_host, port or settings.dashboard_port
    log.info("dashboard starting", extra={"host": host, "port": port, "metrics_port": settings.dashboard_metrics_port})
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, log_config=None)
