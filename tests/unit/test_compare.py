"""Shadow comparison numbers against a small set worked out by hand."""

import pytest
from modstream.core.events import ModelRef, Outcome, ShadowScore
from modstream.models.compare import compare

SERVING = ModelRef(name="image_safety", version="1")
SHADOW = ModelRef(name="image_safety_shadow", version="2")


def record(
    event_id: str,
    serving: dict[str, float],
    shadow: dict[str, float],
    decisions: tuple[Outcome, Outcome],
    shadow_model: ModelRef = SHADOW,
) -> ShadowScore:
    return ShadowScore(
        event_id=event_id,
        tenant="acme",
        bucket="uploads",
        key=f"{event_id}.jpg",
        serving_model=SERVING,
        serving_scores=serving,
        serving_decision=decisions[0],
        shadow_model=shadow_model,
        shadow_scores=shadow,
        shadow_decision=decisions[1],
        policy_id="default",
        policy_version="1",
    )


def test_differences_and_agreement_match_the_hand_computation() -> None:
    records = [
        record(
            "a", {"nsfw": 0.50, "sfw": 0.50}, {"nsfw": 0.70, "sfw": 0.30, "gore": 0.1}, (Outcome.REVIEW, Outcome.REVIEW)
        ),
        record(
            "b", {"nsfw": 0.90, "sfw": 0.10}, {"nsfw": 0.60, "sfw": 0.40, "gore": 0.0}, (Outcome.BLOCK, Outcome.REVIEW)
        ),
        record(
            "c", {"nsfw": 0.10, "sfw": 0.90}, {"nsfw": 0.10, "sfw": 0.90, "gore": 0.0}, (Outcome.ALLOW, Outcome.ALLOW)
        ),
        record(
            "d", {"nsfw": 0.20, "sfw": 0.80}, {"nsfw": 0.30, "sfw": 0.70, "gore": 0.2}, (Outcome.ALLOW, Outcome.ALLOW)
        ),
    ]
    (result,) = compare(records)
    assert (result.serving, result.shadow, result.images) == (SERVING, SHADOW, 4)
    # Three of four decisions agree (b: block vs review).
    assert result.agreement == 0.75
    nsfw, sfw = result.labels
    # nsfw differences: +0.2, -0.3, 0, +0.1 -> mean 0/4 = 0, mean |d| 0.6/4 = 0.15, max 0.3
    assert (nsfw.label, nsfw.images) == ("nsfw", 4)
    assert nsfw.mean_difference == pytest.approx(0.0)
    assert nsfw.mean_absolute == pytest.approx(0.15)
    assert nsfw.max_absolute == pytest.approx(0.3)
    # sfw differences: -0.2, +0.3, 0, -0.1
    assert sfw.mean_difference == pytest.approx(0.0)
    assert sfw.mean_absolute == pytest.approx(0.15)
    assert (result.only_serving, result.only_shadow) == ([], ["gore"])
    assert result.outcomes == {
        (Outcome.REVIEW, Outcome.REVIEW): 1,
        (Outcome.BLOCK, Outcome.REVIEW): 1,
        (Outcome.ALLOW, Outcome.ALLOW): 2,
    }


def test_a_replayed_event_counts_once_and_version_pairs_stay_apart() -> None:
    first = record("a", {"nsfw": 0.5}, {"nsfw": 0.9}, (Outcome.REVIEW, Outcome.BLOCK))
    replay = record("a", {"nsfw": 0.5}, {"nsfw": 0.9}, (Outcome.REVIEW, Outcome.BLOCK))
    other = record("a", {"nsfw": 0.5}, {"nsfw": 0.5}, (Outcome.REVIEW, Outcome.REVIEW), ModelRef(name="x", version="3"))
    by_pair = compare([first, replay, other])
    assert [(c.shadow.version, c.images, c.agreement) for c in by_pair] == [("2", 1, 0.0), ("3", 1, 1.0)]
    assert by_pair[0].labels[0].mean_difference == pytest.approx(0.4)


def test_nothing_to_compare_gives_nothing() -> None:
    assert compare([]) == []
