"""The bench's in-process ensemble is wired as Triton's: a component whose input is another's
output runs on that output (cast to the type it declares), on tiny ONNX graphs built here."""

from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from modstream.bench import raw_model
from modstream.bench.raw_model import Unwired
from onnx import ModelProto, NodeProto, TensorProto, ValueInfoProto, helper

from tests import images

PIXELS = [3, raw_model.SIZE, raw_model.SIZE]


def graph(name: str, nodes: list[NodeProto], inputs: list[ValueInfoProto], outputs: list[ValueInfoProto]) -> ModelProto:
    model = helper.make_model(
        helper.make_graph(nodes, name, inputs, outputs), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model


def tensor(name: str, kind: int, dims: list[int]) -> ValueInfoProto:
    return helper.make_tensor_value_info(name, kind, ["batch", *dims])


def embedder() -> ModelProto:
    """Pixels in; a mean per channel as its scores and, in float16, as its ``embedding`` (as
    EfficientNet-Lite0 gives its features)."""
    return graph(
        "embedder",
        [
            helper.make_node("ReduceMean", ["pixels"], ["scores"], axes=[2, 3], keepdims=0),
            helper.make_node("Cast", ["scores"], ["embedding"], to=TensorProto.FLOAT16),
        ],
        [tensor("pixels", TensorProto.FLOAT, PIXELS)],
        [tensor("scores", TensorProto.FLOAT, [3]), tensor("embedding", TensorProto.FLOAT16, [3])],
    )


def classifier() -> ModelProto:
    """Pixels in (under another input name, as image_safety's ``image``); a max per channel out."""
    return graph(
        "classifier",
        [helper.make_node("ReduceMax", ["image"], ["probabilities"], axes=[2, 3], keepdims=0)],
        [tensor("image", TensorProto.FLOAT, PIXELS)],
        [tensor("probabilities", TensorProto.FLOAT, [3])],
    )


def reader(input_name: str = "embedding", width: int = 3) -> ModelProto:
    """Float32 features in (as the learned heads declare them); twice them out."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    return graph(
        "reader",
        [
            helper.make_node("Constant", [], ["two"], value=two),
            helper.make_node("Mul", [input_name, "two"], ["scores"]),
        ],
        [tensor(input_name, TensorProto.FLOAT, [width])],
        [tensor("scores", TensorProto.FLOAT, [width])],
    )


def sessions(**models: ModelProto) -> dict[str, ort.InferenceSession]:
    return {f"{name}:1": ort.InferenceSession(model.SerializeToString()) for name, model in models.items()}


def pixels(count: int) -> raw_model.Pixels:
    return np.random.default_rng(0).integers(0, 256, (count, *PIXELS)).astype(np.float32)


def test_a_component_reading_another_ones_output_runs_after_it_on_that_output_both_ways() -> None:
    # The reader is listed first: the order the decisions name components in decides nothing.
    wide = sessions(reader=reader(), classifier=classifier(), embedder=embedder())
    stages = raw_model.wiring(wide, PIXELS)
    assert [[step.component for step in stage] for stage in stages] == [["classifier:1", "embedder:1"], ["reader:1"]]
    (fed,) = stages[1]
    assert (fed.input, fed.dtype, fed.source) == ("embedding", np.dtype(np.float32), ("embedder:1", "embedding"))
    batch = pixels(4)
    with ThreadPoolExecutor(2) as threads:
        for run_stage in (raw_model.one_after_another, partial(threads.map, raw_model._outputs)):
            outputs = raw_model.run_stages(stages, wide, batch, run_stage)
            embedding = outputs["embedder:1"]["embedding"]
            assert embedding.dtype == np.float16 and embedding.shape == (4, 3)
            np.testing.assert_array_equal(outputs["reader:1"]["scores"], 2 * embedding.astype(np.float32))
            np.testing.assert_array_equal(outputs["classifier:1"]["probabilities"], batch.max(axis=(2, 3)))
    # Measured alone, the reader is fed the embeddings of the images, not their pixels.
    inputs = raw_model.ensemble_inputs(stages, wide, pixels(5), chunk=2)
    (embedding,) = wide["embedder:1"].run(["embedding"], {"pixels": pixels(5)})
    assert inputs["reader:1"].dtype == np.float32
    np.testing.assert_array_equal(inputs["reader:1"], embedding.astype(np.float32))
    assert inputs["classifier:1"].shape == (5, *PIXELS)


def test_measure_runs_and_costs_every_component_and_says_what_fed_each(tmp_path: Path) -> None:
    files = {}
    for name, model in (("embedder", embedder()), ("reader", reader())):
        files[f"{name}:1"] = tmp_path / f"{name}.onnx"
        files[f"{name}:1"].write_bytes(model.SerializeToString())
    photos = [images.encode_noise_png(), images.encode_noise_png(40, 30)]
    measured = raw_model.measure(files, photos, batch_sizes=(1, 2), seconds=0.02)
    assert measured.inputs == {"embedder:1": "pixels", "reader:1": "embedder:1/embedding"}
    assert [cost.component for cost in measured.components] == ["embedder:1", "reader:1"]
    assert {(r.mode, r.batch_size) for r in measured.by_batch_size} == {
        (mode, size) for mode in ("sequential", "parallel") for size in (1, 2)
    }
    assert all(r.images_per_second > 0 for r in measured.by_batch_size)


@pytest.mark.parametrize(
    ("unfed", "why"),
    [
        (reader("features"), r"reader:1's input 'features' \['batch', 3\] is neither the pixel batch"),
        (reader(width=4), r"reader:1's input 'embedding' \['batch', 4\] is neither the pixel batch"),
    ],
    ids=["nobody-gives-that-name", "same-name-other-shape"],
)
def test_an_input_no_component_produces_is_a_clear_error(unfed: ModelProto, why: str) -> None:
    with pytest.raises(Unwired, match=why + r".* nor an output of another component \(embedder:1\)"):
        raw_model.wiring(sessions(embedder=embedder(), reader=unfed), PIXELS)


def test_an_input_two_components_could_feed_is_refused_not_guessed() -> None:
    two = sessions(embedder=embedder(), other=embedder(), reader=reader())
    with pytest.raises(Unwired, match=r"could be fed by any of \[\('embedder:1', 'embedding'\), \('other:1'"):
        raw_model.wiring(two, PIXELS)
