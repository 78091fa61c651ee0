"""The dashboard's Quality page, for admins: per label and model version the numbers of
``modstream quality report`` (precision, recall and F1 at both thresholds), the weighted
precision-recall curve with the thresholds in force, each tenant's drift over the last
windows, and how much reviewers agree and how often they are right on gold items (a label
whose reviewers are unreliable gets a warning beside its precision and recall: those rest on
their verdicts).

The dashboard serves it without knowing this room: ``cli/dashboard.py`` hands it over, and
it fits the dashboard's ``AdminPage`` by shape. The archive is read with DuckDB in a worker
thread, so the dashboard goes on serving meanwhile; an answer is kept for a minute per
filter set, as an admin moving between pages would otherwise read the same files again.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import redis.asyncio as aioredis
import redis.exceptions

from modstream.core.evidence import Period, Sample
from modstream.core.gold import Tally, by_label, by_reviewer
from modstream.core.review_rules import GoldRules
from modstream.core.settings import Settings
from modstream.core.stats import pr_curve
from modstream.quality import charts
from modstream.quality.agreement import AgreementReport
from modstream.quality.archived import measure
from modstream.quality.drift import window_of
from modstream.quality.drift_monitor import RECENT_WINDOWS, DriftMonitor
from modstream.quality.report import LabelQuality, QualityReport
from modstream.quality.sample import stratum_weights

DEFAULT_DAYS = 30
MAX_DAYS = 366
log = logging.getLogger("modstream.quality")
KEPT_SECONDS = 60.0
DRIFT_WINDOWS = RECENT_WINDOWS


@dataclass(frozen=True)
class Filters:
    tenant: str | None = None
    model_version: str | None = None
    days: int = DEFAULT_DAYS


def filters_from(query: Mapping[str, str]) -> tuple[Filters, list[str]]:
    """The filters the query string asks for, and what in it could not be used (the
    default stands in for it)."""
    problems, days = [], DEFAULT_DAYS
    asked = query.get("days", "").strip()
    if asked:
        try:
            days = int(asked)
        except ValueError:
            days = 0
        if not 1 <= days <= MAX_DAYS:
            problems.append(f"Days back must be a whole number from 1 to {MAX_DAYS}; showing {DEFAULT_DAYS}.")
            days = DEFAULT_DAYS
    tenant, version = (query.get(name, "").strip() or None for name in ("tenant", "model_version"))
    return Filters(tenant=tenant, model_version=version, days=days), problems


@dataclass(frozen=True)
class LabelSection:
    """One row of the report with its charts."""

    quality: LabelQuality
    pr_chart: str | None
    """None when no reviewer gave the label: recall, and so the curve, is undefined."""
    drift: list[tuple[str, str]]
    """(tenant, chart) for each tenant with drift tallies of this label and model version."""


@dataclass(frozen=True)
class Archived:
    """What the archive says for one filter set."""

    decisions: int
    report: QualityReport
    pr_charts: list[str | None]
    """One per ``report.labels`` row."""
    agreement: AgreementReport
    set_aside: dict[str, int]
    """Verdicts kept out of the estimates, by reason (``core.evidence``)."""


class QualityPage:
    path = "quality"
    title = "Quality"
    templates = Path(__file__).parent / "templates"
    template = "quality.html"

    def __init__(
        self,
        settings: Settings,
        gold: Callable[[], Awaitable[list[Tally]]] | None = None,
        gold_rules: Callable[[], GoldRules] = GoldRules,
    ) -> None:
        """``gold``: the tallies of reviewers' answers on gold items (the review room's, handed in
        by the composer), judged against the threshold ``gold_rules`` says (the policies' live view)."""
        self.settings = settings
        self.gold = gold
        self.gold_rules = gold_rules
        self.drift = DriftMonitor(aioredis.Redis.from_url(settings.redis_url), settings)
        self._kept: dict[Filters, tuple[float, dict[str, Any]]] = {}

    async def context(self, query: Mapping[str, str]) -> dict[str, Any]:
        filters, problems = filters_from(query)
        now = time.monotonic()
        self._kept = {f: kept for f, kept in self._kept.items() if kept[0] > now}
        if filters not in self._kept:
            try:
                self._kept[filters] = (now + KEPT_SECONDS, await self._read(filters))
            except (OSError, duckdb.Error, redis.exceptions.RedisError) as exc:
                # The page says what is down instead of failing; nothing is kept, the next load tries again.
                log.warning("quality page: the archive or Redis cannot be read", extra={"error": repr(exc)[:300]})
                unavailable = f"The archive (s3://{self.settings.archive_bucket}) or Redis cannot be read now: {exc}"
                empty = {"filters": filters, "since": datetime.now(UTC) - timedelta(days=filters.days)}
                return empty | {
                    "bucket": self.settings.archive_bucket,
                    "decisions": 0,
                    "agreement": AgreementReport(pairs=0),
                    "problems": [*problems, unavailable],
                }
        return {**self._kept[filters][1], **await self._gold(filters), "problems": problems}

    async def _gold(self, filters: Filters) -> dict[str, Any]:
        """Read at each load (a Redis hash): reviewers' accuracy on gold per label, pooled and each."""
        tallies = await self.gold() if self.gold is not None else []
        return {
            "gold_by_label": by_label(tallies, filters.tenant),
            "gold_by_reviewer": by_reviewer(tallies, filters.tenant),
            "gold_rules": self.gold_rules(),
        }

    async def _read(self, filters: Filters) -> dict[str, Any]:
        since = datetime.now(UTC) - timedelta(days=filters.days)
        period = Period(tenant=filters.tenant, model_version=filters.model_version, since=since)
        archived = await asyncio.to_thread(read_archive, self.settings, period)
        drift = await self._drift_charts(filters)
        sections = [
            LabelSection(row, chart, drift.get((row.label, row.model_version), []))
            for row, chart in zip(archived.report.labels, archived.pr_charts, strict=True)
        ]
        return {
            "filters": filters,
            "since": since,
            "bucket": self.settings.archive_bucket,
            "decisions": archived.decisions,
            "slices": archived.report.slices,
            "sections": sections,
            "agreement": archived.agreement,
            "set_aside": archived.set_aside,
        }

    async def _drift_charts(self, filters: Filters) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """(label, model version) -> (tenant, chart of PSI per window) for each tenant."""
        monitor = self.drift
        last = window_of(datetime.now(UTC), monitor.window_seconds)
        found: defaultdict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for series in await monitor.store.series():
            if filters.tenant not in (None, series.tenant) or filters.model_version not in (None, series.model_version):
                continue
            history = await monitor.history(series, last, DRIFT_WINDOWS)
            points = [(datetime.fromtimestamp(w * monitor.window_seconds, UTC), d.psi) for w, d in history]
            title = f"Drift of {series.label} for {series.tenant}, model {series.model_version}: PSI per window"
            chart = charts.drift_chart(points, warn=monitor.rule.calm, alert=monitor.rule.alert, title=title)
            found[(series.label, series.model_version)].append((series.tenant, chart))
        return found


def read_archive(settings: Settings, period: Period) -> Archived:
    """The report, curves and agreement of ``modstream quality report`` for ``period``
    (blocking: DuckDB over the archive, then the arithmetic)."""
    measured = measure(settings, period)
    return Archived(
        decisions=len(measured.sample),
        report=measured.report,
        pr_charts=[_pr_chart(measured.sample, row) for row in measured.report.labels],
        agreement=measured.reviewers,
        set_aside={reason: n for reason, n in measured.sample.set_aside.items() if n},
    )


def _pr_chart(sample: Sample, row: LabelQuality) -> str | None:
    """The curve over the decisions the row's numbers come from, weighted the same way."""
    keep = sample.model_version == row.model_version
    if row.tenant is not None:
        keep &= sample.tenant == row.tenant
    part = sample.where(keep)
    weights, _ = stratum_weights(part)
    columns = part.labels[row.label]
    scored = part.labelled & ~np.isnan(columns.score)
    if not columns.truth[scored].any():
        return None
    curve = pr_curve(columns.score[scored], columns.truth[scored], weights[scored])
    title = f"{row.label}, model {row.model_version}: precision against recall"
    return charts.pr_chart(curve, row.at_review.threshold, row.at_block.threshold, title=title)
