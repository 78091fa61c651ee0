"""Labelled examples for one label, from the decision archive: reviewers' label sets joined to
the embeddings their images were decided with.

Only verdicts given from the label's definition on count: before it, reviewers could not
tick it, so an image without it says nothing. Per image the latest verdict counts (a
second, blind review only measures agreement and is left out), with the embedding of the
image's latest archived decision that has one.
"""

from dataclasses import dataclass
from datetime import datetime

import duckdb
import numpy as np
import numpy.typing as npt

_QUERY = """
WITH latest AS (
    SELECT event_id, labels, occurred_at,
           row_number() OVER (PARTITION BY event_id ORDER BY occurred_at DESC) AS nth
    FROM verdicts
    WHERE job_kind <> 'second_review' AND occurred_at >= ? AND occurred_at <= ?
), embedded AS (
    SELECT event_id, embedding, embedding_model,
           row_number() OVER (PARTITION BY event_id ORDER BY occurred_at DESC) AS nth
    FROM decisions
    WHERE embedding IS NOT NULL
)
SELECT l.event_id, list_contains(l.labels, ?) AS positive, l.occurred_at, e.embedding, e.embedding_model
FROM latest l LEFT JOIN embedded e ON e.event_id = l.event_id AND e.nth = 1
WHERE l.nth = 1
ORDER BY l.occurred_at, l.event_id
"""


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
    rows = connection.execute(_QUERY, [since, until, label]).fetchall()
    kept = [row for row in rows if row[4] == embedding_model]
    others: dict[str, int] = {}
    for row in rows:
        if row[4] is not None and row[4] != embedding_model:
            others[row[4]] = others.get(row[4], 0) + 1
    vectors = [np.frombuffer(row[3], dtype=np.float16) for row in kept]
    return Examples(
        label=label,
        embedding_model=embedding_model,
        event_ids=[row[0] for row in kept],
        embeddings=np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 0), np.float32),
        positive=np.array([bool(row[1]) for row in kept], dtype=bool),
        first=kept[0][2] if kept else None,
        last=kept[-1][2] if kept else None,
        other_models=others,
        without_embedding=sum(1 for row in rows if row[4] is None),
    )
