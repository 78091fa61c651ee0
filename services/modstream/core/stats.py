"""The statistics every room shares: rates with their 95 % intervals, and the precision-recall
curve. Pure functions over arrays in scikit-learn's manner, no I/O.

A rate is a share of items (precision: the predicted positives that are true) with Wilson's
score interval. Items may carry weights (the quality room's post-stratification makes each
rate a Hajek estimate for the whole traffic); without weights every item counts once and the
figures equal scikit-learn's.

A weighted share's interval is Wilson's at the effective size n* = p(1 - p) / v, v the
linearised (sandwich) variance of the share (Korn and Graubard's effective size). Where hits
are unrelated to the weights n* comes out near Kish's (sum w)^2 / sum w^2, unweighted it is the
count; where they are related (in the quality room an audited ``allow`` weighs ~50 and is a
miss, a ``review`` weighs 1) Kish's size would be wrong: in the simulation of
tests/unit/test_quality_weighting.py, Wilson at Kish's size covered recall in 75-83 % of audit
samples, at n* in 94-97 %. v treats every item as sampled, so it overstates the variance of
items labelled in full: conservative.
"""

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

Z_95 = 1.96
"""The normal quantile of a two-sided 95 % interval."""

MIN_SAMPLE = 30
"""Effective items in a rate's denominator below which ``rate`` reports "not enough data",
unless the caller asks for less.

The minimum guards the weighted rates: their interval rests on the variance v estimated from
the items themselves, and on few items that estimate is itself too noisy to trust. A plain count
of independent items needs no such estimate (the binomial variance follows from p and n), and
Wilson's interval keeps near its 95 % from a handful of items on (Brown, Cai and DasGupta 2001
recommend it below 40), so figures over a few plain items (a head's held-out examples, a shadow
label against reviewers) pass ``min_sample=0`` and show their wide interval instead of nothing."""

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Array = TypeVar("Array", bound=np.ndarray[Any, Any])


@dataclass(frozen=True)
class Rate:
    """A share with its 95 % interval; ``value``, ``low`` and ``high`` are None when the
    denominator holds no item or fewer effective items than the minimum asked for."""

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


@dataclass(frozen=True, eq=False)
class PRCurve:
    """Precision and recall when everything scoring at least ``thresholds[i]`` is predicted
    positive (the policy's rule: reaching a threshold means score >= threshold), each with its
    95 % interval as ``rate`` gives it without a minimum."""

    thresholds: Floats
    """The distinct scores, ascending."""
    precision: Floats
    recall: Floats
    precision_low: Floats
    precision_high: Floats
    recall_low: Floats
    recall_high: Floats
    predicted_n: Floats
    """Effective items (Kish) among the predicted positives."""
    predicted_count: npt.NDArray[np.int64]
    positives_n: float
    """Effective items (Kish) among the true positives: recall's denominator at every threshold."""
    positives_count: int

    def rates_at(self, index: int) -> tuple[Rate, Rate]:
        """Precision and recall at ``thresholds[index]`` as rates."""
        precision = Rate(
            float(self.precision[index]),
            float(self.precision_low[index]),
            float(self.precision_high[index]),
            float(self.predicted_n[index]),
            int(self.predicted_count[index]),
        )
        recall = Rate(
            float(self.recall[index]),
            float(self.recall_low[index]),
            float(self.recall_high[index]),
            self.positives_n,
            self.positives_count,
        )
        return precision, recall


def wilson(share: npt.ArrayLike, n: npt.ArrayLike, z: float = Z_95) -> tuple[Floats, Floats]:
    """Wilson's score interval for a share observed over n items, element-wise; n may be
    fractional (an effective size). With n = 0 nothing is known: (0, 1).

    The bounds are the shares p whose normal test |share - p| <= z sqrt(p (1 - p) / n) passes:
    unlike share +/- z sqrt(share (1 - share) / n) it never leaves [0, 1] and does not
    collapse to a point at a share of 0 or 1, where a few items say little.
    """
    p, size = np.asarray(share, dtype=np.float64), np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = z * z / size
        centre = (p + spread / 2) / (1 + spread)
        half = z * np.sqrt(p * (1 - p) / size + spread / (4 * size)) / (1 + spread)
        low = np.where(size > 0, np.clip(centre - half, 0.0, 1.0), 0.0)
        high = np.where(size > 0, np.clip(centre + half, 0.0, 1.0), 1.0)
    return low, high


