"""The baseline: the ensemble's ONNX components run in-process with onnxruntime, no server, no I/O.

Images are turned into tensors before the clock starts, so this measures the models
alone: each component on its own (its cost per image), and all of them on the same batch,
the in-process ensemble, run two ways: one after the other with every core each, and side
by side in threads with one core each (as Triton runs them). The faster is the ceiling the
served pipeline is compared against.
"""

import io
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    mode: str  # "sequential" (all threads each) or "parallel" (a thread per component)


@dataclass(frozen=True)
class ComponentCost:
    component: str  # name:version
    ms_per_image: float  # alone with every core, at its best batch size


@dataclass(frozen=True)
class RawEnsemble:
    by_batch_size: list[RawResult]
    best: RawResult
    components: list[ComponentCost]

    def best_by_mode(self) -> dict[str, RawResult]:
        found: dict[str, RawResult] = {}
        for result in self.by_batch_size:
            if result.mode not in found or result.images_per_second > found[result.mode].images_per_second:
                found[result.mode] = result
        return found


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
) -> RawEnsemble:
    """``components`` (name:version -> ONNX file) on ``images``: the whole at each batch size
    both ways, then each component alone with every core at its own best batch size."""
    wide = {name: session(path) for name, path in components.items()}
    narrow = [session(path, threads=1) for path in components.values()]
    tensors = np.stack([to_tensor(data) for data in images])

    def sequential(batch: "np.ndarray[Any, np.dtype[np.float32]]") -> None:
        for one in wide.values():
            _run(one, batch)

    with ThreadPoolExecutor(len(narrow)) as threads:

        def parallel(batch: "np.ndarray[Any, np.dtype[np.float32]]") -> None:
            list(threads.map(partial(_run, batch=batch), narrow))

        results = [
            RawResult(size, _rate(run, _batch(tensors, size), seconds), mode)
            for mode, run in (("sequential", sequential), ("parallel", parallel))
            for size in batch_sizes
        ]
    best = max(results, key=lambda r: r.images_per_second)
    costs = [
        ComponentCost(
            name,
            round(1000 / max(_rate(partial(_run, one), _batch(tensors, size), seconds / 2) for size in batch_sizes), 2),
        )
        for name, one in wide.items()
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
