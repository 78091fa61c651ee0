"""Fit one label's head: logistic regression on embeddings, measured on examples it never saw. Pure.

The examples are split once, stratified, into a training part and a held-out part. The
regularisation is chosen by cross-validated log-loss on the training part alone, so the
held-out figures are an honest estimate; the features are standardised for the fit and the
standardisation is folded into the weights, so the served head is one matrix product.
Logistic regression fitted by log-loss gives probabilities calibrated to the labelled set:
its share of positives is usually far above the traffic's, so a policy threshold is set on
verdicts of live decisions (``modstream quality suggest``), not read off this score.
"""

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from modstream.core import stats
from modstream.core.stats import Rate
from modstream.models.heads import CurvePoint

MIN_EACH = 12
"""Positives and negatives a head needs at least: a quarter of each is held out, and below
three held-out positives and negatives the figures say nothing."""
HELD_OUT_SHARE = 0.25
THRESHOLD = 0.5
_C_GRID = np.logspace(-4, 2, 13)


class TooFewExamples(ValueError):
    """Not enough labelled examples of one kind; the message says how many more."""


@dataclass(frozen=True)
class Split:
    train: npt.NDArray[np.int64]
    held_out: npt.NDArray[np.int64]


@dataclass(frozen=True)
class FittedHead:
    """A head as the served graph uses it (``sigmoid(x · weights + bias)`` on raw embeddings),
    and what it did on the held-out part."""

    weights: npt.NDArray[np.float32]
    bias: float
    regularisation: float
    split: Split
    held_out_scores: npt.NDArray[np.float64]
    precision: Rate
    recall: Rate
    f1: Rate
    average_precision: float
    curve: list[CurvePoint]
    seconds: float


def check_enough(label: str, positive: npt.NDArray[np.bool_], need: int = MIN_EACH) -> None:
    """Refuse, saying how many more of which kind, if there are fewer than ``need`` of either."""
    positives, negatives = int(positive.sum()), int((~positive).sum())
    short = [f"{need - n} more {kind}" for n, kind in ((positives, "positives"), (negatives, "negatives")) if n < need]
    if short:
        raise TooFewExamples(
            f"{label}: {positives} positive and {negatives} negative labelled examples; a head needs at least "
            f"{need} of each ({' and '.join(short)}): label more jobs for {label} in the dashboard"
        )


def stratified_split(positive: npt.NDArray[np.bool_], share: float = HELD_OUT_SHARE, seed: int = 0) -> Split:
    """A share of the positives and of the negatives (at least one of each) held out."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for kind in (True, False):
        members = rng.permutation(np.flatnonzero(positive == kind))
        cut = max(1, round(len(members) * share))
        held.append(members[:cut])
        train.append(members[cut:])
    return Split(np.sort(np.concatenate(train)), np.sort(np.concatenate(held)))


def fit_head(
    label: str,
    embeddings: npt.NDArray[np.floating[Any]],
    positive: npt.NDArray[np.bool_],
    *,
    seed: int = 0,
    threshold: float = THRESHOLD,
) -> FittedHead:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    check_enough(label, positive)
    started = time.perf_counter()
    x = np.asarray(embeddings, dtype=np.float64)
    split = stratified_split(positive, seed=seed)
    x_train, y_train = x[split.train], positive[split.train]
    mean, scale = x_train.mean(axis=0), x_train.std(axis=0)
    scale[scale == 0] = 1.0
    x_scaled = (x_train - mean) / scale
    folds = StratifiedKFold(min(5, int(y_train.sum()), int((~y_train).sum())), shuffle=True, random_state=seed)
    losses = [
        cross_val_score(LogisticRegression(C=c, max_iter=5000), x_scaled, y_train, cv=folds, scoring="neg_log_loss")
        for c in _C_GRID
    ]
    chosen = float(_C_GRID[int(np.argmax([loss.mean() for loss in losses]))])
    model = LogisticRegression(C=chosen, max_iter=5000).fit(x_scaled, y_train)
    # sigmoid(((x - mean) / scale) · w + b) = sigmoid(x · (w / scale) + b - mean · (w / scale))
    weights = model.coef_[0] / scale
    bias = float(model.intercept_[0] - mean @ weights)
    held_scores = probability(x[split.held_out], weights, bias)
    truth, predicted = positive[split.held_out], held_scores >= threshold
    return FittedHead(
        weights=weights.astype(np.float32),
        bias=bias,
        regularisation=chosen,
        split=split,
        held_out_scores=held_scores,
        # Plain counts of held-out items: Wilson's interval needs no minimum, a small part shows a wide one.
        precision=stats.precision(truth, predicted, min_sample=0),
        recall=stats.recall(truth, predicted, min_sample=0),
        f1=stats.f1(truth, predicted, min_sample=0),
        average_precision=float(average_precision_score(truth, held_scores)),
        curve=pr_points(held_scores, truth),
        seconds=time.perf_counter() - started,
    )


def pr_points(scores: npt.NDArray[np.float64], truth: npt.NDArray[np.bool_]) -> list[CurvePoint]:
    """Precision and recall, with Wilson 95 % intervals, at every distinct held-out score taken
    as the threshold (reaching it means score >= threshold), ascending."""
    curve = stats.pr_curve(scores, truth)
    points = []
    for index, threshold in enumerate(curve.thresholds):
        precision, recall = curve.rates_at(index)
        points.append(CurvePoint(threshold=float(threshold), precision=precision, recall=recall))
    return points


def probability(embeddings: npt.NDArray[Any], weights: npt.NDArray[Any], bias: float) -> npt.NDArray[np.float64]:
    """What the served head answers for these embeddings."""
    from scipy.special import expit

    return np.asarray(expit(embeddings @ weights + bias), dtype=np.float64)
