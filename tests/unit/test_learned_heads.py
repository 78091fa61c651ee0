"""Learned heads: the served graph, the version files and their checks, the fit and its refusals."""

from base64 import b64encode
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from modstream.core.events import (
    BankAction,
    BankMatch,
    Embedding,
    JobKind,
    ModerationDecision,
    Outcome,
    ReviewVerdict,
)
from modstream.core.stats import Rate
from modstream.learn.examples import labelled_examples
from modstream.learn.train import MIN_EACH, TooFewExamples, fit_head, stratified_split
from modstream.models.candidate import CandidateRefused
from modstream.models.heads import (
    EMBEDDING_DIMS,
    Cards,
    Counts,
    HeadCard,
    check_heads_candidate,
    no_heads,
    read_heads,
)

from tests.evidence_records import memory_archive, verdict_of

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def card(label: str, embedding_model: str = "efficientnet_lite0:1") -> HeadCard:
    share = Rate(0.9, 0.7, 1.0, 8.0, 8)
    return HeadCard(
        label=label,
        embedding_model=embedding_model,
        trained_at=AT,
        trained_by="test",
        window_start=AT,
        window_end=AT,
        train=Counts(positives=12, negatives=12),
        held_out=Counts(positives=4, negatives=4),
        threshold=0.5,
        precision=share,
        recall=share,
        f1=share,
        average_precision=0.9,
        curve=[],
        regularisation=1.0,
        training_seconds=0.1,
    )


def served(folder: Path, embeddings: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"embedding": embeddings.astype(np.float32)})[0])


def test_the_served_graph_is_the_sigmoid_of_each_heads_linear_score(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=EMBEDDING_DIMS) / 40, rng.normal(size=EMBEDDING_DIMS) / 40
    heads = no_heads().with_head(w1, 0.3, card("emblem.red")).with_head(w2, -0.2, card("scam.layout"))
    heads.write(tmp_path)
    x = rng.normal(size=(5, EMBEDDING_DIMS))
    expected = 1 / (1 + np.exp(-np.column_stack([x @ w1 + 0.3, x @ w2 - 0.2])))
    np.testing.assert_allclose(served(tmp_path, x), expected, atol=1e-5)
    assert (tmp_path / "labels.txt").read_text() == "emblem.red\nscam.layout\n"
    again = read_heads(tmp_path)
    assert again.labels == ["emblem.red", "scam.layout"] and again.cards == heads.cards


def test_a_head_trained_again_replaces_its_column_and_keeps_the_others(tmp_path: Path) -> None:
    first = (
        no_heads()
        .with_head(np.ones(EMBEDDING_DIMS), 0.0, card("a.x"))
        .with_head(np.zeros(EMBEDDING_DIMS), 1.0, card("b.y"))
    )
    again = first.with_head(np.full(EMBEDDING_DIMS, 2.0), 0.5, card("a.x"))
    assert again.labels == ["b.y", "a.x"]
    np.testing.assert_allclose(again.weights[:, 0], 0.0)
    np.testing.assert_allclose(again.bias, [1.0, 0.5])


def test_no_heads_is_a_graph_with_no_columns(tmp_path: Path) -> None:
    no_heads().write(tmp_path)
    assert served(tmp_path, np.zeros((3, EMBEDDING_DIMS))).shape == (3, 0)
    assert (tmp_path / "labels.txt").read_text() == ""


def repository_with_embedding(root: Path) -> Path:
    (root / "efficientnet_lite0" / "1").mkdir(parents=True)
    (root / "efficientnet_lite0" / "1" / "model.onnx").write_bytes(b"")
    (root / "efficientnet_lite0" / "config.pbtxt").write_text('name: "efficientnet_lite0"\n')
    return root


def test_heads_on_another_embedding_model_or_a_card_that_does_not_fit_are_refused(tmp_path: Path) -> None:
    root = repository_with_embedding(tmp_path / "repository")
    good = tmp_path / "good"
    no_heads().with_head(np.zeros(EMBEDDING_DIMS), 0.0, card("emblem.red")).write(good)
    check_heads_candidate(root, good / "model.onnx", ["emblem.red"])
    with pytest.raises(CandidateRefused, match=r"describes heads \['emblem.red'\] but the labels file names"):
        check_heads_candidate(root, good / "model.onnx", ["emblem.blue"])
    foreign = tmp_path / "foreign"
    no_heads().with_head(np.zeros(EMBEDDING_DIMS), 0.0, card("emblem.red", "efficientnet_lite0:2")).write(foreign)
    with pytest.raises(CandidateRefused, match=r"another embedding model than the serving efficientnet_lite0:1: "):
        check_heads_candidate(root, foreign / "model.onnx", ["emblem.red"])
    (good / "card.json").write_text("{not json")
    with pytest.raises(CandidateRefused, match="not a heads card"):
        check_heads_candidate(root, good / "model.onnx", ["emblem.red"])


def test_too_few_examples_of_either_kind_are_refused_saying_how_many_more() -> None:
    positive = np.array([True] * 5 + [False] * 30)
    with pytest.raises(
        TooFewExamples, match=rf"5 positive and 30 negative .* at least {MIN_EACH} of each \(7 more positives\)"
    ):
        fit_head("emblem.red", np.zeros((35, EMBEDDING_DIMS)), positive)


def test_the_held_out_part_is_stratified_and_disjoint() -> None:
    positive = np.array([True] * 16 + [False] * 40)
    split = stratified_split(positive)
    assert (positive[split.held_out].sum(), (~positive[split.held_out]).sum()) == (4, 10)
    assert not set(split.train) & set(split.held_out) and len(split.train) + len(split.held_out) == 56


