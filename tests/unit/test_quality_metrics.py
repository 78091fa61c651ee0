"""The quality room's own metrics: equal to scikit-learn's where both exist, right on published
values (rates, their intervals and the PR curve: test_stats.py)."""

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pytest
from modstream.core.stats import BINS, Rate, effective_n, histogram, pr_curve
from modstream.quality.metrics import (
    Kappa,
    agreement,
    cohen_kappa,
    hamming_loss,
    highest_threshold_for_recall,
    jensen_shannon,
    lowest_threshold_for_precision,
    majority_agreement,
    psi,
)
from scipy.spatial.distance import jensenshannon
from sklearn import metrics as sk

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Labelled:
    truth: Bools  # items x labels: the reviewers' label sets
    predicted: Bools  # items x labels: the automatic label sets
    weights: Floats
    automatic: npt.NDArray[np.str_]  # outcomes, verdicts already mapped onto them
    human: npt.NDArray[np.str_]


@pytest.fixture(scope="module")
def labelled() -> Labelled:
    rng = np.random.default_rng(20261128)
    items, labels = 600, 5
    truth = rng.random((items, labels)) < np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    scores = np.clip(0.35 * truth + rng.normal(0.35, 0.2, (items, labels)), 0, 1)
    outcomes = np.array(["allow", "block", "review"])
    return Labelled(
        truth=truth,
        predicted=scores >= 0.5,
        weights=rng.uniform(0.5, 10.0, items),
        automatic=outcomes[rng.integers(0, 3, items)],
        human=np.where(rng.random(items) < 0.7, outcomes[rng.integers(0, 2, items)], "allow"),
    )


def value(r: Rate) -> float:
    assert r.value is not None, r
    return r.value


@pytest.mark.parametrize("label", range(5))
def test_kappa_on_booleans_equals_scikit_learns(labelled: Labelled, label: int) -> None:
    truth, predicted = labelled.truth[:, label], labelled.predicted[:, label]
    kappa = cohen_kappa(truth, predicted).value
    assert kappa == pytest.approx(sk.cohen_kappa_score(truth, predicted), abs=1e-12)


def test_hamming_loss_and_agreement_equal_scikit_learns(labelled: Labelled) -> None:
    w = labelled.weights
    assert value(hamming_loss(labelled.truth, labelled.predicted)) == pytest.approx(
        sk.hamming_loss(labelled.truth, labelled.predicted), abs=1e-12
    )
    assert value(hamming_loss(labelled.truth, labelled.predicted, w)) == pytest.approx(
        sk.hamming_loss(labelled.truth, labelled.predicted, sample_weight=w), abs=1e-12
    )
    assert value(agreement(labelled.automatic, labelled.human)) == pytest.approx(
        sk.accuracy_score(labelled.automatic, labelled.human), abs=1e-12
    )
    assert value(agreement(labelled.automatic, labelled.human, w)) == pytest.approx(
        sk.accuracy_score(labelled.automatic, labelled.human, sample_weight=w), abs=1e-12
    )


def test_kappa_on_categories_equals_scikit_learns(labelled: Labelled) -> None:
    kappa = cohen_kappa(labelled.automatic, labelled.human)
    assert kappa.value == pytest.approx(sk.cohen_kappa_score(labelled.automatic, labelled.human), abs=1e-12)
    assert kappa.n == 600


def test_hamming_loss_counts_every_label_cell_of_an_effective_item(labelled: Labelled) -> None:
    r = hamming_loss(labelled.truth, labelled.predicted, labelled.weights)
    assert r.n == pytest.approx(5 * effective_n(labelled.weights))
    assert r.count == 600 * 5


def test_kappa_matches_sas_on_the_skin_condition_example() -> None:
    # SAS/STAT PROC FREQ, "Getting Started: Agreement Study": kappa 0.3449, ASE 0.0724,
    # 95 % limits 0.2030 and 0.4868. Rows: the first dermatologist; columns: the second.
    grades = ["terrible", "poor", "marginal", "clear"]
    counts = [[10, 4, 1, 0], [5, 10, 12, 2], [2, 4, 12, 5], [0, 2, 6, 13]]
    first = [grades[i] for i, row in enumerate(counts) for j, c in enumerate(row) for _ in range(c)]
    second = [grades[j] for i, row in enumerate(counts) for j, c in enumerate(row) for _ in range(c)]
    kappa = cohen_kappa(first, second)
    assert (kappa.value, kappa.low, kappa.high) == pytest.approx((0.3449, 0.2030, 0.4868), abs=5e-5)
    assert str(kappa) == "0.345 [0.203, 0.487] n=88"


