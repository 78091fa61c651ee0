"""A label only the shadow scores: its score distribution and its agreement with reviewers,
against numbers worked out by hand."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import pytest
from modstream import cli
from modstream.core.events import JobKind, ModelRef, Outcome, Record, ReviewVerdict, ShadowScore
from modstream.core.evidence import current_verdicts
from modstream.core.settings import Settings, get_settings
from modstream.models import shadow_scores
from modstream.models.compare import (
    as_plain,
    bar,
    compare,
    reviewer_agreement,
    score_distribution,
)
from typer.testing import CliRunner

SERVING = ModelRef(name="moderation", version="heads:1")
SHADOW = ModelRef(name="moderation_shadow", version="heads:2")
LABEL = "emblem.red"
DEFINED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def shadowed(event_id: str, score: float | None) -> ShadowScore:
    """A shadow record: both score nsfw, only the shadow scores the new label (when given)."""
    return ShadowScore(
        event_id=event_id,
        tenant="acme",
        bucket="uploads",
        key=f"{event_id}.jpg",
        serving_model=SERVING,
        serving_scores={"nsfw": 0.1},
        serving_decision=Outcome.ALLOW,
        shadow_model=SHADOW,
        shadow_scores={"nsfw": 0.1} | ({} if score is None else {LABEL: score}),
        shadow_decision=Outcome.ALLOW,
        policy_id="default",
        policy_version="1",
    )


def verdict(
    event_id: str,
    named: bool,
    at: datetime = DEFINED + timedelta(hours=1),
    kind: JobKind = "threshold_review",
    decided: Literal["approve", "remove"] = "approve",
) -> ReviewVerdict:
    return ReviewVerdict(
        event_id=event_id,
        tenant="acme",
        bucket="uploads",
        key=f"{event_id}.jpg",
        occurred_at=at,
        job_id=f"job-{event_id}",
        job_kind=kind,
        queue="default",
        verdict=decided,
        labels=[LABEL] if named else [],
        reviewer="rita",
        review_seconds=3.0,
        automatic_decision_id=f"d-{event_id}",
        human_decision_id=None if kind == "second_review" else f"h-{event_id}",
        scores={},
        model=SERVING,
        policy_id="default",
        policy_version="1",
    )


def scenario() -> tuple[list[ShadowScore], list[ReviewVerdict]]:
    """20 labelled images: 10 the shadow scores >= 0.5 (8 named by the reviewer, 2 not), 10
    below (2 named, 8 not); around them, verdicts that must not count."""
    high = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]  # p0 .. p9
    low = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45]  # n0 .. n9
    records = [shadowed(f"p{i}", s) for i, s in enumerate(high)] + [shadowed(f"n{i}", s) for i, s in enumerate(low)]
    records += [shadowed("unreviewed", 0.99), shadowed("early", 0.9), shadowed("seconded", 0.1)]
    verdicts = [verdict(f"p{i}", named=i < 8) for i in range(10)] + [verdict(f"n{i}", named=i < 2) for i in range(10)]
    verdicts += [
        # p0's latest verdict names the label (counted above); an older one did not.
        verdict("p0", named=False, at=DEFINED + timedelta(minutes=30)),
        # n9's verdict at the very moment of the definition counts; one from before does not.
        verdict("n9", named=True, at=DEFINED - timedelta(days=1)),
        # Given before the label existed: says nothing about it, so "early" is not labelled.
        verdict("early", named=False, at=DEFINED - timedelta(seconds=1)),
        # A blind second review is no truth: "seconded" is not labelled.
        verdict("seconded", named=True, kind="second_review"),
        # A verdict on an image the shadow never scored.
        verdict("elsewhere", named=True),
    ]
    verdicts[19] = verdict("n9", named=False, at=DEFINED)
    return records, verdicts


def test_agreement_with_reviewers_matches_the_hand_computation() -> None:
    records, verdicts = scenario()
    result = reviewer_agreement(records, verdicts, LABEL, since=DEFINED, at=0.5)
    # 20 labelled, 10 positives; 10 predicted (p0 scores exactly 0.5: reaching counts), 8 of them named.
    assert (result.labelled, result.positives, result.predicted, result.true_positives) == (20, 10, 10, 8)
    assert (result.since, result.at) == (DEFINED, 0.5)
    # precision 8/10, recall 8/10, agreement (8 + 8)/20, with Wilson's 95 % intervals:
    # 8/10 -> centre (0.8 + 1.96²/20) / (1 + 1.96²/10) = 0.71675, half 0.22658 -> [0.4902, 0.9433]
    # 16/20 -> centre 0.75166, half 0.16768 -> [0.5840, 0.9193]
    for rate, n, low, high in (
        (result.precision, 10, 0.4902, 0.9433),
        (result.recall, 10, 0.4902, 0.9433),
        (result.agreement, 20, 0.5840, 0.9193),
    ):
        assert rate.value == pytest.approx(0.8)
        assert rate.low == pytest.approx(low, abs=1e-4) and rate.high == pytest.approx(high, abs=1e-4)
        assert (rate.n, rate.count) == (n, n)
    assert str(result.precision) == "0.800 [0.490, 0.943] n=10"


def test_a_higher_threshold_and_no_definition_time() -> None:
    records, verdicts = scenario()
    # At 0.8: p6..p9 predicted (0.8, 0.85, 0.9, 0.95); p6 and p7 named, p8 and p9 not.
    # Without a definition time every verdict counts: "early" (0.9, not named) is labelled too
    # and predicted; n9's latest verdict is still the one at DEFINED (not named).
    result = reviewer_agreement(records, verdicts, LABEL, at=0.8)
    assert (result.labelled, result.positives, result.predicted, result.true_positives) == (21, 10, 5, 2)
    assert result.precision.value == pytest.approx(2 / 5)
    assert result.recall.value == pytest.approx(2 / 10)
    # agreeing: the 2 true positives and the 21 - 10 - 3 = 8 negatives not predicted
    assert result.agreement.value == pytest.approx(10 / 21)


def test_the_latest_verdict_counts_and_second_reviews_never() -> None:
    _, verdicts = scenario()
    counting = current_verdicts(verdicts, since=DEFINED)
    assert counting["p0"].occurred_at == DEFINED + timedelta(hours=1) and LABEL in counting["p0"].labels
    assert counting["n9"].occurred_at == DEFINED and counting["n9"].labels == []
    assert "early" not in counting and "seconded" not in counting
    assert "early" in current_verdicts(verdicts)  # no definition time: every verdict


def test_nothing_labelled_gives_no_rates() -> None:
    records, _ = scenario()
    result = reviewer_agreement(records, [], LABEL)
    assert (result.labelled, result.positives, result.predicted) == (0, 0, 0)
    assert result.precision.value is None and str(result.agreement) == "not enough data (n=0)"
    with pytest.raises(ValueError, match=r"the threshold must lie in \[0, 1\], not 1.5"):
        reviewer_agreement(records, [], LABEL, at=1.5)


def test_score_distribution_matches_the_hand_computation() -> None:
    scores = [i / 10 for i in range(11)]  # 0.0, 0.1, ..., 1.0
    found = score_distribution(scores)
    # Linear interpolation between order statistics: position (11 - 1) q.
    assert found.n == 11 and (found.min, found.max) == (0.0, 1.0)
    assert [found.q1, found.median, found.q3, found.p90, found.p99] == pytest.approx([0.25, 0.5, 0.75, 0.9, 0.99])
    # One score a bin; 1.0 shares the last bin with 0.9.
    assert found.histogram == [1, 1, 1, 1, 1, 1, 1, 1, 1, 2]
    assert bar(found.histogram) == "▄▄▄▄▄▄▄▄▄█"
    assert bar([0, 1, 8, 4]) == "·▁█▄" and bar([0, 0]) == "··"
    with pytest.raises(ValueError, match="needs some scores"):
        score_distribution([])
    with pytest.raises(ValueError, match=r"scores must lie in \[0, 1\]"):
        score_distribution([0.5, 1.2])


def test_compare_reports_new_labels_beside_the_shared_ones() -> None:
    records, verdicts = scenario()
    records.append(shadowed("p1", 0.55))  # a replay counts once
    (result,) = compare(records, verdicts, since={LABEL: DEFINED})
    assert (result.images, result.only_shadow, [d.label for d in result.labels]) == (23, [LABEL], ["nsfw"])
    (new,) = result.new_labels
    assert new.label == LABEL and new.scores.n == 23 and new.scores.max == 0.99
    # p0..p9, n0..n9, unreviewed 0.99, early 0.9, seconded 0.1, by bin of 0.1:
    assert new.scores.histogram == [2, 3, 2, 2, 2, 2, 2, 2, 2, 4]
    assert (new.reviewers.labelled, new.reviewers.true_positives) == (20, 8)
    plain = json.loads(json.dumps(as_plain(result)))
    assert plain["new_labels"][0]["reviewers"]["since"] == "2026-11-20T12:00:00+00:00"
    assert plain["new_labels"][0]["reviewers"]["precision"]["value"] == pytest.approx(0.8)
    assert plain["new_labels"][0]["scores"]["histogram"] == new.scores.histogram
    # A label without a definition time counts every verdict; without new labels, nothing new.
    (undated,) = compare(records, verdicts)
    assert undated.new_labels[0].reviewers.labelled == 21 and undated.new_labels[0].reviewers.since is None
    (plain_pair,) = compare([shadowed("x", None)])
    assert plain_pair.new_labels == [] and as_plain(plain_pair)["new_labels"] == []


def test_the_command_reads_both_topics_and_asks_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    records, verdicts = scenario()
    read: list[str] = []

    async def read_records(
        settings: Settings, topic: str, kind: type[Record], follow: bool, idle: float
    ) -> AsyncIterator[Record]:
        read.append(topic)
        for record in records if kind is ShadowScore else verdicts:
            yield record

    asked: list[set[str]] = []

    async def definition_times(settings: Settings, labels: set[str], warn: object) -> dict[str, datetime]:
        asked.append(set(labels))
        return {LABEL: DEFINED}

    monkeypatch.setattr(shadow_scores, "read_records", read_records)
    monkeypatch.setattr(shadow_scores, "definition_times", definition_times)
    settings = get_settings()
    result = CliRunner().invoke(cli.app, ["model", "compare", "--json", "--at", "0.8", "--since", "2026-11-01"])
    assert result.exit_code == 0, result.output
    assert read == [settings.topic_shadow, settings.topic_review_verdicts] and asked == [{LABEL}]
    (new,) = json.loads(result.output)["new_labels"]
    # The definition is later than --since: it counts. At 0.8 (see above, less "early"): 4 predicted, 2 named.
    assert new["reviewers"]["since"] == "2026-11-20T12:00:00+00:00"
    assert (new["reviewers"]["labelled"], new["reviewers"]["predicted"], new["reviewers"]["true_positives"]) == (
        20,
        4,
        2,
    )
    # Without a new label the verdicts are not read.
    records = [shadowed("x", None)]
    read.clear()
    result = CliRunner().invoke(cli.app, ["model", "compare", "--json"])
    assert result.exit_code == 0 and read == [settings.topic_shadow]