def test_a_separable_concept_is_learned_and_the_served_weights_equal_the_fit() -> None:
    rng = np.random.default_rng(3)
    positive = np.arange(80) < 32
    x = rng.normal(size=(80, EMBEDDING_DIMS)) + np.where(positive[:, None], 1.5, 0.0) * (np.arange(EMBEDDING_DIMS) < 64)
    fitted = fit_head("emblem.red", x, positive)
    assert (fitted.precision.value or 0) >= 0.8 and (fitted.recall.value or 0) >= 0.8
    held = x[fitted.split.held_out]
    np.testing.assert_allclose(
        1 / (1 + np.exp(-(held @ fitted.weights + fitted.bias))), fitted.held_out_scores, atol=1e-4
    )
    assert [p.threshold for p in fitted.curve] == sorted(p.threshold for p in fitted.curve)
    f1 = fitted.f1
    assert f1.value is not None and f1.low is not None and f1.high is not None and f1.low <= f1.value <= f1.high


def test_held_out_rates_need_no_minimum_and_nothing_counted_is_undefined_on_the_card() -> None:
    from modstream.learn.train import pr_points

    (point,) = pr_points(np.array([0.2, 0.2]), np.array([True, False]))
    assert (point.precision.value, point.precision.count, point.recall.value) == (0.5, 2, 1.0)
    nothing = Rate(None, None, None, 0.0, 0)
    cards = Cards(heads={"emblem.red": card("emblem.red").model_copy(update={"precision": nothing, "f1": nothing})})
    assert Cards.model_validate_json(cards.model_dump_json()) == cards


def archived_decision(event: str, embedding_model: str | None) -> ModerationDecision:
    """A decision on ``event`` at noon, with an embedding from ``embedding_model`` (none:
    decided by a hash bank, without the classifier)."""
    vector = b64encode(np.arange(4, dtype=np.float16).tobytes()).decode()
    return ModerationDecision(
        decision_id=f"d-{event}",
        event_id=event,
        tenant="acme",
        bucket="uploads",
        key=f"acme/{event}.jpg",
        occurred_at=datetime(2026, 11, 28, 12, tzinfo=UTC),
        uploaded_at=datetime(2026, 11, 28, 11, 59, tzinfo=UTC),
        decision=Outcome.ALLOW,
        embedding=None if embedding_model is None else Embedding(model=embedding_model, dims=4, values_base64=vector),
        bank_match=(
            None
            if embedding_model is not None
            else BankMatch(bank="known-good", entry_id="e1", signal="sha256", distance=0, action=BankAction.ALLOW)
        ),
        policy_id="default",
        policy_version="1",
        latency_ms=15.0,
    )


def archived_verdict(
    on: ModerationDecision, labels: list[str], minute: tuple[int, int], kind: JobKind
) -> ReviewVerdict:
    """A verdict of ``kind`` on the decision ``on`` naming ``labels``, given at (hour, minute)."""
    at = datetime(2026, 11, 28, *minute, tzinfo=UTC)
    return verdict_of(on, kind=kind, at=at, labels=labels, verdict_id=f"v-{on.event_id}-{minute[0]}{minute[1]:02d}")


def test_examples_are_the_latest_first_review_per_image_from_the_window_and_one_embedding_model() -> None:
    decisions = {
        event: archived_decision(event, model)
        for event, model in [("before", "m:1"), ("a", "m:1"), ("b", "m:1"), ("c", "m:2"), ("d", None)]
    }
    verdicts = [
        archived_verdict(decisions["before"], ["emblem.red"], (11, 0), "threshold_review"),  # before the window
        archived_verdict(decisions["a"], [], (12, 10), "audit_sample"),
        archived_verdict(decisions["a"], ["emblem.red"], (12, 20), "threshold_review"),  # the latest counts
        archived_verdict(decisions["a"], [], (12, 30), "second_review"),  # blind second reviews never count
        archived_verdict(decisions["b"], ["other"], (12, 15), "audit_sample"),
        archived_verdict(decisions["c"], ["emblem.red"], (12, 16), "audit_sample"),  # another embedding model
        archived_verdict(decisions["d"], [], (12, 17), "audit_sample"),  # no embedding: decided by a bank
    ]
    db = memory_archive([*(("decisions", d) for d in decisions.values()), *(("verdicts", v) for v in verdicts)])
    examples = labelled_examples(db, "emblem.red", "m:1", AT, datetime(2026, 11, 29, tzinfo=UTC))
    assert examples.event_ids == ["b", "a"] and examples.positive.tolist() == [False, True]
    assert examples.other_models == {"m:2": 1} and examples.without_embedding == 1
    np.testing.assert_array_equal(examples.embeddings[0], [0, 1, 2, 3])


def test_another_embedding_version_does_not_serve_while_heads_trained_on_this_one_do(tmp_path: Path) -> None:
    from modstream.models.lifecycle import DeployFailed, serve
    from modstream.models.repository import Repository

    root = repository_with_embedding(tmp_path)
    (root / "efficientnet_lite0" / "2").mkdir()
    (root / "efficientnet_lite0" / "2" / "model.onnx").write_bytes(b"")
    (root / "heads").mkdir()
    (root / "heads" / "config.pbtxt").write_text('name: "heads"\n')
    no_heads().with_head(np.zeros(EMBEDDING_DIMS), 0.0, card("emblem.red")).write(root / "heads" / "1")

    class NoTriton:
        def __getattr__(self, name: str) -> object:
            raise AssertionError(f"Triton was asked to {name}")

    embedding = Repository(root, "efficientnet_lite0")
    embedding.pin(1)
    with pytest.raises(DeployFailed, match=r"trained on another embedding model: emblem.red \(efficientnet_lite0:1\)"):
        serve(embedding, NoTriton(), 2, print)  # type: ignore[arg-type]
    assert embedding.serving() == 1
