"""Quality metrics over arrays, scikit-learn style: every metric a small function, no I/O.

The labelled set over-represents the review band (every ``review`` decision reaches a person,
``allow`` and ``block`` only through the audit sample), so rates take per-item ``weights``:
w = N_h / n_h for the item's stratum h (automatic outcome x audit rate in force), which makes
each rate a post-stratified (Hajek) estimate for the whole population. Without weights every
item counts once and the metrics equal scikit-learn's.

Intervals are Wilson's at the effective size n* = p(1 - p) / v, v the linearised (sandwich)
variance of the weighted share (Korn and Graubard's effective size). Where hits are unrelated
to the weights n* comes out near Kish's (sum w)^2 / sum w^2, unweighted it is the count; but here
they are related (an audited ``allow`` weighs ~50 and is a miss, a ``review`` weighs 1): in
the simulation of tests/unit/test_quality_weighting.py, Wilson at Kish's size covered recall
at ``review_at`` in 75-83 % of audit samples, at n* in 94-97 %. v treats every item as sampled,
so it overstates the variance of the review band, which is labelled in full: conservative.
"""

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

MIN_SAMPLE = 30
"""Effective items in a rate's denominator below which it reports "not enough data"."""

BINS = 20
"""Equal-width score bins over [0, 1] for drift; a score of 1.0 falls in the last one."""

Z_95 = 1.96

Reviewer = TypeVar("Reviewer", bound=Hashable)
Array = TypeVar("Array", bound=np.ndarray[Any, Any])
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Rate:
    """A share with its 95 % interval (Wilson's at the design-based effective size, see the
    module); ``value``, ``low`` and ``high`` are None when the denominator holds fewer than
    the minimum of effective items."""

    value: float | None
    low: float | None
    high: float | None
    n: float
    """Effective items in the denominator (Kish): the raw count when unweighted."""
    count: int
    """Raw items in the denominator."""

    def __str__(self) -> str:
        if self.value is None or self.low is None or self.high is None:
            return f"not enough data (n={self.n:.0f})"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}] n={self.n:.0f}"


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


@dataclass(frozen=True, eq=False)
class PRCurve:
    """Precision and recall when everything scoring at least ``thresholds[i]`` is predicted
    positive (the policy's rule: reaching a threshold means score >= threshold)."""

    thresholds: Floats
    """The distinct scores, ascending."""
    precision: Floats
    recall: Floats
    precision_low: Floats
    """Lower bound of precision's 95 % interval, as ``rate`` gives it."""
    predicted_n: Floats
    """Effective items (Kish) among the predicted positives."""


