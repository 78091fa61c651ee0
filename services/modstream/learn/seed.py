"""Seed a labelling queue: the archived images most like a few examples of a new label.

Reviewers should not wait for a rare concept to turn up by chance. The examples are embedded
by the serving ensemble; the archive's automatic decisions with an embedding from the same
model are ranked by cosine similarity to the nearest example, and the closest become review
requests in a labelling queue. Images already labelled since the label's definition are left
out. The archive is read in batches with a running top list, so memory stays flat however
much it holds.
"""

from base64 import b64decode
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from modstream.core.events import Embedding, ModelRef, Outcome, ReviewRequest, Trigger
from modstream.core.evidence import Candidate, unlabelled_candidates
from modstream.core.inference import ImageRejected, TritonScorer
from modstream.core.lake import open_archive
from modstream.core.settings import Settings

Floats = npt.NDArray[np.float32]
BATCH = 10_000


@dataclass(frozen=True)
class Alike:
    request: ReviewRequest
    similarity: float
    """Cosine similarity to the nearest example."""


class CannotSeed(ValueError):
    """Examples that cannot be embedded, or an ensemble that gives no embedding."""


async def embed_examples(settings: Settings, examples: dict[str, bytes]) -> tuple[Floats, str]:
    """The examples' embeddings from the serving ensemble, and the model that made them."""
    scorer = TritonScorer(settings.triton_grpc, settings.triton_model, settings.inference_timeout)
    vectors, models = [], set()
    try:
        for name, data in examples.items():
            try:
                embedding = (await scorer.score(data)).embedding
            except ImageRejected as exc:
                raise CannotSeed(f"{name}: {exc}") from exc
            if embedding is None:
                raise CannotSeed(f"{settings.triton_model} gives no embedding (the light profile has none)")
            vectors.append(vector_of(embedding))
            models.add(embedding.model)
    finally:
        await scorer.close()
    if len(models) != 1:  # the embedding model changed while the examples were scored
        raise CannotSeed(f"the examples were embedded by {sorted(models)}: run it again")
    return np.stack(vectors), models.pop()


async def seed(
    settings: Settings,
    examples: dict[str, bytes],
    *,
    count: int,
    queue: str,
    since: datetime,
    until: datetime,
    labelled_since: datetime,
    tenant: str | None = None,
) -> tuple[list["Alike"], str]:
    """The archived images of the period most like the examples (read from the archive), and
    the embedding model they were compared with."""
    vectors, model = await embed_examples(settings, examples)
    connection = open_archive(settings, since=since.date(), until=until.date())
    found = most_alike(
        connection,
        vectors,
        model,
        count=count,
        queue=queue,
        since=since,
        until=until,
        labelled_since=labelled_since,
        tenant=tenant,
    )
    return found, model


def vector_of(embedding: Embedding) -> Floats:
    return np.frombuffer(b64decode(embedding.values_base64), dtype=np.float16).astype(np.float32)


def similarity_to_nearest(candidates: npt.NDArray[np.floating[Any]], examples: Floats) -> Floats:
    """Each candidate's cosine similarity to its most similar example (archived embeddings
    come as float16 and are normalised as they are)."""
    unit = examples / np.linalg.norm(examples, axis=1, keepdims=True)
    norms = np.linalg.norm(candidates, axis=1, keepdims=True)
    return np.asarray(((candidates / np.where(norms == 0, 1, norms)) @ unit.T).max(axis=1), dtype=np.float32)


def most_alike(
    connection: duckdb.DuckDBPyConnection,
    examples: Floats,
    embedding_model: str,
    *,
    count: int,
    queue: str,
    since: datetime,
    until: datetime,
    labelled_since: datetime,
    tenant: str | None = None,
) -> list[Alike]:
    """The ``count`` archived images of the period most like the examples, as review requests
    in ``queue``, most alike first."""
    kept: list[tuple[float, Candidate]] = []
    for batch in unlabelled_candidates(
        connection,
        embedding_model,
        since=since,
        until=until,
        labelled_since=labelled_since,
        tenant=tenant,
        batch=BATCH,
    ):
        vectors = np.stack([np.frombuffer(c.embedding, dtype=np.float16) for c in batch])
        kept += [(float(s), c) for s, c in zip(similarity_to_nearest(vectors, examples), batch, strict=True)]
        kept = sorted(kept, key=lambda pair: (-pair[0], pair[1].event_id))[:count]  # ties: by event id
    return [Alike(_request(candidate, queue), similarity) for similarity, candidate in kept]


def _request(candidate: Candidate, queue: str) -> ReviewRequest:
    c = candidate
    model = (
        None
        if c.model_name is None
        else ModelRef(name=c.model_name, version=c.model_version, components=dict(c.model_components or {}))
    )
    return ReviewRequest(
        event_id=c.event_id,
        decision_id=c.decision_id,
        tenant=c.tenant,
        bucket=c.bucket,
        key=c.key,
        decision=Outcome(c.decision),
        queue=queue,
        scores=dict(c.scores or {}),
        triggered=[Trigger(**t) for t in c.triggered or []],
        reasons=list(c.reasons or []),
        model=model,
        policy_id=c.policy_id,
        policy_version=c.policy_version,
        thresholds=dict(c.thresholds or {}),
        uploaded_at=c.uploaded_at,
    )
