"""Train one label's head from the archive and write the next ``heads`` version as a candidate.

The candidate holds every head of the serving version plus this one (replacing an older
head of the same label), so deploying it changes nothing else; ``modstream model deploy
... --name heads --shadow`` then runs it beside the serving heads.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt

from modstream.learn.examples import Examples, labelled_examples
from modstream.learn.train import THRESHOLD, FittedHead, TooFewExamples, check_enough, fit_head
from modstream.models.heads import HEADS, Counts, HeadCard, read_heads, serving_embedding_model
from modstream.models.repository import Repository


class WrongEmbeddingModel(ValueError):
    """Heads run on the serving embedding model only."""


@dataclass(frozen=True)
class Trained:
    card: HeadCard
    fitted: FittedHead
    examples: Examples
    candidate: Path
    """The candidate's model.onnx (labels.txt and card.json beside it)."""
    labels: list[str]
    """Every head of the candidate, in column order."""


def train_head(
    connection: duckdb.DuckDBPyConnection,
    repository: Path,
    label: str,
    *,
    since: datetime,
    until: datetime,
    out: Path,
    trained_by: str,
    embedding_model: str | None = None,
) -> Trained:
    serving = serving_embedding_model(repository)
    if embedding_model is not None and embedding_model != serving:
        raise WrongEmbeddingModel(
            f"heads run on the serving embedding model {serving}; a head on {embedding_model}'s embeddings "
            "could not be served (its features mean something else)"
        )
    examples = labelled_examples(connection, label, serving, since, until)
    try:
        check_enough(label, examples.positive)
    except TooFewExamples as exc:
        if examples.other_models:
            others = ", ".join(f"{n} from {model}" for model, n in sorted(examples.other_models.items()))
            raise TooFewExamples(f"{exc} (not usable: embeddings {others}; heads use {serving})") from exc
        raise
    fitted = fit_head(label, examples.embeddings, examples.positive)
    assert examples.first is not None and examples.last is not None  # there are examples: checked above
    card = HeadCard(
        label=label,
        embedding_model=serving,
        trained_at=datetime.now(UTC),
        trained_by=trained_by,
        window_start=examples.first,
        window_end=examples.last,
        train=_counts(examples, fitted.split.train),
        held_out=_counts(examples, fitted.split.held_out),
        threshold=THRESHOLD,
        precision=fitted.precision,
        recall=fitted.recall,
        f1=fitted.f1,
        average_precision=fitted.average_precision,
        curve=fitted.curve,
        regularisation=fitted.regularisation,
        training_seconds=fitted.seconds,
    )
    heads = Repository(repository, HEADS)
    candidate = read_heads(heads.folder / str(heads.serving())).with_head(fitted.weights, fitted.bias, card)
    return Trained(card, fitted, examples, candidate.write(out), candidate.labels)


def _counts(examples: Examples, members: npt.NDArray[np.int64]) -> Counts:
    picked = examples.positive[members]
    return Counts(positives=int(picked.sum()), negatives=int((~picked).sum()))