def wilson(successes: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n``; both may be fractional (a
    weighted share times an effective size). With n = 0 nothing is known: (0, 1)."""
    low, high = _wilson(np.array([successes / n if n > 0 else 0.0]), np.array([float(n)]), z)
    return float(low[0]), float(high[0])


def effective_n(weights: npt.ArrayLike) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2: the number of equally weighted items
    that would give the same variance; 0 for no items."""
    w = np.asarray(weights, dtype=np.float64)
    squares = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / squares if squares > 0 else 0.0


def rate(hits: npt.ArrayLike, weights: npt.ArrayLike | None = None, min_sample: float = MIN_SAMPLE) -> Rate:
    """Weighted share of True in ``hits`` with its 95 % interval; not enough data below
    ``min_sample`` effective items (Kish)."""
    hit = _one_dimensional(np.asarray(hits, dtype=bool), "hits")
    w = _weights(weights, hit.size)
    n = effective_n(w)
    if n < min_sample:
        return Rate(None, None, None, n, hit.size)
    sums = (np.sum(w), np.sum(w[hit]), np.sum(w * w), np.sum(w[hit] ** 2))
    share, low, high = (float(v[0]) for v in _weighted_share(*(np.array([s]) for s in sums)))
    return Rate(share, low, high, n, hit.size)


def precision(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> Rate:
    """Share of the predicted positives that are truly positive."""
    truth, predicted, w = _binary_pair(y_true, y_pred, weights)
    return rate(truth[predicted], w[predicted])


def recall(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> Rate:
    """Share of the true positives that are predicted positive."""
    truth, predicted, w = _binary_pair(y_true, y_pred, weights)
    return rate(predicted[truth], w[truth])


def f1(y_true: npt.ArrayLike, y_pred: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> Rate:
    """Harmonic mean of precision and recall.

    The interval is the conservative one [F1(P_low, R_low), F1(P_high, R_high)]: F1 increases
    in both, so it covers F1 whenever both intervals cover their rates (at least 90 % of the
    time by Bonferroni, usually more). ``n`` and ``count`` are the smaller of the two rates'.
    """
    p, r = precision(y_true, y_pred, weights), recall(y_true, y_pred, weights)
    n, count = min(p.n, r.n), min(p.count, r.count)
    p_known, r_known = _known(p), _known(r)
    if p_known is None or r_known is None:
        return Rate(None, None, None, n, count)
    value, low, high = (_harmonic_mean(a, b) for a, b in zip(p_known, r_known, strict=True))
    return Rate(value, low, high, n, count)


def hamming_loss(true_sets: npt.ArrayLike, pred_sets: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> Rate:
    """Share of wrong cells in items x labels boolean label sets; each cell carries its item's
    weight and ``n`` is the effective number of items times the labels. The cells of one item
    are not independent (one image, one reviewer), so the interval is optimistic."""
    truth, predicted = np.asarray(true_sets, dtype=bool), np.asarray(pred_sets, dtype=bool)
    if truth.ndim != 2 or truth.shape != predicted.shape:
        raise ValueError(f"label sets must be items x labels arrays of one shape, not {truth.shape}, {predicted.shape}")
    w = _weights(weights, truth.shape[0])
    return rate((truth != predicted).ravel(), np.repeat(w, truth.shape[1]))


def agreement(automatic: npt.ArrayLike, human: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> Rate:
    """Share of items where the automatic outcome equals the human one. The caller maps
    verdicts onto outcomes first (approve -> "allow", remove -> "block")."""
    machine, person = _same_length(np.asarray(automatic), np.asarray(human))
    return rate(machine == person, weights)


def cohen_kappa(a: npt.ArrayLike, b: npt.ArrayLike) -> Kappa:
    """Cohen's kappa between two raters' answers on the same items (bool or categorical),
    equal to scikit-learn's ``cohen_kappa_score`` wherever that returns a number.

    The interval is kappa +/- 1.96 SE with the large-sample SE of Fleiss, Cohen and Everitt
    (1969), the ASE of SAS's PROC FREQ, clipped to [-1, 1].
    """
    first, second = _same_length(np.asarray(a), np.asarray(b))
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


def pr_curve(scores: npt.ArrayLike, y_true: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> PRCurve:
    """Weighted precision and recall at every distinct score taken as threshold."""
    score = _one_dimensional(np.asarray(scores, dtype=np.float64), "scores")
    truth = _one_dimensional(np.asarray(y_true, dtype=bool), "y_true")
    if score.size != truth.size:
        raise ValueError(f"{score.size} scores but {truth.size} truths")
    if not truth.any():
        raise ValueError("no true positives: recall is undefined")
    w = _weights(weights, score.size)
    thresholds, index = np.unique(score, return_inverse=True)

    def at_or_above(values: Floats) -> Floats:
        per_score = np.bincount(index, weights=values, minlength=thresholds.size).astype(np.float64)
        return np.flip(np.cumsum(np.flip(per_score)))

    predicted, true_positive = at_or_above(w), at_or_above(w * truth)
    predicted_squares = at_or_above(w * w)
    share, low, _ = _weighted_share(predicted, true_positive, predicted_squares, at_or_above(w * w * truth))
    return PRCurve(
        thresholds=thresholds,
        precision=share,
        recall=true_positive / true_positive[0],
        precision_low=low,
        predicted_n=predicted**2 / predicted_squares,
    )


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


def histogram(scores: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Counts of scores in ``BINS`` equal bins over [0, 1]: bin i holds [i/BINS, (i+1)/BINS),
    the last one also 1.0. Counts, so hourly histograms add up to daily ones."""
    score = _one_dimensional(np.asarray(scores, dtype=np.float64), "scores")
    if not np.all((score >= 0) & (score <= 1)):
        raise ValueError("scores must lie in [0, 1]")
    return np.bincount(np.minimum((score * BINS).astype(np.int64), BINS - 1), minlength=BINS)


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


def _weighted_share(
    weight: Floats, hit_weight: Floats, squares: Floats, hit_squares: Floats
) -> tuple[Floats, Floats, Floats]:
    """Share and 95 % interval from the sums of w, w over hits, w^2 and w^2 over hits."""
    share = hit_weight / weight
    # sum w^2 (hit - share)^2 / (sum w)^2, expanded into the sums (a hit is 0 or 1)
    variance = np.maximum(hit_squares * (1 - 2 * share) + share**2 * squares, 0.0) / weight**2
    with np.errstate(divide="ignore", invalid="ignore"):
        # A share of 0 or 1 has no spread to measure: Kish's size stands in.
        n = np.where(variance > 0, share * (1 - share) / variance, weight**2 / squares)
    low, high = _wilson(share, n, Z_95)
    return share, low, high


def _wilson(share: Floats, n: Floats, z: float) -> tuple[Floats, Floats]:
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = z * z / n
        centre = (share + spread / 2) / (1 + spread)
        half = z * np.sqrt(share * (1 - share) / n + spread / (4 * n)) / (1 + spread)
        low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return low, high


def _known(r: Rate) -> tuple[float, float, float] | None:
    if r.value is None or r.low is None or r.high is None:
        return None
    return r.value, r.low, r.high


def _harmonic_mean(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


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


def _binary_pair(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, weights: npt.ArrayLike | None
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], Floats]:
    truth, predicted = _same_length(np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool))
    return truth, predicted, _weights(weights, truth.size)


def _same_length(a: Array, b: Array) -> tuple[Array, Array]:
    first, second = _one_dimensional(a, "a"), _one_dimensional(b, "b")
    if first.size != second.size:
        raise ValueError(f"{first.size} answers against {second.size}: the same items are needed on both sides")
    return first, second


def _one_dimensional(values: Array, name: str) -> Array:
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not of shape {values.shape}")
    return values


def _weights(weights: npt.ArrayLike | None, size: int) -> Floats:
    if weights is None:
        return np.ones(size)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (size,):
        raise ValueError(f"weights have shape {w.shape}, the items ({size},)")
    if not np.all(np.isfinite(w) & (w > 0)):
        raise ValueError("weights must be positive and finite")
    return w
