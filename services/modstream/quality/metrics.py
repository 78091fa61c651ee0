"""Quality metrics over arrays, scikit-learn style: every metric a small function, no I/O.

The labelled set over-represents the review band (every ``review`` decision reaches a person,
``allow`` and ``block`` only through the audit sample), so rates take per-item ``weights``:
w = N_h / n_h for the item's stratum h (automatic outcome x audit rate in force), which makes
each rate a post-stratified (Hajek) estimate for the whole population. Rates, their intervals
and the precision-recall curve live in ``core.stats``; here are the quality room's own
measures: Hamming loss and outcome agreement as rates, reviewers' agreement (kappa, majority),
the thresholds a precision-recall curve advises, and score drift.
"""

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from modstream.core.stats import (
    MIN_SAMPLE,
    Z_95,
    Floats,
    PRCurve,
    Rate,
    item_weights,
    rate,
    same_length,
)

Reviewer = TypeVar("Reviewer", bound=Hashable)


@dataclass(frozen=True)
class Kappa:
    """Cohen's kappa with its approximate 95 % interval. ``value`` is None below
    ``MIN_SAMPLE`` items, and also when kappa is undefined: both raters gave one same answer
    throughout, so chance agreement is 1 and kappa is 0/0 (scikit-learn returns NaN there)."""

    value: float | None
    low: float | None
    high: float | None
    n: int

    def __str__(self) -> str:
        if self.n < MIN_SAMPLE:
            return f"not enough data (n={self.n})"
        if self.value is None or self.low is None or self.high is None:
            return f"undefined: one same answer throughout (n={self.n})"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] n={self.n}"


