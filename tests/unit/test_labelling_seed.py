"""Seeding a labelling queue: likeness ranking, what the archive query leaves out, and the job
a seeded image becomes (it decides nothing)."""

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
from modstream.core.events import Outcome, ReviewRequest
from modstream.learn.seed import most_alike, similarity_to_nearest
from modstream.review.intake import labelling_job

from tests.commands import modstream
from tests.unit.test_label_registry import nowhere

AT = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_each_candidate_is_ranked_by_its_nearest_example_whatever_the_lengths() -> None:
    examples = np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)
    candidates = np.array([[3.0, 0.0], [1.0, 1.0], [0.0, 0.5], [-1.0, 0.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(
        similarity_to_nearest(candidates, examples), [1.0, np.sqrt(0.5), 1.0, 0.0, 0.0], atol=1e-6
    )


def archive() -> duckdb.DuckDBPyConnection:
    db = duckdb.connect()
    db.execute("CREATE TABLE verdicts (event_id VARCHAR, job_kind VARCHAR, occurred_at TIMESTAMPTZ)")
    db.execute(
        "CREATE TABLE decisions (event_id VARCHAR, decision_id VARCHAR, tenant VARCHAR, bucket VARCHAR, key VARCHAR,"
        " decision VARCHAR, scores MAP(VARCHAR, DOUBLE), triggered STRUCT(label VARCHAR, score DOUBLE,"
        " threshold DOUBLE, level VARCHAR)[], reasons VARCHAR[], model_name VARCHAR, model_version VARCHAR,"
        " model_components MAP(VARCHAR, VARCHAR), policy_id VARCHAR, policy_version VARCHAR,"
        " thresholds MAP(VARCHAR, STRUCT(review_at DOUBLE, block_at DOUBLE)), uploaded_at TIMESTAMPTZ,"
        " source VARCHAR, embedding_model VARCHAR, embedding BLOB, occurred_at TIMESTAMPTZ)"
    )
    return db


def add(db: duckdb.DuckDBPyConnection, event: str, vector: list[float], **change: object) -> None:
    row: dict[str, object] = {
        "event_id": event,
        "decision_id": f"d-{event}",
        "tenant": "acme",
        "source": "automatic",
        "embedding_model": "m:1",
        "occurred_at": "2026-11-28 12:30:00+00",
        **change,
    }
    db.execute(
        "INSERT INTO decisions VALUES (?, ?, ?, 'uploads', ?, 'allow', MAP {'emblem.red': 0.1},"
        " [{'label': 'x', 'score': 0.5, 'threshold': 0.4, 'level': 'review'}], ['threshold'], 'moderation',"
        " 'a:1+b:2', MAP {'a': '1'}, 'default', '1', MAP {'x': {'review_at': 0.4, 'block_at': 0.9}},"
        " '2026-11-28 12:29:00+00', ?, ?, ?, ?)",
        [
            row["event_id"],
            row["decision_id"],
            row["tenant"],
            f"acme/{event}.jpg",
            row["source"],
            row["embedding_model"],
            np.array(vector, dtype=np.float16).tobytes(),
            row["occurred_at"],
        ],
    )


def test_the_most_alike_unlabelled_automatic_decisions_of_the_period_become_requests_in_the_queue() -> None:
    db = archive()
    add(db, "close", [1.0, 0.1])
    add(db, "closer", [1.0, 0.0])
    add(db, "far", [0.0, 1.0])
    add(db, "closer", [0.9, 0.9], decision_id="later", occurred_at="2026-11-28 12:40:00+00")  # the first counts
    add(db, "labelled", [1.0, 0.0])
    db.execute("INSERT INTO verdicts VALUES ('labelled', 'labelling', '2026-11-28 12:50:00+00')")
    add(db, "labelled-before", [1.0, 0.0])  # its verdict came before the label existed: still a candidate
    db.execute("INSERT INTO verdicts VALUES ('labelled-before', 'audit_sample', '2026-11-28 11:00:00+00')")
    add(db, "second-only", [1.0, 0.0])  # a blind second review labels nothing for the team
    db.execute("INSERT INTO verdicts VALUES ('second-only', 'second_review', '2026-11-28 12:50:00+00')")
    add(db, "human", [1.0, 0.0], source="human")
    add(db, "other-model", [1.0, 0.0], embedding_model="m:2")
    add(db, "other-tenant", [1.0, 0.0], tenant="globex")
    add(db, "too-old", [1.0, 0.0], occurred_at="2026-11-27 12:00:00+00")
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