def effective_n(weights: npt.ArrayLike) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2: the number of equally weighted items
    that would give the same variance; 0 for no items."""
    w = np.asarray(weights, dtype=np.float64)
    squares = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / squares if squares > 0 else 0.0


def rate(hits: npt.ArrayLike, weights: npt.ArrayLike | None = None, min_sample: float = MIN_SAMPLE) -> Rate:
    """Weighted share of True in ``hits`` with its 95 % interval; nothing known for no items,
    not enough data below ``min_sample`` effective items (Kish)."""
    hit = one_dimensional(np.asarray(hits, dtype=bool), "hits")
    w = item_weights(weights, hit.size)
    n = effective_n(w)
    if hit.size == 0 or n < min_sample:
        return Rate(None, None, None, n, hit.size)
    sums = (np.sum(w), np.sum(w[hit]), np.sum(w * w), np.sum(w[hit] ** 2))
    share, low, high = (float(v[0]) for v in _weighted_share(*(np.array([s]) for s in sums)))
    return Rate(share, low, high, n, hit.size)


def precision(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, weights: npt.ArrayLike | None = None, min_sample: float = MIN_SAMPLE
) -> Rate:
    """Share of the predicted positives that are truly positive."""
    truth, predicted, w = _binary_pair(y_true, y_pred, weights)
    return rate(truth[predicted], w[predicted], min_sample)


def recall(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, weights: npt.ArrayLike | None = None, min_sample: float = MIN_SAMPLE
) -> Rate:
    """Share of the true positives that are predicted positive."""
    truth, predicted, w = _binary_pair(y_true, y_pred, weights)
    return rate(predicted[truth], w[truth], min_sample)


def f1(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, weights: npt.ArrayLike | None = None, min_sample: float = MIN_SAMPLE
) -> Rate:
    """Harmonic mean of precision and recall; unknown when either is.

    The interval is the conservative one [F1(P_low, R_low), F1(P_high, R_high)]: F1 increases
    in both, so it covers F1 whenever both intervals cover their rates (at least 90 % of the
    time by Bonferroni, usually more). Chosen over a percentile bootstrap of the items, which
    undercovers on the few held-out items a head is measured on (simulated, a head of recall
    0.95 and false-alarm rate 0.05 with 5 positives and 5 negatives held out: the bootstrap
    covered its F1 in 41 % of draws, this interval in 97 %; 10 and 10: 67 % and 98 %) and
    ignores the strata the weights come from. ``n`` and ``count`` are the smaller of the two
    rates'.
    """
    p, r = precision(y_true, y_pred, weights, min_sample), recall(y_true, y_pred, weights, min_sample)
    n, count = min(p.n, r.n), min(p.count, r.count)
    p_known, r_known = _known(p), _known(r)
    if p_known is None or r_known is None:
        return Rate(None, None, None, n, count)
    value, low, high = (_harmonic_mean(a, b) for a, b in zip(p_known, r_known, strict=True))
    return Rate(value, low, high, n, count)


def pr_curve(scores: npt.ArrayLike, y_true: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> PRCurve:
    """Weighted precision and recall, with their intervals, at every distinct score taken as
    threshold; equal to scikit-learn's ``precision_recall_curve`` without its last point."""
    score = one_dimensional(np.asarray(scores, dtype=np.float64), "scores")
    truth = one_dimensional(np.asarray(y_true, dtype=bool), "y_true")
    if score.size != truth.size:
        raise ValueError(f"{score.size} scores but {truth.size} truths")
    if not truth.any():
        raise ValueError("no true positives: recall is undefined")
    w = item_weights(weights, score.size)
    thresholds, index = np.unique(score, return_inverse=True)

    def at_or_above(values: Floats | None = None) -> npt.NDArray[Any]:
        """Per threshold, the sum of ``values`` (the count, for None) over the items scoring at least it."""
        per_score = np.bincount(index, weights=values, minlength=thresholds.size)
        return np.flip(np.cumsum(np.flip(per_score)))

    predicted, predicted_squares = at_or_above(w), at_or_above(w * w)
    true_positive, true_positive_squares = at_or_above(w * truth), at_or_above(w * w * truth)
    precision, precision_low, precision_high = _weighted_share(
        predicted, true_positive, predicted_squares, true_positive_squares
    )
    # Recall's denominator is every positive: the sums at the lowest threshold, where all are predicted.
    positives, positive_squares = true_positive[0], true_positive_squares[0]
    recall, recall_low, recall_high = _weighted_share(
        np.full_like(true_positive, positives),
        true_positive,
        np.full_like(true_positive, positive_squares),
        true_positive_squares,
    )
    return PRCurve(
        thresholds=thresholds,
        precision=precision,
        recall=recall,
        precision_low=precision_low,
        precision_high=precision_high,
        recall_low=recall_low,
        recall_high=recall_high,
        predicted_n=predicted**2 / predicted_squares,
        predicted_count=at_or_above(),
        positives_n=float(positives**2 / positive_squares),
        positives_count=int(truth.sum()),
    )


def one_dimensional(values: Array, name: str) -> Array:
    """``values`` itself, refused unless it is one-dimensional."""
    if values.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not of shape {values.shape}")
    return values


def same_length(a: Array, b: Array) -> tuple[Array, Array]:
    """Two answers on the same items: both one-dimensional, of one length."""
    first, second = one_dimensional(a, "a"), one_dimensional(b, "b")
    if first.size != second.size:
        raise ValueError(f"{first.size} answers against {second.size}: the same items are needed on both sides")
    return first, second


def item_weights(weights: npt.ArrayLike | None, size: int) -> Floats:
    """One positive, finite weight per item; every item weighs 1 when ``weights`` is None."""
    if weights is None:
        return np.ones(size)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (size,):
        raise ValueError(f"weights have shape {w.shape}, the items ({size},)")
    if not np.all(np.isfinite(w) & (w > 0)):
        raise ValueError("weights must be positive and finite")
    return w


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
    low, high = wilson(share, n)
    return share, low, high


def _binary_pair(
    y_true: npt.ArrayLike, y_pred: npt.ArrayLike, weights: npt.ArrayLike | None
) -> tuple[Bools, Bools, Floats]:
    truth, predicted = same_length(np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool))
    return truth, predicted, item_weights(weights, truth.size)


def _known(r: Rate) -> tuple[float, float, float] | None:
    if r.value is None or r.low is None or r.high is None:
        return None
    return r.value, r.low, r.high


def _harmonic_mean(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


BINS = 20
"""Equal-width score bins over [0, 1] for drift and score distributions; a score of 1.0 falls in the last one."""


def histogram(scores: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Counts of scores in ``BINS`` equal bins over [0, 1]: bin i holds [i/BINS, (i+1)/BINS),
    the last one also 1.0. Counts, so hourly histograms add up to daily ones."""
    score = one_dimensional(np.asarray(scores, dtype=np.float64), "scores")
    if not np.all((score >= 0) & (score <= 1)):
        raise ValueError("scores must lie in [0, 1]")
    return np.bincount(np.minimum((score * BINS).astype(np.int64), BINS - 1), minlength=BINS)
