"""Threshold advice for one label, and a backtest of it over the archived scores. Pure.

Advice comes from the weighted labelled sample: ``block_at`` is the lowest threshold whose
precision is at least the target with 95 % confidence, ``review_at`` the highest that still
keeps recall at its target. The backtest re-decides every archived decision of the period
twice with the real policy engine (handed in by the caller): under the policy in force
and under the proposal, and counts how outcomes move.

A label the policy does not trigger on yet (under ``ignore``, or a new one the model scores)
has no thresholds in force: both come from the targets, a recall target is needed for
``review_at``, and without a ``block_at`` that reaches the precision target it gets 1.0 (only
a score of 1.0 blocks), as the policies write "never blocks on its own".
"""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from modstream.core import stats
from modstream.core.events import Thresholds
from modstream.core.evidence import Bools, Floats, Sample
from modstream.core.stats import Rate
from modstream.quality import metrics
from modstream.quality.sample import stratum_weights

# Scores -> outcome ("allow" | "review" | "block") under one policy.
Decide = Callable[[dict[str, float]], str]


class NoAdvice(ValueError):
    """The labelled sample cannot support advice (no positives, or none scored)."""


@dataclass(frozen=True)
class Estimate:
    """Weighted precision and recall of one label at one pair of thresholds."""

    precision_at_block: Rate
    recall_at_block: Rate
    precision_at_review: Rate
    recall_at_review: Rate


NEVER_BLOCKS = 1.0
"""``block_at`` for a new label when no threshold reaches the precision target."""


@dataclass(frozen=True)
class Advice:
    label: str
    current: Thresholds | None
    """None: the policy does not trigger on the label yet."""
    proposed: Thresholds
    notes: list[str]
    before: Estimate | None
    """None with ``current``."""
    after: Estimate
    labelled: int
    positives: int


@dataclass(frozen=True)
class Backtest:
    decisions: int
    days: float
    moves: dict[tuple[str, str], int]
    """(outcome under the policy in force, outcome under the proposal) -> decisions."""

    @property
    def changed(self) -> int:
        return sum(n for (before, after), n in self.moves.items() if before != after)

    def per_day(self, outcome: str, *, proposed: bool) -> float:
        side = 1 if proposed else 0
        total = sum(n for move, n in self.moves.items() if move[side] == outcome)
        return total / self.days if self.days else float(total)


def advise(
    sample: Sample,
    label: str,
    current: Thresholds | None,
    target_precision: float,
    target_recall: float | None = None,
) -> Advice:
    """Thresholds for ``label`` from the sample; ``current`` None for a label the policy does
    not trigger on yet (then ``target_recall`` is required). NoAdvice when the sample cannot
    tell: no such label, no labelled decision scoring it, no reviewer giving it."""
    if current is None and target_recall is None:
        raise NoAdvice(f"{label!r} has no review_at in force to keep: a recall target is needed to set one")
    if label not in sample.labels:
        raise NoAdvice(f"no decision of the period has a threshold for {label!r}")
    weights, gaps = stratum_weights(sample)
    columns = sample.labels[label]
    scored = sample.labelled & ~np.isnan(columns.score)
    score, truth, w = columns.score[scored], columns.truth[scored], weights[scored]
    if current is None and not scored.any():
        raise NoAdvice(
            f"no verdict on a decision that scores {label!r} in the period "
            f"({int(sample.labelled.sum())} labelled decisions, none scoring it)"
        )
    if not truth.any():
        raise NoAdvice(f"no reviewer gave {label!r} in the period ({int(scored.sum())} labelled decisions)")
    curve = stats.pr_curve(score, truth, w)
    notes = [f"not covered by any verdict: {g.decisions} {g.outcome} decisions of {g.tenant}" for g in gaps]
    block_at = metrics.lowest_threshold_for_precision(curve, target_precision)
    if block_at is None:
        if current is None:
            notes.append(
                f"no threshold reaches precision {target_precision} with 95 % confidence: "
                f"block_at {NEVER_BLOCKS} (only a score of {NEVER_BLOCKS} blocks)"
            )
            block_at = NEVER_BLOCKS
        else:
            notes.append(f"no threshold reaches precision {target_precision} with 95 % confidence: block_at kept")
            block_at = current.block_at
    review_at = block_at if current is None else current.review_at
    if target_recall is not None:
        found = metrics.highest_threshold_for_recall(curve, target_recall)
        if found is None:
            kept = "set to block_at" if current is None else "kept"
            notes.append(f"no threshold keeps recall at {target_recall}: review_at {kept}")
        else:
            review_at = found
    if review_at > block_at:
        notes.append(f"review_at {review_at:.4f} would be above block_at: set to block_at")
        review_at = block_at
    # Not rounded: the thresholds are scores of the sample, and a rounded one lets in (or
    # out) the very decisions that decided it.
    proposed = Thresholds(review_at=review_at, block_at=block_at)
    return Advice(
        label=label,
        current=current,
        proposed=proposed,
        notes=notes,
        before=None if current is None else _estimate(score, truth, w, current),
        after=_estimate(score, truth, w, proposed),
        labelled=int(scored.sum()),
        positives=int(truth.sum()),
    )


def _estimate(score: Floats, truth: Bools, w: Floats, at: Thresholds) -> Estimate:
    blocked, reviewed = score >= at.block_at, score >= at.review_at
    return Estimate(
        precision_at_block=stats.precision(truth, blocked, w),
        recall_at_block=stats.recall(truth, blocked, w),
        precision_at_review=stats.precision(truth, reviewed, w),
        recall_at_review=stats.recall(truth, reviewed, w),
    )


def backtest(scores: Sequence[dict[str, float]], days: float, in_force: Decide, proposal: Decide) -> Backtest:
    """Every decision's scores decided under both policies."""
    moves = Counter((in_force(s), proposal(s)) for s in scores)
    return Backtest(decisions=len(scores), days=days, moves=dict(moves))
