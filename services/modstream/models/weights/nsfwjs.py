"""``nsfwjs``: nsfwjs's MobileNetV2 classifier, converted from TensorFlow.js to ONNX here.

Source: the npm package ``nsfwjs@4.4.0`` (MIT, © 2019 Infinite Red), checked by its
SHA-256. The package carries the model as two JS modules: ``model.min.js`` exports the
Keras layers topology and the weights manifest, ``group1-shard1of1.min.js`` the weights
as base64, 8-bit quantised. Neither is run: both are parsed as data, the weights are
dequantised exactly as TensorFlow.js does, and the ONNX graph is built with numpy and
``onnx`` alone (no TensorFlow, no Node.js). BatchNormalization is folded into the
convolution before it.

Contract, as every classifier of the ensemble: input ``pixels``, float32
``[batch, 3, 224, 224]`` RGB 0-255 (the preprocess model's output); the graph divides
by 255 itself, as nsfwjs does before calling its model, and runs in NCHW. Output
``scores``, float32 ``[batch, 5]``: a softmax over drawing, hentai, neutral, porn and
sexy, so the five sum to 1.

nsfwjs itself resizes with bilinear interpolation (align corners, no antialiasing) and
stretches to 224x224; the ensemble's preprocess model resizes with antialiasing instead.
``tests/tfjs/predict.mjs`` runs the original model in TensorFlow.js for comparison.
"""

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

from modstream.core.packages import PackageError, fetch_npm_tarball, read_tar_member
from modstream.models.weights.component import Built, Component

PACKAGE = ("nsfwjs", "4.4.0")
SHA256 = "585cd178f3b994337c4d10a87b080d342fc52f8b9bf0085c4d1f345a3a1c5382"
TOPOLOGY = "package/dist/models/mobilenet_v2/model.min.js"
WEIGHTS = "package/dist/models/mobilenet_v2/group1-shard1of1.min.js"
LICENSE = "package/LICENSE"
CONVERTER = 1  # bump on any change to the conversion: installed models are rebuilt
LABELS = ("drawing", "hentai", "neutral", "porn", "sexy")
INPUT = "pixels"
OUTPUT = "scores"
OPSET = 17
IR_VERSION = 8  # the IR of opset 17: older runtimes load it too

Array = npt.NDArray[np.float32]


def build(cache_dir: Path) -> Built:
    tarball = fetch_npm_tarball(*PACKAGE, SHA256, cache_dir)
    model = convert(read_tar_member(tarball, TOPOLOGY), read_tar_member(tarball, WEIGHTS))
    return Built(onnx=model.SerializeToString(), license=read_tar_member(tarball, LICENSE).decode())


COMPONENT = Component(
    name="nsfwjs",
    stamp=f"npm:{PACKAGE[0]}@{PACKAGE[1]} sha256:{SHA256} {TOPOLOGY} {WEIGHTS} converter:{CONVERTER}",
    build=build,
)


def convert(topology_js: bytes, weights_js: bytes) -> onnx.ModelProto:
    """The ONNX model of the two JS modules' contents."""
    exported = exported_object(topology_js, TOPOLOGY)
    try:
        topology, manifest = exported["modelTopology"], exported["weightsManifest"]
    except (KeyError, TypeError) as exc:
        raise PackageError(f"{TOPOLOGY}: exports no modelTopology and weightsManifest") from exc
    weights = Weights(dequantised(manifest, exported_base64(weights_js, WEIGHTS)))
    graph = network(topology, weights)
    weights.check_all_taken()
    return onnx_model(graph)


# --- the JS modules: browserify bundles whose module sets ``exports`` to a literal ---------

