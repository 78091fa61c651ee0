"""The classifier's versions in the Triton model repository on disk.

Layout: ``<repository>/<model>/<N>/model.onnx`` + ``<N>/labels.txt``; the serving
version is the one named by ``version_policy { specific { versions: [N] } }`` in the
model's config.pbtxt (absent: Triton serves the highest version).
"""

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from modstream.core.packages import write_atomically
from modstream.core.settings import SHADOW_SUFFIX

_POLICY = re.compile(r"\nversion_policy: \{ specific: \{ versions: \[ (\d+) \] \} \}\n")
_INPUT_DIMS = re.compile(r"input \[\s*\{[^}]*dims: \[([^\]]*)\]")
CARD_FILE = "card.json"  # how a version was made (learned heads write one), kept beside it


@dataclass(frozen=True)
class Version:
    number: int
    labels: list[str]
    path: Path


class Repository:
    def __init__(self, root: Path, model: str = "image_safety") -> None:
        self.root = root
        self.model = model
        self.folder = root / model
        self.config = self.folder / "config.pbtxt"

    def versions(self) -> list[Version]:
        found = []
        for path in self.folder.iterdir():
            if path.is_dir() and path.name.isdigit() and (path / "model.onnx").is_file():
                found.append(Version(int(path.name), read_labels(path), path))
        return sorted(found, key=lambda v: v.number)

    def serving(self) -> int:
        pinned = _POLICY.search(self.config.read_text())
        if pinned:
            return int(pinned.group(1))
        return max((v.number for v in self.versions()), default=0)

    def input_shape(self) -> tuple[int, ...]:
        """What the model takes per item, from its config (the batch dimension apart)."""
        found = _INPUT_DIMS.search(self.config.read_text())
        if found is None:
            raise ValueError(f"{self.config}: no input dims")
        return tuple(int(d) for d in found.group(1).split(","))

    def shadow(self) -> "Repository":
        """Where a version under shadow lives: a copy under its own model name."""
        return Repository(self.root, self.model + SHADOW_SUFFIX)

    def shadowed(self) -> int | None:
        """The version under shadow, if one is set up."""
        shadow = self.shadow()
        return shadow.serving() if shadow.config.is_file() else None

    def add_version(self, onnx_file: Path, labels: list[str]) -> Version:
        """Copy a checked candidate in as the next version (written aside, then renamed), with
        the ``card.json`` beside it if there is one.

        Unpinned, Triton serves the highest version at its next load: pin what serves
        now first, so that adding a version never changes what serves.
        """
        if not _POLICY.search(self.config.read_text()) and self.versions():
            self.pin(self.serving())
        number = max((v.number for v in self.versions()), default=0) + 1
        staging = self.folder / f".incoming-{number}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        shutil.copyfile(onnx_file, staging / "model.onnx")
        (staging / "labels.txt").write_text("".join(f"{label}\n" for label in labels))
        card = onnx_file.with_name(CARD_FILE)
        if card.is_file():
            shutil.copyfile(card, staging / CARD_FILE)
        shutil.copy(self.folder / "1" / "model.py", staging / "model.py")  # the same onnxruntime runner
        final = self.folder / str(number)
        os.replace(staging, final)
        return Version(number, labels, final)

    def remove_version(self, number: int) -> None:
        shutil.rmtree(self.folder / str(number))

    def pin(self, number: int) -> None:
        """Make ``number`` the version Triton loads (takes effect at the next load)."""
        text = _POLICY.sub("\n", self.config.read_text()).rstrip("\n")
        text += f"\nversion_policy: {{ specific: {{ versions: [ {number} ] }} }}\n"
        write_atomically(self.config, text.encode())


def read_labels(version_dir: Path) -> list[str]:
    for candidate in (version_dir / "labels.txt", version_dir.parent / "labels.txt"):
        if candidate.is_file():
            return [line.strip() for line in candidate.read_text().splitlines() if line.strip()]
    return []