def hamming_loss(true_sets: npt.ArrayLike, pred_sets: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> Rate:
    """Share of wrong cells in items x labels boolean label sets; each cell carries its item's
    weight and ``n`` is the effective number of items times the labels. The cells of one item
    are not independent (one image, one reviewer), so the interval is optimistic."""
    truth, predicted = np.asarray(true_sets, dtype=bool), np.asarray(pred_sets, dtype=bool)
    if truth.ndim != 2 or truth.shape != predicted.shape:
        raise ValueError(f"label sets must be items x labels arrays of one shape, not {truth.shape}, {predicted.shape}")
    w = item_weights(weights, truth.shape[0])
    return rate((truth != predicted).ravel(), np.repeat(w, truth.shape[1]))


def agreement(automatic: npt.ArrayLike, human: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> Rate:
    """Share of items where the automatic outcome equals the human one. The caller maps
    verdicts onto outcomes first (approve -> "allow", remove -> "block")."""
    machine, person = same_length(np.asarray(automatic), np.asarray(human))
    return rate(machine == person, weights)


def cohen_kappa(a: npt.ArrayLike, b: npt.ArrayLike) -> Kappa:
    """Cohen's kappa between two raters' answers on the same items (bool or categorical),
    equal to scikit-learn's ``cohen_kappa_score`` wherever that returns a number.

    The interval is kappa +/- 1.96 SE with the large-sample SE of Fleiss, Cohen and Everitt
    (1969), the ASE of SAS's PROC FREQ, clipped to [-1, 1].
    """
    first, second = same_length(np.asarray(a), np.asarray(b))
    n = first.size
    if n < MIN_SAMPLE:
        return Kappa(None, None, None, n)
    categories, codes = np.unique(np.concatenate([first, second]), return_inverse=True)
    if categories.size == 1:
        return Kappa(None, None, None, n)
    table = np.zeros((categories.size, categories.size))
    np.add.at(table, (codes[:n], codes[n:]), 1.0)
    table /= n
    rows, columns = table.sum(axis=1), table.sum(axis=0)
    observed, expected = float(np.trace(table)), float(rows @ columns)
    kappa = (observed - expected) / (1 - expected)
    # Cell (i, j) weighs in with the first rater's share of j plus the second's of i.
    margins = (columns[:, None] + rows[None, :]) ** 2
    diagonal = np.sum(np.diag(table) * (1 - np.sqrt(np.diag(margins)) * (1 - kappa)) ** 2)
    off_diagonal = (1 - kappa) ** 2 * np.sum((table * margins)[~np.eye(categories.size, dtype=bool)])
    variance = (diagonal + off_diagonal - (kappa - expected * (1 - kappa)) ** 2) / (n * (1 - expected) ** 2)
    half = Z_95 * float(np.sqrt(max(variance, 0.0)))
    return Kappa(kappa, max(kappa - half, -1.0), min(kappa + half, 1.0), n)


def majority_agreement(verdicts: Sequence[tuple[Hashable, Reviewer, Hashable]]) -> dict[Reviewer, Rate]:
    """Each reviewer's share of verdicts that equal the majority of the other reviewers' on the
    same item, from (item, reviewer, label value) triples, one per reviewer and item.

    The others' majority is their most common answer; when two answers tie for most common
    there is none and the verdict is skipped, as is a verdict on an item nobody else judged.
    Every reviewer gets a rate (not enough data when few verdicts were compared). Unweighted:
    this describes reviewers, not the population of decisions.
    """
    by_item: defaultdict[Hashable, dict[Reviewer, Hashable]] = defaultdict(dict)
    for item, reviewer, value in verdicts:
        if reviewer in by_item[item]:
            raise ValueError(f"{reviewer!r} gave two verdicts on {item!r}: pass one per reviewer and item")
        by_item[item][reviewer] = value
    compared: dict[Reviewer, list[bool]] = {reviewer: [] for _, reviewer, _ in verdicts}
    for answers in by_item.values():
        for reviewer, value in answers.items():
            agrees = _agrees_with_majority(value, [v for other, v in answers.items() if other != reviewer])
            if agrees is not None:
                compared[reviewer].append(agrees)
    return {reviewer: rate(np.array(hits, dtype=bool)) for reviewer, hits in compared.items()}


def lowest_threshold_for_precision(curve: PRCurve, target: float, min_sample: float = MIN_SAMPLE) -> float | None:
    """The lowest threshold whose precision is at least ``target`` with 95 % confidence (its
    Wilson lower bound reaches it) over at least ``min_sample`` effective predicted positives;
    None when no threshold qualifies. Precision need not rise with the threshold, so a higher
    one may fall short again: this is the one that keeps the most recall."""
    qualifies = (curve.precision_low >= target) & (curve.predicted_n >= min_sample)
    return float(curve.thresholds[np.argmax(qualifies)]) if qualifies.any() else None


def highest_threshold_for_recall(curve: PRCurve, target: float) -> float | None:
    """The highest threshold whose recall (point estimate) is still at least ``target``;
    None when none is."""
    qualifies = curve.recall >= target
    return float(curve.thresholds[qualifies][-1]) if qualifies.any() else None


def psi(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike, epsilon: float = 1e-4) -> float:
    """Population stability index sum (q - p) ln(q / p) over the bins' shares.

    A bin empty on one side would make it infinite, so zero shares are replaced by ``epsilon``
    (not renormalised: the shift is far below what PSI's usual 0.1 / 0.25 alarms can see).
    """
    p, q = _shares(reference_counts, current_counts)
    p, q = np.where(p == 0, epsilon, p), np.where(q == 0, epsilon, q)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon divergence in bits between the bins' shares: symmetric, 0 for identical
    shares, 1 for disjoint ones. The divergence, not its square root (scipy's distance)."""
    p, q = _shares(reference_counts, current_counts)
    middle = (p + q) / 2
    divergence = (_kullback_leibler_bits(p, middle) + _kullback_leibler_bits(q, middle)) / 2
    return min(max(divergence, 0.0), 1.0)  # round-off may step just outside


def _agrees_with_majority(value: Hashable, others: list[Hashable]) -> bool | None:
    ranked = Counter(others).most_common(2)
    if not ranked or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return None
    return bool(value == ranked[0][0])


def _kullback_leibler_bits(p: Floats, q: Floats) -> float:
    present = p > 0
    return float(np.sum(p[present] * np.log2(p[present] / q[present])))


def _shares(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> tuple[Floats, Floats]:
    reference, current = (np.asarray(c, dtype=np.float64) for c in (reference_counts, current_counts))
    if reference.ndim != 1 or reference.shape != current.shape:
        raise ValueError(f"histograms must be one-dimensional of one length, not {reference.shape} and {current.shape}")
    if np.any(reference < 0) or np.any(current < 0) or reference.sum() == 0 or current.sum() == 0:
        raise ValueError("histograms must hold non-negative counts, and some")
    return reference / reference.sum(), current / current.sum()