JS_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<key>[A-Za-z_$][\w$]*)(?=\s*:)
    | (?P<word>[A-Za-z_$][\w$]*)
    | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    | (?P<boolean>!\s*[01])
    | (?P<punct>[][{}:,])
    )""",
    re.VERBOSE,
)


def exported_object(module: bytes, file: str) -> Any:
    """The object literal a bundled module assigns to ``exports``."""
    text = module_text(module, file)
    found = re.search(r"\bexports\s*=\s*\{", text)
    if found is None:
        raise PackageError(f"{file}: no object assigned to exports (not the model's JS module?)")
    return js_literal(text, found.end() - 1, file)


def exported_base64(module: bytes, file: str) -> bytes:
    """The bytes of the base64 string a bundled module assigns to ``exports``."""
    found = re.search(r'\bexports\s*=\s*"([A-Za-z0-9+/=]+)"', module_text(module, file))
    if found is None:
        raise PackageError(f"{file}: no base64 string assigned to exports: it carries no weights")
    try:
        return base64.b64decode(found[1], validate=True)
    except binascii.Error as exc:
        raise PackageError(f"{file}: the weights are not valid base64: {exc}") from exc


def module_text(module: bytes, file: str) -> str:
    try:
        return module.decode()
    except UnicodeDecodeError as exc:
        raise PackageError(f"{file}: not UTF-8 text: {exc}") from exc


def js_literal(text: str, start: int, file: str) -> Any:
    """The minified JS literal at ``start`` (unquoted keys, ``!0``/``!1``, ``.5``), read as
    JSON token by token: the literal is data, and is never evaluated."""
    parts: list[str] = []
    depth, at = 0, start
    while not parts or depth > 0:
        token = JS_TOKEN.match(text, at)
        if token is None or token.lastgroup is None:
            raise PackageError(f"{file}: unexpected {text[at : at + 30].strip()!r} at offset {at}")
        at = token.end()
        kind, value = token.lastgroup, token[token.lastgroup]
        if kind == "punct":
            depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(value, 0)
        parts.append(as_json(kind, value, file))
    try:
        return json.loads("".join(parts))
    except json.JSONDecodeError as exc:
        raise PackageError(f"{file}: the exported literal is not plain data: {exc}") from exc


def as_json(kind: str, value: str, file: str) -> str:
    if kind == "key":
        return json.dumps(value)
    if kind == "boolean":
        return "true" if value.endswith("0") else "false"  # !0 is true, !1 false
    if kind == "number":
        return re.sub(r"\.(?!\d)", ".0", re.sub(r"^(-?)\.", r"\g<1>0.", value))
    if kind == "word" and value not in ("true", "false", "null"):
        raise PackageError(f"{file}: the exported literal refers to {value!r}: not plain data")
    return value


# --- weights: dequantised as tfjs-core's decodeWeights does --------------------------------

STORED: dict[str, np.dtype[Any]] = {"uint8": np.dtype("<u1"), "uint16": np.dtype("<u2"), "float32": np.dtype("<f4")}


def dequantised(manifest: list[dict[str, Any]], data: bytes) -> dict[str, Array]:
    """Every weight of the manifest, read in its order from the concatenated shards."""
    weights: dict[str, Array] = {}
    offset = 0
    try:
        for group in manifest:
            for spec in group["weights"]:
                weights[spec["name"]], offset = decoded(spec, data, offset)
    except (KeyError, TypeError, ValueError) as exc:
        raise PackageError(f"{WEIGHTS}: does not match the weights manifest of {TOPOLOGY}: {exc!r}") from exc
    if offset != len(data):
        raise PackageError(f"{WEIGHTS}: holds {len(data)} bytes, the manifest of {TOPOLOGY} describes {offset}")
    return weights


def decoded(spec: dict[str, Any], data: bytes, offset: int) -> tuple[Array, int]:
    """One weight and the offset after it. tfjs computes ``q * scale + min`` in doubles
    (JS numbers) and stores the result as float32: so does this."""
    if spec["dtype"] != "float32":
        raise ValueError(f"{spec['name']} is {spec['dtype']}; only float32 weights are converted")
    quantization = spec.get("quantization")
    stored = STORED[quantization["dtype"] if quantization else "float32"]
    count = math.prod(spec["shape"])
    raw = np.frombuffer(data, stored, count, offset)
    values = raw.astype(np.float64) * quantization["scale"] + quantization["min"] if quantization else raw
    return values.astype(np.float32).reshape(spec["shape"]), offset + count * stored.itemsize


@dataclass
class Weights:
    by_name: dict[str, Array]
    taken: set[str] = field(default_factory=set)

    def take(self, name: str) -> Array:
        if name not in self.by_name:
            raise PackageError(f"{WEIGHTS}: has no weight {name}")
        self.taken.add(name)
        return self.by_name[name]

    def check_all_taken(self) -> None:
        # tfjs refuses weights no layer takes: a converter that skipped one would be wrong
        left = sorted(set(self.by_name) - self.taken)
        if left:
            raise PackageError(f"{WEIGHTS}: weights no layer took: {', '.join(left[:5])}")


# --- the network: Keras layers in topological order, one ONNX node or a few each ----------


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    config: dict[str, Any]
    inputs: list[str]  # the layers it reads


@dataclass
class Graph:
    weights: Weights
    folded: dict[str, Layer]  # convolution name -> the BatchNormalization folded into it
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)

    def constant(self, name: str, value: npt.NDArray[Any]) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def add(self, op: str, inputs: list[str], output: str, **attributes: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output


def network(topology: dict[str, Any], weights: Weights) -> Graph:
    try:
        config = topology["model_config"]["config"]
        layers = [layer_of(entry) for entry in config["layers"]]
        (output, _, _), *more = config["output_layers"]
    except (KeyError, TypeError, ValueError) as exc:
        raise PackageError(f"{TOPOLOGY}: not a Keras functional model topology: {exc!r}") from exc
    if more:
        raise PackageError(f"{TOPOLOGY}: the model has {len(more) + 1} outputs; one was expected")
    graph = Graph(weights, batchnorms_to_fold(layers))
    tensors: dict[str, str] = {}
    for layer in layers:
        convert_layer = CONVERTERS.get(layer.kind)
        if convert_layer is None:
            raise PackageError(
                f"{TOPOLOGY}: layer {layer.name!r} is a {layer.kind}, a layer type the converter does not "
                f"handle (it handles {', '.join(sorted(CONVERTERS))})"
            )
        tensors[layer.name] = convert_layer(graph, layer, [tensors[name] for name in layer.inputs])
    graph.add("Identity", [tensors[output]], OUTPUT)
    return graph


def layer_of(entry: dict[str, Any]) -> Layer:
    inbound = entry["inbound_nodes"]
    if len(inbound) > 1:
        raise PackageError(f"{TOPOLOGY}: layer {entry['name']!r} is shared by several calls: not supported")
    inputs = [name for name, *_ in inbound[0]] if inbound else []
    return Layer(name=entry["name"], kind=entry["class_name"], config=entry["config"], inputs=inputs)


def batchnorms_to_fold(layers: list[Layer]) -> dict[str, Layer]:
    """Convolution name -> the BatchNormalization that is its only reader (the convolution
    itself linear): such a pair is one convolution with other weights."""
    by_name = {layer.name: layer for layer in layers}
    readers = Counter(name for layer in layers for name in layer.inputs)
    return {
        layer.inputs[0]: layer
        for layer in layers
        if layer.kind == "BatchNormalization"
        and len(layer.inputs) == 1
        and by_name[layer.inputs[0]].kind in ("Conv2D", "DepthwiseConv2D")
        and by_name[layer.inputs[0]].config.get("activation") == "linear"
        and readers[layer.inputs[0]] == 1
    }


def refused(layer: Layer, why: str) -> PackageError:
    return PackageError(f"{TOPOLOGY}: layer {layer.name!r} ({layer.kind}): {why}")


def input_layer(graph: Graph, layer: Layer, _: list[str]) -> str:
    if layer.config.get("batch_input_shape") != [None, 224, 224, 3]:
        raise refused(layer, f"input shape {layer.config.get('batch_input_shape')}, expected [None, 224, 224, 3]")
    # nsfwjs divides by 255 before calling the model, the ensemble gives 0-255: a division, not a
    # product by 1/255, so that the network sees the very float32 values tfjs's div(255) gives
    return graph.add("Div", [INPUT, graph.constant("255", np.array(255, np.float32))], layer.name)


def zero_padding(graph: Graph, layer: Layer, x: list[str]) -> str:
    try:  # Keras saves it as ((top, bottom), (left, right)) whatever form it was given in
        (top, bottom), (left, right) = layer.config["padding"]
    except (TypeError, ValueError) as exc:
        raise refused(layer, f"padding {layer.config['padding']!r} is not ((top, bottom), (left, right))") from exc
    pads = np.array([0, 0, top, left, 0, 0, bottom, right], np.int64)  # NCHW begins, then ends
    return graph.add("Pad", [x[0], graph.constant(f"{layer.name}/pads", pads)], layer.name)


def conv2d(graph: Graph, layer: Layer, x: list[str]) -> str:
    kernel = graph.weights.take(f"{layer.name}/kernel").transpose(3, 2, 0, 1)  # HWIO -> OIHW
    return convolution(graph, layer, x[0], kernel, group=1)


def depthwise_conv2d(graph: Graph, layer: Layer, x: list[str]) -> str:
    kernel = graph.weights.take(f"{layer.name}/depthwise_kernel")
    height, width, channels, multiplier = kernel.shape
    # (H, W, C, M) -> (C*M, 1, H, W): a grouped convolution's output c*M+m reads input c, as in TF
    oihw = kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, height, width)
    return convolution(graph, layer, x[0], oihw, group=channels)


def convolution(graph: Graph, layer: Layer, x: str, kernel: Array, group: int) -> str:
    config = layer.config
    channels_last(layer)
    bias = graph.weights.take(f"{layer.name}/bias") if config["use_bias"] else None
    if layer.name in graph.folded:
        kernel, bias = folded_batchnorm(graph, graph.folded[layer.name], kernel, bias)
    inputs = [x, graph.constant(f"{layer.name}/kernel", np.ascontiguousarray(kernel))]
    if bias is not None:
        inputs.append(graph.constant(f"{layer.name}/bias", bias))
    y = graph.add(
        "Conv",
        inputs,
        layer.name,
        kernel_shape=list(kernel.shape[2:]),
        strides=config["strides"],
        dilations=config["dilation_rate"],
        group=group,
        **padding(layer),
    )
    return activation(graph, layer, y)


def folded_batchnorm(graph: Graph, norm: Layer, kernel: Array, bias: Array | None) -> tuple[Array, Array]:
    """The convolution's kernel and bias with ``norm`` applied to its output, in doubles."""
    config = norm.config
    if config.get("axis") not in (-1, 3):
        raise refused(norm, f"normalises axis {config.get('axis')}, not the channels")
    take = graph.weights.take
    gamma = take(f"{norm.name}/gamma").astype(np.float64) if config["scale"] else 1.0
    beta = take(f"{norm.name}/beta").astype(np.float64) if config["center"] else 0.0
    mean, variance = take(f"{norm.name}/moving_mean"), take(f"{norm.name}/moving_variance")
    scale = gamma / np.sqrt(variance.astype(np.float64) + config["epsilon"])
    folded_kernel = kernel.astype(np.float64) * scale.reshape(-1, 1, 1, 1)
    folded_bias = ((0.0 if bias is None else bias.astype(np.float64)) - mean) * scale + beta
    return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def batch_normalization(graph: Graph, layer: Layer, x: list[str]) -> str:
    if graph.folded.get(layer.inputs[0]) is not layer:
        raise refused(layer, "it does not directly follow a linear convolution, the only place it is folded into")
    return x[0]  # already applied by the convolution's weights


