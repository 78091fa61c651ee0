"""The quality report, threshold advice and backtest over samples built in memory (pure)."""

from collections.abc import Callable

import numpy as np
import pytest
from modstream.core.events import Thresholds
from modstream.core.evidence import LabelColumns, Sample
from modstream.quality.advice import NoAdvice, advise, backtest
from modstream.quality.report import quality_report
from modstream.quality.sample import stratum_weights
from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_score, recall_score

LABELS = ("nsfw", "nsfl")


def census(size: int, seed: int) -> Sample:
    """Decisions every one of which a reviewer labelled: the weights are all 1."""
    rng = np.random.default_rng(seed)
    scores = {label: rng.random(size) for label in LABELS}
    truth = {label: rng.random(size) < scores[label] for label in LABELS}
    reached = np.maximum(scores["nsfw"] >= 0.4, scores["nsfl"] >= 0.35)
    blocked = np.maximum(scores["nsfw"] >= 0.85, scores["nsfl"] >= 0.8)
    outcome = np.where(blocked, "block", np.where(reached, "review", "allow"))
    return Sample(
        tenant=np.full(size, "t"),
        model_version=np.full(size, "1"),
        outcome=outcome,
        audit_rate=np.full(size, 1.0),
        audit_sample=outcome != "review",
        verdict=np.where(truth["nsfw"] | truth["nsfl"], "remove", "approve"),
        labels={
            label: LabelColumns(
                score=scores[label],
                review_at=np.full(size, review),
                block_at=np.full(size, block),
                truth=truth[label],
            )
            for label, review, block in (("nsfw", 0.4, 0.85), ("nsfl", 0.35, 0.8))
        },
    )


def test_with_every_decision_labelled_the_report_equals_scikit_learn() -> None:
    sample = census(600, seed=7)
    report = quality_report(sample)
    for row in report.labels:
        columns = sample.labels[row.label]
        for at, threshold in ((row.at_review, columns.review_at[0]), (row.at_block, columns.block_at[0])):
            predicted = columns.score >= threshold
            assert at.threshold == threshold
            assert at.precision.value == pytest.approx(precision_score(columns.truth, predicted), abs=1e-12)
            assert at.recall.value == pytest.approx(recall_score(columns.truth, predicted), abs=1e-12)
            assert at.f1.value == pytest.approx(f1_score(columns.truth, predicted), abs=1e-12)
    (whole,) = report.slices
    true_sets = np.column_stack([sample.labels[label].truth for label in sorted(LABELS)])
    predicted_sets = np.column_stack(
        [sample.labels[label].score >= sample.labels[label].review_at for label in sorted(LABELS)]
    )
    assert whole.hamming_loss.value == pytest.approx(hamming_loss(true_sets, predicted_sets), abs=1e-12)
    audited = sample.outcome != "review"
    human = np.where(sample.verdict[audited] == "remove", "block", "allow")
    assert whole.agreement.value == pytest.approx(accuracy_score(sample.outcome[audited], human), abs=1e-12)
    assert whole.gaps == [] and whole.labelled == whole.decisions == 600


def test_labelled_decisions_weigh_for_their_stratum_and_unlabelled_strata_are_gaps() -> None:
    outcome = np.array(["allow"] * 100 + ["review"] * 10 + ["block"] * 5)
    verdict = np.array([""] * 100 + ["approve"] * 10 + [""] * 5)
    verdict[:4] = "approve"  # 4 of 100 allows audited
    sample = Sample(
        tenant=np.full(115, "t"),
        model_version=np.full(115, "1"),
        outcome=outcome,
        audit_rate=np.full(115, 0.04),
        audit_sample=np.arange(115) < 4,
        verdict=verdict,
    )
    weights, gaps = stratum_weights(sample)
    assert weights[:4].tolist() == [25.0] * 4 and weights[4:100].sum() == 0
    assert weights[100:110].tolist() == [1.0] * 10 and weights[110:].sum() == 0
    assert [(g.outcome, g.decisions) for g in gaps] == [("block", 5)]
    assert weights.sum() == 110  # the labelled stand for every decision of their strata


def test_advice_meets_the_precision_target_and_the_backtest_counts_moves() -> None:
    sample = census(4000, seed=11)
    advice = advise(sample, "nsfw", Thresholds(review_at=0.4, block_at=0.85), target_precision=0.9, target_recall=0.8)
    assert advice.after.precision_at_block.low is not None and advice.after.precision_at_block.low >= 0.9
    assert advice.proposed.block_at < 0.9  # truth ~ score: precision 0.9 is reached below 0.9
    assert advice.after.recall_at_review.value is not None and advice.after.recall_at_review.value >= 0.8
    assert advice.proposed.review_at <= advice.proposed.block_at

    def decide(at: Thresholds) -> Callable[[dict[str, float]], str]:
        return lambda s: "block" if s["nsfw"] >= at.block_at else "review" if s["nsfw"] >= at.review_at else "allow"

    scores = [{"nsfw": s} for s in (0.1, 0.5, 0.87, 0.95)]
    moved = backtest(
        scores,
        days=2.0,
        in_force=decide(Thresholds(review_at=0.4, block_at=0.9)),
        proposal=decide(Thresholds(review_at=0.6, block_at=0.85)),
    )
    assert moved.moves == {("allow", "allow"): 1, ("review", "allow"): 1, ("review", "block"): 1, ("block", "block"): 1}
    assert (moved.changed, moved.per_day("review", proposed=False), moved.per_day("review", proposed=True)) == (
        2,
        1.0,
        0.0,
    )


def test_no_advice_without_positives() -> None:
    sample = census(200, seed=3)
    sample.labels["nsfw"].truth[:] = False
    with pytest.raises(NoAdvice, match="no reviewer gave 'nsfw'"):
        advise(sample, "nsfw", Thresholds(review_at=0.4, block_at=0.85), target_precision=0.9)
    with pytest.raises(NoAdvice, match="no decision of the period has a threshold for 'weapon'"):
        advise(sample, "weapon", Thresholds(review_at=0.4, block_at=0.85), target_precision=0.9)
