"""The Triton ``preprocess`` model's module (model_repository/preprocess/1/model.py), imported
in-process, once for every test that needs it: its decode and PDQ functions run here exactly as
they run inside Triton's Python backend (the same environment)."""

import functools
from typing import Any

from PIL import Image

from tests.triton_models import model_module

MAX_PIXELS = 50_000_000  # model_repository/preprocess/config.pbtxt


@functools.cache
def load() -> Any:
    """model.py as Triton loads it."""
    limit = Image.MAX_IMAGE_PIXELS
    module = model_module("preprocess")
    Image.MAX_IMAGE_PIXELS = limit  # the import turns Pillow's guard off for the whole process
    return module