def relu(graph: Graph, layer: Layer, x: list[str]) -> str:
    config = layer.config
    if config.get("negative_slope", 0) != 0 or config.get("threshold", 0) != 0:
        raise refused(layer, "a leaky or thresholded ReLU")
    if config.get("max_value") is None:
        return graph.add("Relu", x, layer.name)
    low = graph.constant(f"{layer.name}/min", np.array(0, np.float32))
    high = graph.constant(f"{layer.name}/max", np.array(config["max_value"], np.float32))
    return graph.add("Clip", [x[0], low, high], layer.name)


def add(graph: Graph, layer: Layer, x: list[str]) -> str:
    return graph.add("Add" if len(x) == 2 else "Sum", x, layer.name)


def average_pooling(graph: Graph, layer: Layer, x: list[str]) -> str:
    channels_last(layer)
    size = layer.config["pool_size"]
    # TF leaves "same" padding out of the average, as ONNX does by default
    strides = layer.config["strides"] or size
    return graph.add("AveragePool", x, layer.name, kernel_shape=size, strides=strides, **padding(layer))


def flatten(graph: Graph, layer: Layer, x: list[str]) -> str:
    channels_last(layer)
    # Keras flattens height, width, channels in that order: back to NHWC first
    nhwc = graph.add("Transpose", x, f"{layer.name}/nhwc", perm=[0, 2, 3, 1])
    return graph.add("Flatten", [nhwc], layer.name, axis=1)


