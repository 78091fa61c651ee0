from pathlib import Path

import pytest
from modstream.core.events import Outcome
from modstream.policy.thresholds import PolicyError, Thresholds, decide

T = Thresholds.model_validate(
    {
        "version": "t1",
        "labels": {"nsfw": {"review_at": 0.4, "block_at": 0.85}, "nsfl": {"review_at": 0.35, "block_at": 0.8}},
    }
)


@pytest.mark.parametrize(
    ("scores", "decision", "triggered"),
    [
        ({"nsfw": 0.0, "nsfl": 0.0, "sfw": 1.0}, Outcome.ALLOW, []),
        ({"nsfw": 0.3999, "nsfl": 0.3499}, Outcome.ALLOW, []),
        ({"nsfw": 0.4, "nsfl": 0.0}, Outcome.REVIEW, [("nsfw", 0.4, "review")]),  # exactly at review_at
        ({"nsfw": 0.8499, "nsfl": 0.0}, Outcome.REVIEW, [("nsfw", 0.4, "review")]),
        ({"nsfw": 0.85, "nsfl": 0.0}, Outcome.BLOCK, [("nsfw", 0.85, "block")]),  # exactly at block_at
        ({"nsfw": 0.5, "nsfl": 0.36}, Outcome.REVIEW, [("nsfw", 0.4, "review"), ("nsfl", 0.35, "review")]),
        ({"nsfw": 0.5, "nsfl": 0.9}, Outcome.BLOCK, [("nsfl", 0.8, "block")]),  # block wins over review
        ({"nsfw": 1.0, "nsfl": 1.0}, Outcome.BLOCK, [("nsfw", 0.85, "block"), ("nsfl", 0.8, "block")]),
        ({"sfw": 0.0}, Outcome.ALLOW, []),  # a label without thresholds never triggers
        ({}, Outcome.ALLOW, []),
    ],
)
def test_decision_rule(scores: dict[str, float], decision: Outcome, triggered: list[tuple[str, float, str]]) -> None:
    verdict = decide(scores, T)
    assert verdict.decision is decision
    assert [(t.label, t.threshold, t.level) for t in verdict.triggered] == triggered
    assert all(t.score == scores[t.label] for t in verdict.triggered)
    assert verdict.reasons == (["threshold"] if triggered else [])


def test_triggered_sorted_by_score() -> None:
    verdict = decide({"nsfw": 0.5, "nsfl": 0.7}, T)
    assert [t.label for t in verdict.triggered] == ["nsfl", "nsfw"]


def test_shipped_file_loads() -> None:
    shipped = Thresholds.load(Path(__file__).parents[2] / "config" / "thresholds.toml")
    assert shipped.version
    assert shipped.unknown_labels(["nsfl", "nsfw", "sfw"]) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'version = "v"\n[labels.nsfw]\nreview_at = 0.9\nblock_at = 0.5\n',
            "labels.nsfw: Value error, review_at (0.9)",
        ),
        ('version = "v"\n[labels.nsfw]\nreview_at = -0.1\nblock_at = 0.5\n', "labels.nsfw.review_at"),
        ('version = "v"\n[labels.nsfw]\nreview_at = 0.1\nblock_at = 1.5\n', "labels.nsfw.block_at"),
        ("[labels.nsfw]\nreview_at = 0.1\nblock_at = 0.5\n", "version: Field required"),
        ('version = "v"\n[labels.nsfw]\nreview_at = 0.1\n', "labels.nsfw.block_at: Field required"),
        ("version = \n", "not valid TOML"),
    ],
)
def test_bad_files_name_file_and_field(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(body)
    with pytest.raises(PolicyError) as caught:
        Thresholds.load(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such thresholds file"):
        Thresholds.load(tmp_path / "absent.toml")


def test_unknown_labels() -> None:
    assert T.unknown_labels(["nsfw", "sfw"]) == ["nsfl"]
