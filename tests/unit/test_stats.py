"""The shared statistics: equal to scikit-learn's and statsmodels' where they have the same
quantity, right on published values, and one rule for too few items."""

from dataclasses import dataclass

import numpy as np
import pytest
from modstream.core.stats import (
    MIN_SAMPLE,
    Bools,
    Floats,
    Rate,
    effective_n,
    f1,
    pr_curve,
    precision,
    rate,
    recall,
    wilson,
)
from scipy.stats import norm
from sklearn import metrics as sk
from statsmodels.stats.proportion import proportion_confint

Z_EXACT = float(norm.ppf(0.975))  # statsmodels' quantile; the module rounds it to 1.96


@dataclass(frozen=True)
class Scored:
    """One label over 800 items: the truth, a score that leans towards it, design weights."""

    truth: Bools
    scores: Floats
    weights: Floats

    def predicted(self, at: float = 0.5) -> Bools:
        return self.scores >= at


@pytest.fixture(scope="module", params=[0.05, 0.25, 0.5])
def scored(request: pytest.FixtureRequest) -> Scored:
    rng = np.random.default_rng(int(request.param * 100))
    truth = rng.random(800) < request.param
    # Rounded to two decimals, so that many items share a score: the curve's ties.
    scores = np.round(np.clip(rng.normal(0.35 + 0.3 * truth, 0.2), 0, 1), 2)
    return Scored(truth, scores, rng.choice([1.0, 4.0, 50.0], 800))


def value(r: Rate) -> float:
    assert r.value is not None, r
    return r.value


def test_precision_recall_and_f1_equal_scikit_learns(scored: Scored) -> None:
    truth, predicted = scored.truth, scored.predicted()
    for w in (None, scored.weights):  # values only: the rare label's weighted positives fall below the minimum
        assert value(precision(truth, predicted, w, min_sample=0)) == pytest.approx(
            sk.precision_score(truth, predicted, sample_weight=w), abs=1e-12
        )
        assert value(recall(truth, predicted, w, min_sample=0)) == pytest.approx(
            sk.recall_score(truth, predicted, sample_weight=w), abs=1e-12
        )
        assert value(f1(truth, predicted, w, min_sample=0)) == pytest.approx(
            sk.f1_score(truth, predicted, sample_weight=w), abs=1e-12
        )
    # The weighting is not a no-op on this set, or the cross-check would prove little.
    weighted, plain = (sk.precision_score(truth, predicted, sample_weight=w) for w in (scored.weights, None))
    assert abs(weighted - plain) > 1e-3