def dense(graph: Graph, layer: Layer, x: list[str]) -> str:
    inputs = [x[0], graph.constant(f"{layer.name}/kernel", graph.weights.take(f"{layer.name}/kernel"))]
    if layer.config["use_bias"]:
        inputs.append(graph.constant(f"{layer.name}/bias", graph.weights.take(f"{layer.name}/bias")))
    return activation(graph, layer, graph.add("Gemm", inputs, layer.name))


def dropout(graph: Graph, layer: Layer, x: list[str]) -> str:
    return x[0]  # does nothing at inference


def activation(graph: Graph, layer: Layer, x: str) -> str:
    kind = layer.config.get("activation", "linear")
    if kind == "linear":
        return x
    if kind == "relu":
        return graph.add("Relu", [x], f"{layer.name}/relu")
    if kind == "softmax":
        return graph.add("Softmax", [x], f"{layer.name}/softmax", axis=-1)
    raise refused(layer, f"activation {kind!r} is not handled")


def padding(layer: Layer) -> dict[str, str]:
    mode = layer.config["padding"]
    if mode == "valid":
        return {}
    if mode == "same":
        return {"auto_pad": "SAME_UPPER"}  # TF puts an odd extra row/column at the bottom/right
    raise refused(layer, f"padding {mode!r} is not handled")


