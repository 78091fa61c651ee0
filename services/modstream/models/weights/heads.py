"""``heads``: version 1 of the learned heads has none (see models/heads.py); built here so the
ensemble has a heads step to run before any label is learned. Nothing is downloaded."""

from pathlib import Path

from modstream.models.heads import no_heads
from modstream.models.weights.component import Built, Component


def build(cache_dir: Path) -> Built:
    return Built(onnx=no_heads().onnx(), license="No weights: version 1 of the learned heads has no heads.\n")


COMPONENT = Component(name="heads", stamp="no heads, graph revision 1", build=build)
