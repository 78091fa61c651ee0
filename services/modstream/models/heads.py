"""Learned heads: the ensemble component ``heads``, one logistic head per learned label.

Each version of ``heads`` is one ONNX graph, ``sigmoid(embedding · W + b)``, over the
embedding component's features (EfficientNet-Lite0's 1280-d vector), with one column per
label; its ``labels.txt`` names the columns, and the taxonomy passes every one of them on
as a label of the same name. Version 1 has no columns: nothing is learned until a team
trains a head (``modstream model train-head``). Every version carries ``card.json``: for
each head, what it was trained on and how well it did, and the embedding model version it
belongs to. A head only means something on the embedding model it was trained on, so a
version whose heads name another embedding model than the one serving is refused.
"""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modstream.core.stats import Rate
from modstream.models.candidate import CandidateRefused
from modstream.models.repository import CARD_FILE, Repository

HEADS = "heads"
EMBEDDING_FROM = "efficientnet_lite0"
EMBEDDING_DIMS = 1280
_OPSET = 17
Floats = npt.NDArray[np.floating[Any]]


class CurvePoint(BaseModel):
    """One threshold of the held-out precision-recall curve, with Wilson 95 % intervals."""

    model_config = ConfigDict(frozen=True)

    threshold: float
    precision: Rate
    recall: Rate


class Counts(BaseModel):
    model_config = ConfigDict(frozen=True)

    positives: int
    negatives: int


class HeadCard(BaseModel):
    """How one head was made and how well it did on examples it never saw."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    embedding_model: str = Field(description="name:version of the component whose features it reads")
    trained_at: datetime
    trained_by: str
    window_start: datetime = Field(description="the first verdict used")
    window_end: datetime = Field(description="the last verdict used")
    train: Counts
    held_out: Counts
    threshold: float = Field(description="the operating point the metrics below are measured at")
    precision: Rate = Field(description="value and interval none when no held-out score reached the threshold")
    recall: Rate
    f1: Rate = Field(description="its interval from precision's and recall's (core.stats.f1)")
    average_precision: float
    curve: list[CurvePoint]
    regularisation: float = Field(description="the inverse L2 strength chosen by cross-validation")
    training_seconds: float


class Cards(BaseModel):
    """``card.json``: the card of every head in a version, by label."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    heads: dict[str, HeadCard] = Field(default_factory=dict)

    def trained_elsewhere(self, embedding_model: str) -> dict[str, str]:
        """Label -> the embedding model of each head not trained on ``embedding_model``."""
        return {
            label: card.embedding_model for label, card in self.heads.items() if card.embedding_model != embedding_model
        }


class Heads:
    """The heads of one version: weights ``[dims, k]``, biases ``[k]``, labels and cards."""

    def __init__(
        self, weights: npt.NDArray[np.floating[Any]], bias: npt.NDArray[np.floating[Any]], cards: Cards
    ) -> None:
        if weights.shape != (EMBEDDING_DIMS, len(cards.heads)) or bias.shape != (len(cards.heads),):
            raise ValueError(f"{weights.shape} weights and {bias.shape} biases for {len(cards.heads)} heads")
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.cards = cards

    @property
    def labels(self) -> list[str]:
        return list(self.cards.heads)

    def with_head(self, weights: Floats, bias: float, card: HeadCard) -> "Heads":
        """These heads with ``card.label``'s head added, or replaced if it is here already."""
        keep = [i for i, label in enumerate(self.labels) if label != card.label]
        cards = {self.labels[i]: self.cards.heads[self.labels[i]] for i in keep}
        return Heads(
            np.column_stack([self.weights[:, keep], weights.reshape(EMBEDDING_DIMS, 1)]),
            np.append(self.bias[keep], bias),
            Cards(heads={**cards, card.label: card}),
        )

    def write(self, folder: Path) -> Path:
        """The version as files a deploy takes: ``model.onnx``, ``labels.txt``, ``card.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.onnx").write_bytes(self.onnx())
        (folder / "labels.txt").write_text("".join(f"{label}\n" for label in self.labels))
        (folder / CARD_FILE).write_text(self.cards.model_dump_json(indent=2) + "\n")
        return folder / "model.onnx"

    def onnx(self) -> bytes:
        from onnx import TensorProto, helper, numpy_helper

        k = len(self.labels)
        graph = helper.make_graph(
            [
                helper.make_node("MatMul", ["embedding", "weights"], ["logits_unbiased"]),
                helper.make_node("Add", ["logits_unbiased", "bias"], ["logits"]),
                helper.make_node("Sigmoid", ["logits"], ["scores"]),
            ],
            "heads",
            [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", EMBEDDING_DIMS])],
            [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", k])],
            [numpy_helper.from_array(self.weights, "weights"), numpy_helper.from_array(self.bias, "bias")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)], producer_name="modstream")
        model.ir_version = 8  # what the onnxruntime inside Triton's Python backend reads
        return bytes(model.SerializeToString())


def no_heads() -> Heads:
    """Version 1: nothing learned yet."""
    return Heads(np.zeros((EMBEDDING_DIMS, 0), np.float32), np.zeros(0, np.float32), Cards())


def read_heads(folder: Path) -> Heads:
    """The heads of a version folder (or a candidate folder a training wrote)."""
    from onnx import load, numpy_helper

    graph = load(str(folder / "model.onnx")).graph
    arrays = {tensor.name: numpy_helper.to_array(tensor) for tensor in graph.initializer}
    return Heads(arrays["weights"], arrays["bias"], read_cards(folder))


def read_cards(folder: Path) -> Cards:
    path = folder / CARD_FILE
    if not path.is_file():
        return Cards()
    try:
        return Cards.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        raise CandidateRefused(f"{path}: not a heads card: {str(exc)[:300]}") from exc


def serving_embedding_model(root: Path) -> str:
    """``name:version`` of the embedding component that serves now."""
    return f"{EMBEDDING_FROM}:{Repository(root, EMBEDDING_FROM).serving()}"


def check_heads_candidate(root: Path, onnx_file: Path, labels: list[str]) -> None:
    """Refuse a heads version whose card does not describe its columns, or whose heads were
    trained on another embedding model than the serving one."""
    cards = read_cards(onnx_file.parent)
    if list(cards.heads) != labels:
        raise CandidateRefused(
            f"{onnx_file.parent / CARD_FILE} describes heads {list(cards.heads)} but the labels file names {labels}"
        )
    serving = serving_embedding_model(root)
    foreign = cards.trained_elsewhere(serving)
    if foreign:
        raise CandidateRefused(
            f"heads trained on another embedding model than the serving {serving}: "
            + ", ".join(f"{label} ({model})" for label, model in foreign.items())
            + "; train them again on the serving one"
        )


def heads_trained_elsewhere(root: Path, embedding_model: str) -> dict[str, str]:
    """Label -> the embedding model it was trained on, for the serving heads that were not
    trained on ``embedding_model`` (which the embedding component is about to serve)."""
    heads = Repository(root, HEADS)
    if not heads.config.is_file():
        return {}
    return read_cards(heads.folder / str(heads.serving())).trained_elsewhere(embedding_model)
