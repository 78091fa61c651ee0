"""Gold items, the arithmetic: how a reviewer's verdict on an item of known answer is judged, and
how reliable reviewers are per label, with Wilson intervals. Pure; the review room keeps the
items and the tallies, the quality room shows them beside precision and recall.

A verdict on a gold item is judged per label: for every label the answer names, the reviewer
named, or that triggered the item, the reviewer is right when they and the answer agree on
whether it applies; and on the verdict itself (approve or remove) under the name ``VERDICT``.
"""

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from modstream.core.stats import wilson

VERDICT = "(verdict)"  # approve or remove, judged beside the labels; no label has parentheses


@dataclass(frozen=True)
class GoldAnswer:
    verdict: str  # approve | remove
    labels: frozenset[str]


def judged(answer: GoldAnswer, verdict: str, labels: Collection[str], triggered: Collection[str]) -> dict[str, bool]:
    """Label (and ``VERDICT``) -> whether the reviewer's verdict agrees with the answer."""
    given = set(labels)
    asked = answer.labels | given | set(triggered)
    agreed = {label: (label in given) == (label in answer.labels) for label in asked}
    return {VERDICT: verdict == answer.verdict} | agreed


@dataclass(frozen=True)
class Tally:
    """One reviewer's answers on one tenant's gold items, for one label."""

    reviewer: str
    tenant: str
    label: str
    answers: int
    right: int


@dataclass(frozen=True)
class Accuracy:
    """A share of right answers with its 95 % Wilson interval."""

    name: str  # whose (a reviewer, or a label pooled over reviewers)
    label: str
    answers: int
    right: int
    low: float
    high: float

    @property
    def share(self) -> float:
        return self.right / self.answers if self.answers else 0.0

    def below(self, minimum: float, min_answers: int) -> bool:
        """Enough answers, and fewer right than ``minimum`` of them."""
        return self.answers >= min_answers and self.share < minimum

    def __str__(self) -> str:
        return f"{self.share:.0%} [{self.low:.0%}, {self.high:.0%}] of {self.answers}"


def accuracy(name: str, label: str, answers: int, right: int) -> Accuracy:
    low, high = wilson(right / answers if answers else 0.0, answers)
    return Accuracy(name, label, answers, right, float(low), float(high))


def by_reviewer(tallies: Iterable[Tally], tenant: str | None = None) -> list[Accuracy]:
    """Each reviewer's accuracy per label (over every tenant's items, or ``tenant``'s), by reviewer then label."""
    return _pooled(((t.reviewer, t.label), t) for t in tallies if tenant in (None, t.tenant))


def by_label(tallies: Iterable[Tally], tenant: str | None = None) -> dict[str, Accuracy]:
    """Each label's accuracy pooled over reviewers: how far the people who label it can be trusted."""
    return {a.label: a for a in _pooled((("all reviewers", t.label), t) for t in tallies if tenant in (None, t.tenant))}


def _pooled(keyed: Iterable[tuple[tuple[str, str], Tally]]) -> list[Accuracy]:
    sums: defaultdict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for key, tally in keyed:
        sums[key][0] += tally.answers
        sums[key][1] += tally.right
    return [accuracy(name, label, n, right) for (name, label), (n, right) in sorted(sums.items())]
