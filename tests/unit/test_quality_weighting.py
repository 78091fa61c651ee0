"""Verdicts over-represent the review band; weights w = N_h / n_h per stratum undo the bias.

A simulated population with the truth known: every ``review`` decision reaches a reviewer,
``allow`` and ``block`` only through a 2 % audit sample. Precision and recall over the labelled
items alone are biased; weighted by stratum they are not, and their intervals cover the truth.
"""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from modstream.core.stats import Rate, precision, recall

REVIEW_AT, BLOCK_AT, AUDIT_RATE = 0.4, 0.85, 0.02
ALLOW, REVIEW, BLOCK = 0, 1, 2

Metric = Callable[[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike | None], Rate]
CASES: list[tuple[str, Metric, float]] = [
    ("precision at review_at", precision, REVIEW_AT),
    ("recall at review_at", recall, REVIEW_AT),
    ("precision at block_at", precision, BLOCK_AT),
    ("recall at block_at", recall, BLOCK_AT),
]


@dataclass(frozen=True)
class Population:
    scores: npt.NDArray[np.float64]
    truth: npt.NDArray[np.bool_]
    outcomes: npt.NDArray[np.int64]


@dataclass(frozen=True)
class Labelled:
    scores: npt.NDArray[np.float64]
    truth: npt.NDArray[np.bool_]
    weights: npt.NDArray[np.float64]


@pytest.fixture(scope="module")
def population() -> Population:
    rng = np.random.default_rng(20261128)
    size = 200_000
    harmful_looking = rng.random(size) < 0.15
    scores = np.where(harmful_looking, rng.beta(5, 2, size), rng.beta(1.2, 6, size))
    # The truth is likelier the higher the score, never certain either way.
    truth = rng.random(size) < 1 / (1 + np.exp(-10 * (scores - 0.6)))
    outcomes = np.where(scores >= BLOCK_AT, BLOCK, np.where(scores >= REVIEW_AT, REVIEW, ALLOW))
    return Population(scores, truth, outcomes)


def reviewed(population: Population, rng: np.random.Generator) -> Labelled:
    """What reviewers see: the whole review band and an audit sample of the rest, each item
    weighted by decisions over labelled decisions in its stratum."""
    audited = rng.random(population.outcomes.size) < AUDIT_RATE
    labelled = (population.outcomes == REVIEW) | audited
    strata = population.outcomes[labelled]
    decisions = np.bincount(population.outcomes, minlength=3)
    labelled_decisions = np.bincount(strata, minlength=3)
    return Labelled(population.scores[labelled], population.truth[labelled], (decisions / labelled_decisions)[strata])


def true_value(population: Population, metric: Metric, threshold: float) -> float:
    every = metric(population.truth, population.scores >= threshold, None)
    assert every.value is not None
    return every.value


def estimate(labelled: Labelled, metric: Metric, threshold: float, weighted: bool) -> Rate:
    return metric(labelled.truth, labelled.scores >= threshold, labelled.weights if weighted else None)


@pytest.mark.parametrize(("name", "metric", "threshold"), CASES)
def test_the_weighted_interval_holds_the_truth(
    population: Population, name: str, metric: Metric, threshold: float
) -> None:
    weighted = estimate(reviewed(population, np.random.default_rng(1)), metric, threshold, weighted=True)
    assert weighted.low is not None and weighted.high is not None
    assert weighted.low <= true_value(population, metric, threshold) <= weighted.high, (name, str(weighted))


@pytest.mark.parametrize(
    ("name", "metric", "threshold"), [case for case in CASES if case[0] != "precision at block_at"]
)
def test_the_naive_estimate_falls_outside_the_weighted_interval(
    population: Population, name: str, metric: Metric, threshold: float
) -> None:
    labelled = reviewed(population, np.random.default_rng(1))
    naive, weighted = (estimate(labelled, metric, threshold, weighted=w) for w in (False, True))
    assert naive.value is not None and weighted.low is not None and weighted.high is not None
    assert not weighted.low <= naive.value <= weighted.high, (name, naive.value, str(weighted))
    # Far outside, not at the edge: the bias is real.
    assert abs(naive.value - true_value(population, metric, threshold)) > 0.05


def test_precision_at_block_at_needs_no_weights(population: Population) -> None:
    # Its predicted positives are one stratum, audited uniformly: one weight for all, no bias.
    labelled = reviewed(population, np.random.default_rng(1))
    naive, weighted = (estimate(labelled, precision, BLOCK_AT, weighted=w) for w in (False, True))
    assert naive.value == pytest.approx(weighted.value)
    assert naive.n == pytest.approx(weighted.n)


def test_the_weighted_interval_covers_the_truth_over_redrawn_audit_samples(population: Population) -> None:
    rng = np.random.default_rng(7)
    draws = 200
    truths = [true_value(population, metric, threshold) for _, metric, threshold in CASES]
    covered = np.zeros(len(CASES))
    for _ in range(draws):
        labelled = reviewed(population, rng)
        for i, (_, metric, threshold) in enumerate(CASES):
            r = estimate(labelled, metric, threshold, weighted=True)
            assert r.low is not None and r.high is not None
            covered[i] += r.low <= truths[i] <= r.high
    coverage = dict(zip([name for name, _, _ in CASES], covered / draws, strict=True))
    assert all(share >= 0.90 for share in coverage.values()), coverage
