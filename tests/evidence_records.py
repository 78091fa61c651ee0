"""Archives for the unit tests of archive readers, built from the real table definitions: an
in-memory archive of any records (``memory_archive``), and a deterministic one with every kind
of row the readers meet (``evidence_archive``).

Decisions of two tenants over three days (embeddings from two model versions, hashes on most,
audit samples), with the verdicts the sampling design produces (threshold reviews, audit
samples), blind second reviews, labelling jobs, later re-reviews that change the label set,
and shadow scores. Ids and times come from the seed alone, so figures computed from it are
the same in every run.
"""

import random
from base64 import b64encode
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
from modstream.core.archive import TABLES
from modstream.core.events import (
    Embedding,
    ImageHashes,
    JobKind,
    ModelRef,
    ModerationDecision,
    Outcome,
    PdqHash,
    Record,
    ReviewVerdict,
    ShadowScore,
    Thresholds,
)

START = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
MODEL = ModelRef(name="moderation", version="3")
THRESHOLDS = {"nsfw": Thresholds(review_at=0.4, block_at=0.85), "nsfl": Thresholds(review_at=0.35, block_at=0.8)}
EMBEDDERS = ("efficientnet_lite0:1", "efficientnet_lite0:2")
NEW_LABEL = "alcohol"  # a label reviewers tick from DEFINED on, scored by no policy


def memory_archive(records: list[tuple[str, Record]]) -> duckdb.DuckDBPyConnection:
    """An in-memory archive of ``records`` ((table, record)): each table built from its real
    definition in ``core.archive``, registered under its name as ``core.lake.open_archive`` does."""
    connection = duckdb.connect()
    for table in TABLES.values():
        mine = [record for name, record in records if name == table.name]
        connection.register(table.name, table.rows(mine) if table.record else table.schema.empty_table())
    return connection