def test_wilson_equals_statsmodels() -> None:
    counts = np.array([(k, n) for n in (1, 2, 7, 30, 263, 10_000) for k in {0, 1, n // 3, n - 1, n}])
    expected_low, expected_high = proportion_confint(counts[:, 0], counts[:, 1], alpha=0.05, method="wilson")
    low, high = wilson(counts[:, 0] / counts[:, 1], counts[:, 1], z=Z_EXACT)
    np.testing.assert_allclose(low, expected_low, atol=1e-12)
    np.testing.assert_allclose(high, expected_high, atol=1e-12)
    # At 1.96 rather than the exact quantile the bounds move by less than 1e-4.
    rounded_low, rounded_high = wilson(counts[:, 0] / counts[:, 1], counts[:, 1])
    np.testing.assert_allclose(rounded_low, expected_low, atol=1e-4)
    np.testing.assert_allclose(rounded_high, expected_high, atol=1e-4)


def test_wilson_matches_published_intervals() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (score interval).
    published = {
        (0, 10): (0.0, 0.2775),
        (10, 10): (0.7225, 1.0),
        (5, 10): (0.2366, 0.7634),
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }
    for (successes, n), bounds in published.items():
        assert wilson(successes / n, n) == pytest.approx(bounds, abs=5e-5), (successes, n)
    assert tuple(map(float, wilson(0.0, 0))) == (0.0, 1.0)  # nothing counted: nothing known


def test_wilson_takes_fractional_sizes() -> None:
    low, high = wilson(0.5, 12.5)
    assert low + high == pytest.approx(1.0)  # a share of one half, symmetric
    assert wilson(0.5, 10)[0] < low < wilson(0.5, 20)[0]


def test_effective_n_is_kish() -> None:
    assert effective_n(np.full(40, 3.0)) == pytest.approx(40.0)
    assert effective_n([1.0, 1.0, 2.0]) == pytest.approx(16 / 6)
    assert effective_n([]) == 0.0


def test_an_unweighted_rate_is_the_share_with_wilsons_interval_at_the_count() -> None:
    hits = np.arange(230) < 210
    r = rate(hits)
    assert r.value == pytest.approx(210 / 230)
    assert (r.n, r.count) == (230, 230)
    assert (r.low, r.high) == pytest.approx(proportion_confint(210, 230, method="wilson"), abs=1e-4)
    # Multiplying every weight by one number changes nothing.
    scaled = rate(hits, np.full(230, 37.5))
    assert (scaled.value, scaled.low, scaled.high, scaled.n) == pytest.approx((r.value, r.low, r.high, r.n))


def test_a_weighted_rate_of_all_hits_takes_its_interval_at_kishs_size() -> None:
    weights = np.r_[np.ones(40), np.full(40, 5.0)]
    r = rate(np.ones(80, dtype=bool), weights)
    assert r.n == pytest.approx(effective_n(weights))
    assert (r.value, r.low, r.high) == pytest.approx((1.0, *map(float, wilson(1.0, r.n))))


def test_below_the_minimum_sample_there_is_not_enough_data() -> None:
    few = rate(np.ones(MIN_SAMPLE - 1, dtype=bool))
    assert (few.value, few.low, few.high, few.count) == (None, None, None, MIN_SAMPLE - 1)
    assert str(few) == "not enough data (n=29)"
    assert rate(np.ones(MIN_SAMPLE, dtype=bool)).value == 1.0
    # 40 items, but half of the weight in one: Kish counts fewer than 30.
    assert rate(np.ones(40, dtype=bool), np.r_[np.ones(39), 39.0]).value is None
    assert str(Rate(0.912, 0.871, 0.941, 230.0, 230)) == "0.912 [0.871, 0.941] n=230"


def test_plain_counts_ask_for_no_minimum_and_nothing_counted_is_unknown() -> None:
    # 8 of 10: Wilson's interval at the count, as statsmodels gives it.
    eight = rate(np.arange(10) < 8, min_sample=0)
    assert (eight.low, eight.high) == pytest.approx(proportion_confint(8, 10, method="wilson"), abs=1e-4)
    assert str(eight) == "0.800 [0.490, 0.943] n=10"
    assert rate(np.zeros(0, dtype=bool), min_sample=0) == Rate(None, None, None, 0.0, 0)
    # No score reaches the threshold: precision is unknown, recall 0, F1 unknown.
    truth, predicted = np.array([True, False]), np.array([False, False])
    assert precision(truth, predicted, min_sample=0).value is None
    assert recall(truth, predicted, min_sample=0).value == 0.0
    assert f1(truth, predicted, min_sample=0).value is None


def test_f1_needs_both_rates_and_bounds_itself_by_theirs(scored: Scored) -> None:
    truth, predicted = scored.truth, scored.predicted()
    p, r, f = precision(truth, predicted), recall(truth, predicted), f1(truth, predicted)
    assert p.low is not None and r.low is not None and p.high is not None and r.high is not None
    assert f.low == pytest.approx(2 * p.low * r.low / (p.low + r.low))
    assert f.high == pytest.approx(2 * p.high * r.high / (p.high + r.high))
    assert (f.n, f.count) == (min(p.n, r.n), min(p.count, r.count))
    # Few predicted positives: precision has too little data, so F1 has too.
    rare = np.zeros(truth.size, dtype=bool)
    rare[:5] = True
    assert f1(truth, rare).value is None


@pytest.mark.parametrize("weighted", [False, True])
def test_the_pr_curve_equals_scikit_learns(scored: Scored, weighted: bool) -> None:
    w = scored.weights if weighted else None
    curve = pr_curve(scored.scores, scored.truth, w)
    expected_precision, expected_recall, expected_thresholds = sk.precision_recall_curve(
        scored.truth, scored.scores, sample_weight=w
    )
    np.testing.assert_allclose(curve.thresholds, expected_thresholds, atol=1e-12)
    np.testing.assert_allclose(curve.precision, expected_precision[:-1], atol=1e-12)
    np.testing.assert_allclose(curve.recall, expected_recall[:-1], atol=1e-12)
    assert np.all(np.diff(curve.thresholds) > 0)


@pytest.mark.parametrize("weighted", [False, True])
def test_every_point_of_the_curve_is_precision_and_recall_at_its_threshold(scored: Scored, weighted: bool) -> None:
    w = scored.weights if weighted else None
    curve = pr_curve(scored.scores, scored.truth, w)
    for index, threshold in enumerate(curve.thresholds):
        predicted = scored.scores >= threshold
        at_precision, at_recall = curve.rates_at(index)
        for point, expected in (
            (at_precision, precision(scored.truth, predicted, w, min_sample=0)),
            (at_recall, recall(scored.truth, predicted, w, min_sample=0)),
        ):
            assert (point.value, point.low, point.high, point.n) == pytest.approx(
                (expected.value, expected.low, expected.high, expected.n), rel=1e-9
            )
            assert point.count == expected.count
        assert (curve.precision_low[index], curve.predicted_n[index]) == (at_precision.low, at_precision.n)


def test_the_unweighted_curves_intervals_equal_statsmodels(scored: Scored) -> None:
    curve = pr_curve(scored.scores, scored.truth)
    true_positives = np.rint(curve.precision * curve.predicted_count).astype(np.int64)
    for low, high, count in (
        (curve.precision_low, curve.precision_high, curve.predicted_count),
        (curve.recall_low, curve.recall_high, np.full(true_positives.size, curve.positives_count)),
    ):
        expected_low, expected_high = proportion_confint(true_positives, count, method="wilson")
        np.testing.assert_allclose(low, expected_low, atol=1e-4)
        np.testing.assert_allclose(high, expected_high, atol=1e-4)


def test_a_pr_curve_needs_a_true_positive() -> None:
    with pytest.raises(ValueError, match="no true positives"):
        pr_curve([0.1, 0.9], [False, False])