def test_kappa_when_chance_explains_everything_or_nothing() -> None:
    always = ["approve"] * 40
    # Both gave one same answer: chance agreement is 1, kappa 0/0 (scikit-learn: NaN).
    assert cohen_kappa(always, always) == Kappa(None, None, None, 40)
    assert str(cohen_kappa(always, always)) == "undefined: one same answer throughout (n=40)"
    # One answer each, different ones: scikit-learn says 0 and so do we.
    assert cohen_kappa(always, ["remove"] * 40).value == sk.cohen_kappa_score(always, ["remove"] * 40) == 0.0
    mixed = ["approve", "remove"] * 20
    assert cohen_kappa(mixed, mixed) == Kappa(1.0, 1.0, 1.0, 40)
    assert str(cohen_kappa(mixed[:10], mixed[:10])) == "not enough data (n=10)"


def test_majority_agreement_skips_ties_and_lonely_verdicts() -> None:
    verdicts: list[tuple[int, str, bool]] = []
    for item in range(40):
        # ana and ben always agree; cy disagrees with both on the first ten items.
        verdicts += [(item, "ana", True), (item, "ben", True), (item, "cy", item >= 10)]
    verdicts.append((99, "dee", False))  # nobody else judged item 99
    result = majority_agreement(verdicts)
    assert set(result) == {"ana", "ben", "cy", "dee"}
    # On the first ten, ana's others (ben yes, cy no) tie: skipped.
    assert (result["ana"].value, result["ana"].count) == (1.0, 30)
    assert (result["cy"].value, result["cy"].count) == (0.75, 40)
    assert (result["dee"].value, result["dee"].count) == (None, 0)


def test_majority_agreement_takes_the_most_common_answer_of_several() -> None:
    answers = {"ana": "remove", "ben": "remove", "cy": "approve", "dee": "escalate"}
    result = majority_agreement([(item, who, a) for item in range(30) for who, a in answers.items()])
    # cy's others: remove twice, escalate once: remove is the majority, cy disagrees.
    assert (result["cy"].value, result["dee"].value) == (0.0, 0.0)
    # ana's others: remove, approve, escalate once each: a tie, no majority.
    assert result["ana"].count == 0
    with pytest.raises(ValueError, match="'ana' gave two verdicts on 1"):
        majority_agreement([(1, "ana", True), (1, "ana", False)])


@pytest.fixture(scope="module")
def known_curve() -> list[tuple[float, int, int]]:
    # (score, items, true positives): 10 % true up to 0.4, half at 0.5, all from 0.6 on.
    return [(k / 10, 100, 10) for k in range(1, 5)] + [(0.5, 100, 50)] + [(k / 10, 100, 100) for k in range(6, 10)]


def curve_of(levels: list[tuple[float, int, int]]) -> tuple[Floats, Bools]:
    scores = np.concatenate([np.full(items, score) for score, items, _ in levels])
    truth = np.concatenate([np.arange(items) < positives for _, items, positives in levels])
    return scores, truth


def test_the_lowest_threshold_for_a_precision_is_sure_of_it(known_curve: list[tuple[float, int, int]]) -> None:
    curve = pr_curve(*curve_of(known_curve))
    # From 0.6: 400 of 400 true, lower bound 0.990. From 0.5: 450 of 500, lower bound 0.871.
    assert lowest_threshold_for_precision(curve, 0.95) == 0.6
    assert lowest_threshold_for_precision(curve, 0.85) == 0.5
    # 0.9 is point precision at 0.5, but not its lower bound.
    assert lowest_threshold_for_precision(curve, 0.9) == 0.6
    assert lowest_threshold_for_precision(curve, 0.995) is None
    assert lowest_threshold_for_precision(curve, 0.95, min_sample=401) is None


