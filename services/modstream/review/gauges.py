"""Review queue depth and age as metrics gauges.

Gauges are read at scrape time, on the metrics server's thread, which must not wait for
Redis; so the feeds refresh a snapshot in the event loop and the gauges read that.
"""

from collections.abc import Iterable

from modstream.core.metrics import observe_gauge
from modstream.review.jobs import QueueStats

REFRESH_SECONDS = 5.0
_latest: list[QueueStats] = []
_overdue: dict[str, int] = {}  # tenant -> open appeals past their due date


def remember(stats: list[QueueStats], overdue_appeals: dict[str, int] | None = None) -> None:
    global _latest, _overdue
    _latest = stats
    if overdue_appeals is not None:
        _overdue = overdue_appeals


def _pending() -> Iterable[tuple[float, dict[str, str]]]:
    return [(s.pending, {"queue": s.name}) for s in _latest]


def _in_review() -> Iterable[tuple[float, dict[str, str]]]:
    return [(s.in_review, {"queue": s.name}) for s in _latest]


def _past_due() -> Iterable[tuple[float, dict[str, str]]]:
    return [(s.past_due, {"queue": s.name}) for s in _latest]


def _oldest_age() -> Iterable[tuple[float, dict[str, str]]]:
    return [(s.oldest_age_seconds or 0.0, {"queue": s.name}) for s in _latest]


observe_gauge("modstream.review.queue.pending", "{job}", "Jobs waiting in a review queue", _pending)
observe_gauge("modstream.review.queue.in_review", "{job}", "Jobs a reviewer holds now", _in_review)
observe_gauge("modstream.review.queue.oldest_age", "s", "Age of the oldest waiting job (0: none)", _oldest_age)
observe_gauge("modstream.review.queue.past_due", "{job}", "Waiting jobs past their due date", _past_due)
observe_gauge(
    "modstream.appeals.overdue", "{appeal}", "Open appeals past their due date, by tenant", lambda: _overdue_readings()
)


def _overdue_readings() -> Iterable[tuple[float, dict[str, str]]]:
    return [(count, {"tenant": tenant}) for tenant, count in _overdue.items()]
