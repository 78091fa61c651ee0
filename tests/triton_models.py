"""A Triton Python-backend model's file (``model_repository/<name>/1/model.py``), imported
in-process once: its functions run here exactly as inside Triton's Python backend (the same
environment); only its Triton-facing class needs the backend's module, which is stubbed."""

import functools
import importlib.util
import sys
import types
from typing import Any

from modstream.core.settings import PROJECT_ROOT


@functools.cache
def model_module(name: str) -> Any:
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    path = PROJECT_ROOT / "model_repository" / name / "1" / "model.py"
    spec = importlib.util.spec_from_file_location(f"{name}_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