def _id(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


def _embedding(rng: random.Random, model: str, lean: float) -> Embedding:
    vector = np.array([rng.gauss(lean, 1.0) for _ in range(8)], dtype=np.float16)
    return Embedding(model=model, dims=8, values_base64=b64encode(vector.tobytes()).decode())


def _hashes(rng: random.Random) -> ImageHashes:
    return ImageHashes(
        sha256=f"{rng.getrandbits(256):064x}",
        md5=f"{rng.getrandbits(128):032x}",
        pdq=PdqHash(hex=f"{rng.getrandbits(256):064x}", quality=rng.randint(50, 100)),
    )


def decision_at(rng: random.Random, i: int, at: datetime) -> ModerationDecision:
    scores = {"nsfw": rng.betavariate(1.2, 3), "nsfl": rng.betavariate(1, 8), NEW_LABEL: rng.random()}
    blocked = any(scores[label] >= t.block_at for label, t in THRESHOLDS.items())
    reached = any(scores[label] >= t.review_at for label, t in THRESHOLDS.items())
    outcome = Outcome.BLOCK if blocked else Outcome.REVIEW if reached else Outcome.ALLOW
    return ModerationDecision(
        decision_id=_id(rng),
        event_id=_id(rng),
        tenant=("acme", "kids")[i % 2],
        bucket="uploads",
        key=f"evidence/{i:05d}.jpg",
        occurred_at=at,
        uploaded_at=at - timedelta(seconds=2),
        decision=outcome,
        scores=scores,
        model=MODEL,
        embedding=None if i % 11 == 0 else _embedding(rng, EMBEDDERS[i % 5 == 0], scores[NEW_LABEL] * 2),
        hashes=None if i % 7 == 0 else _hashes(rng),
        policy_id="default",
        policy_version="v1",
        audit_rate=0.25,
        audit_sample=outcome is not Outcome.REVIEW and rng.random() < 0.25,
        review_queue="sexual-content" if outcome is Outcome.REVIEW else None,
        thresholds=THRESHOLDS,
        latency_ms=15.0,
    )


def verdict_of(
    on: ModerationDecision,
    *,
    kind: JobKind,
    at: datetime,
    labels: list[str],
    verdict_id: str | None = None,
    human_decision_id: str | None = None,
    reviewer: str = "rita",
    queue: str = "audit",
) -> ReviewVerdict:
    """A reviewer's verdict of ``kind`` on the decision ``on``, given at ``at``, naming ``labels``."""
    return ReviewVerdict(
        verdict_id=verdict_id or f"v-{on.event_id}-{at:%H%M%S}",
        event_id=on.event_id,
        tenant=on.tenant,
        bucket=on.bucket,
        key=on.key,
        occurred_at=at,
        job_id=on.event_id + (":second" if kind == "second_review" else ""),
        job_kind=kind,
        queue=queue,
        verdict="remove" if labels else "approve",
        labels=labels,
        reviewer=reviewer,
        review_seconds=4.0,
        automatic_decision_id=on.decision_id,
        human_decision_id=None if kind == "second_review" else human_decision_id or f"h-{on.event_id}",
        scores=on.scores,
        model=on.model,
        policy_id=on.policy_id,
        policy_version=on.policy_version,
    )


def verdict_on(
    decision: ModerationDecision, rng: random.Random, *, kind: JobKind, after: timedelta, reviewer: str
) -> ReviewVerdict:
    """A verdict naming each label with its score's chance, ``after`` the decision."""
    labels = [label for label in (*THRESHOLDS, NEW_LABEL) if rng.random() < decision.scores[label]]
    verdict_id = _id(rng)
    return verdict_of(
        decision,
        kind=kind,
        at=decision.occurred_at + after,
        labels=labels,
        verdict_id=verdict_id,
        human_decision_id=None if kind == "second_review" else _id(rng),
        reviewer=reviewer,
        queue="audit" if decision.audit_sample else "sexual-content",
    )


def evidence_archive(count: int = 3000, seed: int = 21) -> list[tuple[str, Record]]:
    """(table, record) for ``count`` decisions over three days, and what followed them."""
    rng = random.Random(seed)
    records: list[tuple[str, Record]] = []
    reviewers = ("rita", "remy", "rex")
    for i in range(count):
        decision = decision_at(rng, i, START + timedelta(days=3) * i / count)
        records.append(("decisions", decision))
        first_reviewer = reviewers[i % 3]
        if decision.decision is Outcome.REVIEW or decision.audit_sample:
            kind: JobKind = "audit_sample" if decision.audit_sample else "threshold_review"
            first = verdict_on(decision, rng, kind=kind, after=timedelta(minutes=5), reviewer=first_reviewer)
            records.append(("verdicts", first))
            if i % 3 == 0:
                second = reviewers[(i + 1) % 3]
                records.append(
                    (
                        "verdicts",
                        verdict_on(decision, rng, kind="second_review", after=timedelta(minutes=9), reviewer=second),
                    )
                )
            if i % 13 == 0:  # looked at again later: the latest verdict differs from the first
                records.append(
                    (
                        "verdicts",
                        verdict_on(decision, rng, kind=kind, after=timedelta(hours=2), reviewer=first_reviewer),
                    )
                )
        elif i % 17 == 0:  # chosen for a labelling queue by likeness
            records.append(
                (
                    "verdicts",
                    verdict_on(decision, rng, kind="labelling", after=timedelta(hours=1), reviewer=first_reviewer),
                )
            )
        if i % 10 == 0:
            records.append(("shadow", _shadow(decision)))
    return records


def _shadow(decision: ModerationDecision) -> ShadowScore:
    assert decision.model is not None
    return ShadowScore(
        shadow_id=f"s-{decision.decision_id}",
        event_id=decision.event_id,
        tenant=decision.tenant,
        bucket=decision.bucket,
        key=decision.key,
        occurred_at=decision.occurred_at,
        serving_model=decision.model,
        serving_scores=decision.scores,
        serving_decision=decision.decision,
        shadow_model=ModelRef(name="moderation", version="4"),
        shadow_scores={label: min(1.0, score * 1.1) for label, score in decision.scores.items()},
        shadow_decision=decision.decision,
        policy_id=decision.policy_id,
        policy_version=decision.policy_version,
    )
