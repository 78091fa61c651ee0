"""Seeding a labelling queue: likeness ranking, what the archive query leaves out, and the job
a seeded image becomes (it decides nothing)."""

from base64 import b64encode
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
from modstream.core.events import (
    Embedding,
    JobKind,
    ModelRef,
    ModerationDecision,
    Outcome,
    Record,
    ReviewRequest,
    ReviewVerdict,
    Thresholds,
    Trigger,
)
from modstream.learn.seed import most_alike, similarity_to_nearest
from modstream.review.intake import labelling_job

from tests.commands import modstream
from tests.evidence_records import memory_archive, verdict_of
from tests.unit.test_label_registry import nowhere

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_each_candidate_is_ranked_by_its_nearest_example_whatever_the_lengths() -> None:
    examples = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    candidates = np.array([[3.0, 0.0], [1.0, 1.0], [0.0, 0.5], [-1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(
        similarity_to_nearest(candidates, examples), [1.0, np.sqrt(0.5), 1.0, 0.0, 0.0], atol=1e-6
    )


def decision(
    event: str,
    vector: list[float],
    *,
    decision_id: str | None = None,
    tenant: str = "acme",
    source: Literal["automatic", "human", "retroactive"] = "automatic",
    embedding_model: str = "m:1",
    at: datetime = datetime(2026, 11, 28, 12, 30, tzinfo=UTC),
) -> ModerationDecision:
    """An archived decision on ``event`` whose image embeds as ``vector``."""
    return ModerationDecision(
        decision_id=decision_id or f"d-{event}",
        event_id=event,
        tenant=tenant,
        bucket="uploads",
        key=f"acme/{event}.jpg",
        occurred_at=at,
        uploaded_at=datetime(2026, 11, 28, 12, 29, tzinfo=UTC),
        decision=Outcome.ALLOW,
        scores={"emblem.red": 0.1},
        triggered=[Trigger(label="x", score=0.5, threshold=0.4, level="review")],
        reasons=["threshold"],
        model=ModelRef(name="moderation", version="a:1+b:2", components={"a": "1"}),
        embedding=Embedding(
            model=embedding_model,
            dims=len(vector),
            values_base64=b64encode(np.array(vector, dtype=np.float16).tobytes()).decode(),
        ),
        policy_id="default",
        policy_version="1",
        source=source,
        thresholds={"x": Thresholds(review_at=0.4, block_at=0.9)},
        latency_ms=15.0,
    )


def verdict(on: ModerationDecision, kind: JobKind, at: datetime) -> ReviewVerdict:
    """A reviewer's verdict of ``kind`` on the decision ``on``, given at ``at``."""
    queue = "label-emblem-red" if kind == "labelling" else "audit"
    return verdict_of(on, kind=kind, at=at, labels=[], verdict_id=f"v-{on.event_id}", queue=queue)


def test_the_most_alike_unlabelled_automatic_decisions_of_the_period_become_requests_in_the_queue() -> None:
    labelled = decision("labelled", [1.0, 0.0])
    labelled_before = decision("labelled-before", [1.0, 0.0])
    second_only = decision("second-only", [1.0, 0.0])
    records: list[tuple[str, Record]] = [
        ("decisions", decision("close", [1.0, 0.1])),
        ("decisions", decision("closer", [1.0, 0.0])),
        ("decisions", decision("far", [0.0, 1.0])),
        # A later decision on the same event: the first counts.
        (
            "decisions",
            decision("closer", [0.9, 0.9], decision_id="later", at=datetime(2026, 11, 28, 12, 40, tzinfo=UTC)),
        ),
        ("decisions", labelled),
        ("verdicts", verdict(labelled, "labelling", datetime(2026, 11, 28, 12, 50, tzinfo=UTC))),
        # Its verdict came before the label existed: still a candidate.
        ("decisions", labelled_before),
        ("verdicts", verdict(labelled_before, "audit_sample", datetime(2026, 11, 28, 11, tzinfo=UTC))),
        # A blind second review labels nothing for the team.
        ("decisions", second_only),
        ("verdicts", verdict(second_only, "second_review", datetime(2026, 11, 28, 12, 50, tzinfo=UTC))),
        ("decisions", decision("human", [1.0, 0.0], source="human")),
        ("decisions", decision("other-model", [1.0, 0.0], embedding_model="m:2")),
        ("decisions", decision("other-tenant", [1.0, 0.0], tenant="globex")),
        ("decisions", decision("too-old", [1.0, 0.0], at=datetime(2026, 11, 27, 12, tzinfo=UTC))),
    ]
    db = memory_archive(records)
    found = most_alike(
        db,
        np.array([[1.0, 0.0]], dtype=np.float32),
        "m:1",
        count=4,
        queue="label-emblem-red",
        since=AT,
        until=datetime(2026, 11, 29, tzinfo=UTC),
        labelled_since=AT,
        tenant="acme",
    )
    # Equally alike ones in event id order.
    assert [a.request.event_id for a in found] == ["closer", "labelled-before", "second-only", "close"]
    assert found[0].similarity == 1.0 and found[0].request.decision_id == "d-closer"
    request = found[0].request
    assert (request.queue, request.decision, request.tenant, request.key) == (
        "label-emblem-red",
        Outcome.ALLOW,
        "acme",
        "acme/closer.jpg",
    )
    assert request.model is not None and request.model.components == {"a": "1"}
    assert request.thresholds["x"].review_at == 0.4 and request.triggered[0].label == "x"


def test_a_labelling_job_has_its_own_id_and_decides_nothing() -> None:
    request = ReviewRequest(
        event_id="e1",
        tenant="acme",
        bucket="uploads",
        key="acme/e1.jpg",
        decision_id="d1",
        decision=Outcome.ALLOW,
        queue="label-emblem-red",
        scores={},
        triggered=[],
        reasons=[],
        model=None,
        policy_id="default",
        policy_version="1",
        uploaded_at=AT,
        double_review_rate=1.0,
    )
    job = labelling_job(request, "emblem.red", AT)
    assert (job.job_id, job.kind, job.event_id, job.queue) == (
        "e1:label:emblem.red",
        "labelling",
        "e1",
        "label-emblem-red",
    )
    assert not job.decides and not job.wants_second_review  # even at a double review rate of 1
    assert job.labelling_for == "emblem.red" and labelling_job(request, "a.b").labelling_for == "a.b"


def test_seeding_refuses_a_bad_queue_before_asking_anything_and_names_an_unreachable_redis(tmp_path: Path) -> None:
    example = tmp_path / "example.jpg"
    example.write_bytes(b"not read before the checks")
    bad = modstream(nowhere(tmp_path), "labels", "seed", "emblem.red", "--example", str(example), "--queue", "Bad Q")
    assert bad.returncode == 2 and "refused: 'Bad Q' is not a queue name" in bad.stderr, bad.stderr
    unreachable = modstream(nowhere(tmp_path), "labels", "seed", "emblem.red", "--example", str(example))
    assert unreachable.returncode == 1 and "cannot reach Redis" in unreachable.stderr, unreachable.stderr
