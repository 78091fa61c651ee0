"""Labelled examples for one label, from the decision archive: reviewers' label sets joined to
the embeddings their images were decided with.

Only verdicts given from the label's definition on count: before it, reviewers could not
tick it, so an image without it says nothing. Per image the verdict that counts is
``core.evidence``'s current one (the latest, blind second reviews left out), with the
embedding of the image's latest archived decision that has one.
"""

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import numpy.typing as npt

from modstream.core.evidence import current_verdicts, latest_embeddings, verdicts_between


@dataclass(frozen=True)
class Examples:
    """Labelled images with an embedding from ``embedding_model``, and what was left out."""

    label: str
    embedding_model: str
    event_ids: list[str]
    embeddings: npt.NDArray[np.float32]
    positive: npt.NDArray[np.bool_]
    first: datetime | None
    last: datetime | None
    other_models: dict[str, int]
    """Labelled images whose embedding is from another model version: never mixed in."""
    without_embedding: int
    """Labelled images with no archived embedding (decided by a hash bank, or by the light profile)."""


def labelled_examples(
    connection: duckdb.DuckDBPyConnection, label: str, embedding_model: str, since: datetime, until: datetime
) -> Examples:
    counted = current_verdicts(verdicts_between(connection, since, until), since)
    embedded = latest_embeddings(connection)
    verdicts = sorted(counted.values(), key=lambda v: (v.occurred_at, v.event_id))
    kept = [v for v in verdicts if v.event_id in embedded and embedded[v.event_id].embedding_model == embedding_model]
    others: dict[str, int] = {}
    for verdict in verdicts:
        found = embedded.get(verdict.event_id)
        if found is not None and found.embedding_model != embedding_model:
            others[found.embedding_model] = others.get(found.embedding_model, 0) + 1
    vectors = [np.frombuffer(embedded[v.event_id].embedding, dtype=np.float16) for v in kept]
    return Examples(
        label=label,
        embedding_model=embedding_model,
        event_ids=[v.event_id for v in kept],
        embeddings=np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32),
        positive=np.array([label in v.labels for v in kept], dtype=bool),
        first=kept[0].occurred_at if kept else None,
        last=kept[-1].occurred_at if kept else None,
        other_models=others,
        without_embedding=sum(1 for v in verdicts if v.event_id not in embedded),
    )
