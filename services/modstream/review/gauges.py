"""Review queue depth and age as metrics gauges.

Gauges are read at scrape time, on the metrics server's thread, which must not wait for
Redis; so the feeds refresh a snapshot in the event loop and the gauges read that.
"""

from collections.abc import Callable, Iterable

from modstream.core.gold import VERDICT, Tally, by_reviewer
from modstream.core.metrics import observe_gauge
from modstream.core.review_rules import GoldRules
from modstream.review.jobs import QueueStats

REFRESH_SECONDS = 5.0
_latest: list[QueueStats] = []
_overdue: dict[str, int] = {}  # tenant -> open appeals past their due date
# (tenant, reviewer) -> share of right verdicts on gold items, and whether it is under the tenant's threshold
_gold: dict[tuple[str, str], tuple[float, bool]] = {}


def remember(stats: list[QueueStats], overdue_appeals: dict[str, int] | None = None) -> None:
    global _latest, _overdue
    _latest = stats
    if overdue_appeals is not None:
        _overdue = overdue_appeals


def remember_gold(tallies: list[Tally], rules_of: Callable[[str], GoldRules]) -> None:
    """Each reviewer's verdict accuracy on each tenant's gold items, against that tenant's threshold."""
    global _gold
    found = {}
    for tenant in sorted({t.tenant for t in tallies}):
        rules = rules_of(tenant)
        for accuracy in by_reviewer(tallies, tenant):
            if accuracy.label == VERDICT:
                below = accuracy.below(rules.min_accuracy, rules.min_answers)
                found[(tenant, accuracy.name)] = (accuracy.share, below)
    _gold = found


def _gold_readings(below: bool) -> Iterable[tuple[float, dict[str, str]]]:
    return [
        (float(under) if below else share, {"tenant": tenant, "reviewer": reviewer})
        for (tenant, reviewer), (share, under) in _gold.items()
    ]


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
    "modstream.review.gold_accuracy",
    "1",
    "A reviewer's share of right verdicts on a tenant's gold items",
    lambda: _gold_readings(below=False),
)
observe_gauge(
    "modstream.review.gold_below_threshold",
    "1",
    "1 when a reviewer's gold accuracy is under the tenant's min_accuracy over at least min_answers items",
    lambda: _gold_readings(below=True),
)
observe_gauge(
    "modstream.appeals.overdue", "{appeal}", "Open appeals past their due date, by tenant", lambda: _overdue_readings()
)


def _overdue_readings() -> Iterable[tuple[float, dict[str, str]]]:
    return [(count, {"tenant": tenant}) for tenant, count in _overdue.items()]