def channels_last(layer: Layer) -> None:
    if layer.config.get("data_format", "channels_last") != "channels_last":
        raise refused(layer, f"data format {layer.config['data_format']!r}, only channels_last is handled")


CONVERTERS: dict[str, Callable[[Graph, Layer, list[str]], str]] = {
    "InputLayer": input_layer,
    "ZeroPadding2D": zero_padding,
    "Conv2D": conv2d,
    "DepthwiseConv2D": depthwise_conv2d,
    "BatchNormalization": batch_normalization,
    "ReLU": relu,
    "Add": add,
    "AveragePooling2D": average_pooling,
    "Flatten": flatten,
    "Dense": dense,
    "Dropout": dropout,
}


def onnx_model(graph: Graph) -> onnx.ModelProto:
    pixels = helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, ["batch", 3, 224, 224])
    scores = helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, ["batch", len(LABELS)])
    body = helper.make_graph(graph.nodes, "nsfwjs_mobilenet_v2", [pixels], [scores], graph.initializers)
    model = helper.make_model(
        body,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="modstream",
        producer_version=f"nsfwjs converter {CONVERTER}",
        doc_string=f"nsfwjs {PACKAGE[1]} MobileNetV2 (MIT, (c) 2019 Infinite Red); scores: {', '.join(LABELS)}",
    )
    model.ir_version = IR_VERSION
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise PackageError(f"the ONNX graph converted from {TOPOLOGY} is not valid: {exc}") from exc
    return model
