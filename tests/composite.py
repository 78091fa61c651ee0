"""A synthetic image that two components of the ensemble both score high at once.

The ensemble's labels come from four independent classifiers: labels of one component
share its softmax and compete, labels of different components do not. This image shows
it: one 224x224 picture (exactly the preprocess's size, so nothing is resized) made of two
halves of flat colour blocks (16 rows x 8 columns of 14x14 pixels each):

- the left half makes EfficientNet-Lite0 see beer and wine bottles: label ``alcohol``;
- the right half makes nsfwjs answer "sexy": label ``sexual.suggestive``.

Nothing in it depicts anything: both halves are colour mosaics found by gradient ascent on
the two networks (``search_patch`` below), each scored on the whole composite and on its
half alone (the other half flat grey), so that each keeps its label next to the other.
The colours are written here as literals: building the image computes nothing. They are
adversarial, tied to their place and scale: the left half stretched to a picture of its own
no longer scores as alcohol (0.007), which is why a half "alone" here keeps its place and
has the other half grey.

Re-run the search with ``.venv/bin/python -m tests.composite`` (about a minute on one CPU
thread; needs torch and the installed nsfwjs model): it prints the literals below.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from modstream.core.settings import PROJECT_ROOT
from PIL import Image

if TYPE_CHECKING:
    import onnx
    import torch

SIZE = 224
BLOCK = 14
ROWS, COLUMNS = SIZE // BLOCK, SIZE // 2 // BLOCK  # blocks in one half: 16 x 8
NEUTRAL = 128  # the grey that stands in for a half that is left out
LABELS = ("alcohol", "sexual.suggestive")  # what the left and the right half drive high
REPOSITORY = PROJECT_ROOT / "model_repository"

# The halves, one row of blocks per string, each block as RRGGBB: what ``search_patch()``
# returned (its defaults: 150 Adam steps at lr 0.2 from mid-grey; torch 2.14.1, one thread,
# 54 s). In onnxruntime: alcohol 0.944 on the composite, 0.963 on the left half alone, 0.012
# on the right half alone; sexual.suggestive 0.964, 0.954 on the right half alone, 0.0003 on
# the left. Another torch build may round a few colours one level differently.
LEFT = (
    "a0f6825b5f9e8dc550b303f98a53355a5e4c040500a37b40",
    "554e50fefdff000001be75f69a9cadb59b4e8eb517832ac6",
    "aa825855a04f7a4bce57864569881340981a70dd217e19eb",
    "35a80222803837f4306e8fbf4b8d134d8656bccf0aac587b",
    "54937f42b06731739f6387987fad349d65b2cedf16a84de4",
    "5984530f67c46b5ce9926fb695ad5e7f848557ef5b85098f",
    "a48d855bac2035639944d354798388e199273fdf50e95072",
    "2d32038e9a413563c1179a4cb947b2eba72f7ca662827d89",
    "914431100e073a5fc32eb67b178e0feda24f175e167565ac",
    "c9aa87b9aea6394fdb60be878036a6010301c8eb79ae8bad",
    "38ce0c52441a3f65d0379958a5426ea7c9cad33fe86f246b",
    "e9958bbca78b5077933494548c5713162dbfbef035e27427",
    "3759110503025c835f3092476561c6b04c186d6d6d828186",
    "74735bdbb4ec61c11487a26daf8e80eef6fc0c0328d95893",
    "69cf0d041b1ec8a6c9776cdfca9c965f47f8b66c8ba46d57",
    "79820d4cd81c54c234a494e5c3b1399323deae764f7d8587",
)
RIGHT = (
    "d0dff2c42d8ff4deea7bf3cae7350c4f0403e05eb7aae713",
    "c6f57d7d45893b3d3a35090a9db8b67dee5e9215216ad3f6",
    "e4b7f3b13b624eb3a528ecb9cc1775651b20c97b8c5eb7ef",
    "d1c7ce4c107222cf999f4ed25a466ee07ef7d6a453735f38",
    "edea9a1c8cf66e0c9d491e814c586cb5cef077a4525ff3de",
    "b035dd110603147eab50efaf7f331a9df26303ae49adc9de",
    "9764abe3c3ef2b658d66ec9b0c7c2c56ce4666b470aec9dd",
    "d8c9aeca0f2f4aba44c55862ea6781beaca4a3d45c918382",
    "8005965570afde3d36c8a1b64a1d33a5e43276ec5e9a6ac2",
    "533a44e2c7975aef7a60de8545eae340f4d689e06230414d",
    "705c558919ae49970b6754766668645c9f384ea5472f3f45",
    "c1289150e3cee85feede7dbdd374d2e594bd2b812b8f8e8e",
    "8a0db16bb8de6fb5e62bda136bebfb95a44244e9bc968a89",
    "9244a24ac8c057acef844a579fec8590977786a4f708011e",
    "468e31875a0ad3a6568c5b0b575b4f919481fa40fd08f845",
    "c650c19b966074632988bfa5835a3a8f9387cb13e597c31a",
)


def two_label_image() -> tuple[bytes, tuple[str, str]]:
    """The composite as a PNG (224x224, RGB) and the two labels it scores high on."""
    return png(composite(LEFT, RIGHT)), LABELS


def half_image(label: str) -> bytes:
    """The composite with only the half that drives ``label``, the other half flat grey."""
    side = LABELS.index(label)
    return png(composite(LEFT if side == 0 else None, RIGHT if side == 1 else None))


def composite(left: Sequence[str] | None, right: Sequence[str] | None) -> npt.NDArray[np.uint8]:
    """``[224, 224, 3]`` pixels: the two halves side by side, a missing half flat grey."""
    grey = np.full((SIZE, SIZE // 2, 3), NEUTRAL, np.uint8)
    halves = [grey if rows is None else mosaic(rows) for rows in (left, right)]
    return np.concatenate(halves, axis=1)


def mosaic(rows: Sequence[str]) -> npt.NDArray[np.uint8]:
    """One half, ``[224, 112, 3]``: each colour of ``rows`` as a 14x14 block."""
    if len(rows) != ROWS or any(len(row) != COLUMNS * 6 for row in rows):
        raise ValueError(f"a half is {ROWS} rows of {COLUMNS} RRGGBB colours")
    grid = np.frombuffer(bytes.fromhex("".join(rows)), np.uint8).reshape(ROWS, COLUMNS, 3)
    return grid.repeat(BLOCK, axis=0).repeat(BLOCK, axis=1)


def png(pixels: npt.NDArray[np.uint8]) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "PNG")
    return out.getvalue()


def search_patch(
    cache_dir: Path | None = None, steps: int = 150, learning_rate: float = 0.2, say: Callable[[str], None] = print
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Find the two halves again: ``(LEFT, RIGHT)`` as the literals above.

    Each half is 16x8 colours, ``255 * sigmoid(z)`` with ``z`` starting at 0 (mid-grey),
    shown as 14x14 blocks. Adam raises, on one CPU thread and with no randomness, the log
    score of ``alcohol`` (EfficientNet-Lite0, the torch network the ONNX file is exported
    from) on the composite and on the left half alone, and the log score of
    ``sexual.suggestive`` (nsfwjs, its ONNX graph evaluated in torch by ``onnx_in_torch``)
    on the composite and on the right half alone, while keeping each label low on the
    other half alone. Both scores are taken from the taxonomy's rules.
    """
    import onnx
    import torch
    from modstream.models.taxonomy import read_taxonomy
    from modstream.models.weights.efficientnet import load_network, servable

    if cache_dir is None:
        from tests.conftest import SHARED_CACHE

        cache_dir = SHARED_CACHE
    taxonomy = read_taxonomy(REPOSITORY)
    rules = [taxonomy.labels[label] for label in LABELS]
    if [rule.component for rule in rules] != ["efficientnet_lite0", "nsfwjs"]:
        raise ValueError("the search drives an EfficientNet-Lite0 label on the left and an nsfwjs one on the right")
    classes = [[read_labels(rule.component).index(name) for name in rule.classes] for rule in rules]
    combines = [rule.combine for rule in rules]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        efficientnet = servable(load_network(cache_dir))
        for parameter in efficientnet.parameters():
            parameter.requires_grad_(False)
        nsfwjs = onnx_in_torch(onnx.load(REPOSITORY / "nsfwjs" / "1" / "model.onnx"))

        def score(probabilities: torch.Tensor, side: int) -> torch.Tensor:
            chosen = probabilities[:, classes[side]]
            return chosen.max(dim=1).values if combines[side] == "max" else chosen.sum(dim=1)

        def blocks(z: torch.Tensor) -> torch.Tensor:
            return (255 * torch.sigmoid(z)).repeat_interleave(BLOCK, 2).repeat_interleave(BLOCK, 3)

        left = torch.zeros(1, 3, ROWS, COLUMNS, requires_grad=True)
        right = torch.zeros(1, 3, ROWS, COLUMNS, requires_grad=True)
        grey = torch.full((1, 3, SIZE, SIZE // 2), float(NEUTRAL))
        optimiser = torch.optim.Adam([left, right], lr=learning_rate)
        for step in range(steps):
            a, b = blocks(left), blocks(right)
            # The composite, the left half alone, the right half alone.
            pixels = torch.cat([torch.cat([a, b], 3), torch.cat([a, grey], 3), torch.cat([grey, b], 3)])
            first = score(efficientnet(pixels)[0], 0)
            second = score(nsfwjs(pixels), 1)
            wanted = first[0].log() + first[1].log() + second[0].log() + second[2].log()
            unwanted = (1 - first[2]).log() + (1 - second[1]).log()
            loss = -wanted - 0.3 * unwanted
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch leaves it unannotated
            optimiser.step()
            if step % 10 == 9 or step == steps - 1:
                say(
                    f"step {step + 1}: {LABELS[0]} {first[0]:.3f} (left alone {first[1]:.3f}, right alone "
                    f"{first[2]:.3f}); {LABELS[1]} {second[0]:.3f} (right alone {second[2]:.3f}, "
                    f"left alone {second[1]:.3f})"
                )
    finally:
        torch.set_num_threads(threads)
    return hex_rows(left), hex_rows(right)


def hex_rows(z: torch.Tensor) -> tuple[str, ...]:
    import torch

    colours = (255 * torch.sigmoid(z.detach()[0])).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return tuple(row.tobytes().hex() for row in colours)


def read_labels(component: str) -> list[str]:
    return (REPOSITORY / component / "labels.txt").read_text().split()


def onnx_in_torch(model: onnx.ModelProto) -> Callable[[torch.Tensor], torch.Tensor]:
    """A differentiable torch function computing ``model``'s first output from its first input.

    Only the operators of the nsfwjs graph (a MobileNetV2) are known; any other is an error.
    """
    import torch
    from onnx import helper, numpy_helper
    from torch.nn import functional

    weights = {
        tensor.name: torch.from_numpy(numpy_helper.to_array(tensor).copy()) for tensor in model.graph.initializer
    }

    def run(pixels: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {**weights, model.graph.input[0].name: pixels}
        for node in model.graph.node:
            attributes: dict[str, Any] = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            inputs = [values[name] for name in node.input if name]
            values[node.output[0]] = operator(node.op_type, inputs, attributes)
        return values[model.graph.output[0].name]

    def operator(kind: str, inputs: list[torch.Tensor], attributes: dict[str, Any]) -> torch.Tensor:
        x = inputs[0]
        if kind == "Identity":
            return x
        if kind == "Div":
            return x / inputs[1]
        if kind == "Add":
            return x + inputs[1]
        if kind == "Relu":
            return torch.relu(x)
        if kind == "Clip":
            return torch.clamp(x, float(inputs[1]), float(inputs[2]))
        if kind == "Pad":  # ONNX: all begins then all ends; torch: (begin, end) from the last axis
            pads = [int(p) for p in inputs[1]]
            axes = len(pads) // 2
            return functional.pad(x, [p for axis in reversed(range(axes)) for p in (pads[axis], pads[axis + axes])])
        if kind == "Conv":
            strides = list(attributes.get("strides", [1, 1]))
            if attributes.get("auto_pad", b"NOTSET") == b"SAME_UPPER":
                pads = []
                for axis in (1, 0):  # width first, as torch pads
                    size, kernel, stride = x.shape[2 + axis], attributes["kernel_shape"][axis], strides[axis]
                    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
                    pads += [total // 2, total - total // 2]
                x = functional.pad(x, pads)
            elif any(attributes.get("pads", [])):
                top, left, bottom, right = attributes["pads"]
                x = functional.pad(x, [left, right, top, bottom])
            bias = inputs[2] if len(inputs) > 2 else None
            groups = int(attributes.get("group", 1))
            dilation = list(attributes.get("dilations", [1, 1]))
            return functional.conv2d(x, inputs[1], bias, stride=strides, dilation=dilation, groups=groups)
        if kind == "AveragePool":
            return functional.avg_pool2d(x, list(attributes["kernel_shape"]), list(attributes["strides"]))
        if kind == "Transpose":
            return x.permute(*attributes["perm"])
        if kind == "Flatten":
            return x.flatten(int(attributes.get("axis", 1)))
        if kind == "Gemm":
            a = x.T if attributes.get("transA", 0) else x
            b = inputs[1].T if attributes.get("transB", 0) else inputs[1]
            product = float(attributes.get("alpha", 1.0)) * (a @ b)
            return product + float(attributes.get("beta", 1.0)) * inputs[2] if len(inputs) > 2 else product
        if kind == "Softmax":
            return torch.softmax(x, int(attributes.get("axis", -1)))
        raise NotImplementedError(f"ONNX operator {kind} is not evaluated in torch here")

    return run


if __name__ == "__main__":
    found = search_patch()
    for name, rows in zip(("LEFT", "RIGHT"), found, strict=True):
        print(f"{name} = (\n" + "".join(f'    "{row}",\n' for row in rows) + ")")