def test_few_perfect_items_at_the_top_do_not_make_a_threshold(known_curve: list[tuple[float, int, int]]) -> None:
    # 20 items at 0.95, all true: their lower bound reaches 0.8, but 20 is below the minimum.
    curve = pr_curve(*curve_of([(0.3, 200, 20), (0.95, 20, 20)]))
    assert curve.precision_low[-1] > 0.8
    assert lowest_threshold_for_precision(curve, 0.8) is None


def test_the_highest_threshold_for_a_recall_keeps_it(known_curve: list[tuple[float, int, int]]) -> None:
    curve = pr_curve(*curve_of(known_curve))
    # 490 true in all: 450 from 0.5 on (0.918), 400 from 0.6 (0.816), 100 at 0.9 (0.204).
    assert highest_threshold_for_recall(curve, 0.9) == 0.5
    assert highest_threshold_for_recall(curve, 0.8) == 0.6
    assert highest_threshold_for_recall(curve, 0.2) == 0.9
    assert highest_threshold_for_recall(curve, 1.0) == 0.1
    assert highest_threshold_for_recall(curve, 1.01) is None


def test_histogram_bins_include_their_lower_edge_and_one_falls_in_the_last() -> None:
    counts = histogram([0.0, 0.049999, 0.05, 0.5, 0.999, 1.0])
    assert counts.shape == (BINS,)
    assert (counts[0], counts[1], counts[10], counts[19], counts.sum()) == (2, 1, 1, 2, 6)
    rng = np.random.default_rng(3)
    hour, next_hour = rng.random(100), rng.random(150)
    np.testing.assert_array_equal(histogram(hour) + histogram(next_hour), histogram(np.r_[hour, next_hour]))
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        histogram([0.5, 1.2])


def shifted_histograms() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    rng = np.random.default_rng(11)
    before = rng.beta(2, 5, 5000)
    return histogram(before), histogram(np.clip(before + 0.2, 0, 1))


def test_psi_is_zero_without_change_and_large_on_a_shift() -> None:
    reference, current = shifted_histograms()
    assert psi(reference, reference) == 0.0
    assert psi(reference, 3 * reference) == pytest.approx(0.0, abs=1e-15)  # shares, not counts
    assert psi(reference, current) > 0.25  # the usual "significant shift" alarm


def test_psi_by_hand_and_with_empty_bins() -> None:
    # Shares (0.5, 0.5) then (0.9, 0.1); the other bins empty on both sides add nothing.
    expected = 0.4 * np.log(1.8) + 0.4 * np.log(5)
    assert psi([50, 50] + [0] * 18, [90, 10] + [0] * 18) == pytest.approx(expected, rel=1e-12)
    # An empty bin on one side counts as a share of epsilon, not as infinity.
    with_empty = psi([50, 50] + [0] * 18, [100, 0] + [0] * 18, epsilon=1e-4)
    assert with_empty == pytest.approx(0.5 * np.log(2) + (1e-4 - 0.5) * np.log(1e-4 / 0.5))


def test_jensen_shannon_is_bounded_symmetric_and_matches_scipy() -> None:
    reference, current = shifted_histograms()
    assert jensen_shannon(reference, reference) == 0.0
    assert jensen_shannon([5, 5, 0, 0], [0, 0, 3, 9]) == pytest.approx(1.0)
    assert jensen_shannon(reference, current) == jensen_shannon(current, reference)
    assert jensen_shannon(reference, current) == pytest.approx(jensenshannon(reference, current, base=2) ** 2)
    assert 0.2 < jensen_shannon(reference, current) < 1
    rng = np.random.default_rng(5)
    for _ in range(50):
        a, b = rng.integers(0, 20, BINS), rng.integers(0, 20, BINS)
        assert 0.0 <= jensen_shannon(a, b) <= 1.0
        assert jensen_shannon(a, b) == pytest.approx(jensenshannon(a, b, base=2) ** 2, abs=1e-12)


def test_drift_refuses_empty_or_mismatched_histograms() -> None:
    with pytest.raises(ValueError, match="and some"):
        psi(np.zeros(BINS), np.ones(BINS))
    with pytest.raises(ValueError, match="one length"):
        jensen_shannon(np.ones(BINS), np.ones(BINS - 1))
