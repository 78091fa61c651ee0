"""The baseline: the ensemble's ONNX components run in-process with onnxruntime, no server, no I/O.

Images are turned into tensors before the clock starts, so this measures the models
alone: each component on its own (its cost per image), and all of them one after the
other on the same batch (the in-process ensemble: the ceiling the served pipeline is
compared against).
"""

import io
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from PIL import Image

SIZE = 224


@dataclass(frozen=True)
class RawResult:
    batch_size: int
    images_per_second: float


@dataclass(frozen=True)
class ComponentCost:
    component: str  # name:version
    ms_per_image: float  # at the ensemble's best batch size


@dataclass(frozen=True)
class RawEnsemble:
    by_batch_size: list[RawResult]
    best: RawResult
    components: list[ComponentCost]


def to_tensor(data: bytes) -> "np.ndarray[Any, np.dtype[np.float32]]":
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)


def session(onnx_file: Path, threads: int | None = None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


def measure(
    components: dict[str, Path],
    images: list[bytes],
    batch_sizes: tuple[int, ...] = (1, 4, 8, 16),
    seconds: float = 4.0,
    threads: int | None = None,
) -> RawEnsemble:
    """``components`` (name:version -> ONNX file) on ``images``: the whole at each batch size,
    then each component alone at the best one."""
    sessions = {name: session(path, threads) for name, path in components.items()}
    tensors = np.stack([to_tensor(data) for data in images])

    def run_all(batch: "np.ndarray[Any, np.dtype[np.float32]]") -> None:
        for one in sessions.values():
            _run(one, batch)

    results = [RawResult(size, _rate(run_all, _batch(tensors, size), seconds)) for size in batch_sizes]
    best = max(results, key=lambda r: r.images_per_second)
    batch = _batch(tensors, best.batch_size)
    costs = [
        ComponentCost(name, round(1000 / _rate(partial(_run, one), batch, seconds), 2))
        for name, one in sessions.items()
    ]
    return RawEnsemble(by_batch_size=results, best=best, components=costs)


def _run(one: ort.InferenceSession, batch: "np.ndarray[Any, np.dtype[np.float32]]") -> None:
    one.run(None, {one.get_inputs()[0].name: batch})


def _batch(tensors: "np.ndarray[Any, np.dtype[np.float32]]", size: int) -> "np.ndarray[Any, np.dtype[np.float32]]":
    return np.resize(tensors, (size, *tensors.shape[1:]))


def _rate(
    run: Callable[["np.ndarray[Any, np.dtype[np.float32]]"], object],
    batch: "np.ndarray[Any, np.dtype[np.float32]]",
    seconds: float,
) -> float:
    """Images per second running ``run`` on ``batch`` over and over for ``seconds``."""
    run(batch)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run(batch)
        done += len(batch)
    return round(done / (time.perf_counter() - started), 2)
