"""The Triton ``preprocess`` model's module (model_repository/preprocess/1/model.py), imported
in-process, once for every test that needs it: its decode and PDQ functions run here exactly as
they run inside Triton's Python backend (the same environment)."""

import functools
import importlib.util
import sys
import types
from typing import Any

from modstream.core.settings import PROJECT_ROOT
from PIL import Image

MODEL = PROJECT_ROOT / "model_repository" / "preprocess" / "1" / "model.py"
MAX_PIXELS = 50_000_000  # model_repository/preprocess/config.pbtxt


@functools.cache
def load() -> Any:
    """model.py as Triton loads it; only its Triton-facing class needs the backend's module."""
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    limit = Image.MAX_IMAGE_PIXELS
    spec = importlib.util.spec_from_file_location("preprocess_model_pdq", MODEL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    Image.MAX_IMAGE_PIXELS = limit  # the import turns Pillow's guard off for the whole process
    return module
