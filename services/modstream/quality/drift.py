"""Drift of label scores and decision rates, window by window. Pure: no I/O.

Automatic decisions are tallied per tenant, label, model version and time window (by when
they happened): a fixed-bin score histogram (``stats.BINS``) and how many reached the
label's ``review_at`` and ``block_at``. Tallies are counts, so a window is the sum of its
parts whichever process saw them. Each window is compared with a reference: the first
windows a model version served for the tenant, or a pinned period.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from modstream.core import stats
from modstream.core.events import ModerationDecision, Outcome
from modstream.quality import metrics

Counts = npt.NDArray[np.int64]
# bins..., decisions, reached review_at, reached block_at
SLOTS = stats.BINS + 3
DECISIONS, REVIEW, BLOCK = stats.BINS, stats.BINS + 1, stats.BINS + 2


@dataclass(frozen=True)
class Series:
    """One tenant's scores of one label under one model version."""

    tenant: str
    label: str
    model_version: str


@dataclass(frozen=True)
class Reference:
    """Which windows make the reference: the first ``windows`` of each series, or every
    window starting in [since, until) when a period is pinned."""

    windows: int
    since: datetime | None = None
    until: datetime | None = None

    def holds(self, window: int, first_window: int, window_seconds: float) -> bool:
        if self.since is not None and self.until is not None:
            start = window * window_seconds
            return self.since.timestamp() <= start < self.until.timestamp()
        return first_window <= window < first_window + self.windows

    def complete(self, window: int, first_window: int, window_seconds: float) -> bool:
        """Whether ``window`` comes after the whole reference (only then is it compared)."""
        if self.since is not None and self.until is not None:
            return window * window_seconds >= self.until.timestamp()
        return window >= first_window + self.windows


@dataclass(frozen=True)
class Drift:
    psi: float
    js: float
    review_rate_change: float
    block_rate_change: float
    decisions: int


@dataclass
class Tally:
    """Counts per series and window, from a batch of decisions."""

    counts: dict[tuple[Series, int], Counts] = field(default_factory=dict)

    def add(self, decision: ModerationDecision, window_seconds: float) -> None:
        if decision.source != "automatic" or decision.decision is Outcome.ERROR or decision.model is None:
            return
        window = window_of(decision.occurred_at, window_seconds)
        for label, thresholds in decision.thresholds.items():
            score = decision.scores.get(label)
            if score is None or not 0.0 <= score <= 1.0:
                continue
            series = Series(decision.tenant, label, decision.model.version)
            slots = self.counts.setdefault((series, window), np.zeros(SLOTS, dtype=np.int64))
            slots[min(int(score * stats.BINS), stats.BINS - 1)] += 1
            slots[DECISIONS] += 1
            slots[REVIEW] += score >= thresholds.review_at
            slots[BLOCK] += score >= thresholds.block_at


def tally(decisions: Iterable[ModerationDecision], window_seconds: float) -> Tally:
    counted = Tally()
    for decision in decisions:
        counted.add(decision, window_seconds)
    return counted


def window_of(moment: datetime, window_seconds: float) -> int:
    return int(moment.timestamp() // window_seconds)


def drift(reference: Counts, current: Counts) -> Drift:
    """The current window against the reference: PSI and Jensen-Shannon of the score
    histograms, and the change in the share of decisions reaching each threshold."""
    bins = slice(0, stats.BINS)
    return Drift(
        psi=metrics.psi(reference[bins], current[bins]),
        js=metrics.jensen_shannon(reference[bins], current[bins]),
        review_rate_change=_share(current, REVIEW) - _share(reference, REVIEW),
        block_rate_change=_share(current, BLOCK) - _share(reference, BLOCK),
        decisions=int(current[DECISIONS]),
    )


def _share(counts: Counts, slot: int) -> float:
    return float(counts[slot] / counts[DECISIONS]) if counts[DECISIONS] else 0.0


@dataclass(frozen=True)
class AuditRule:
    """While a label of a tenant drifts (PSI at or over ``alert``), the tenant's audit sample
    rate rises to ``rate`` (the policy's own rate still applies when it is higher), so the
    quality estimates keep up; it falls back once PSI is under ``calm``. Between the two it
    stays as it is, so it does not flap at the edge."""

    alert: float = 0.2
    calm: float = 0.1
    rate: float = 0.1

    def raised_after(self, psi: float, raised: bool) -> bool:
        """Whether the rate is raised after a window with this PSI."""
        if psi >= self.alert:
            return True
        if psi < self.calm:
            return False
        return raised
