"""The baseline: the same ONNX model run in-process with onnxruntime, no server, no I/O.

Images are turned into tensors before the clock starts, so this measures the model
alone at its best batch size: the ceiling the served pipeline is compared against.
"""

import io
import os
import time
from dataclasses import dataclass
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


def to_tensor(data: bytes) -> "np.ndarray[Any, np.dtype[np.float32]]":
    with Image.open(io.BytesIO(data)) as image:
        rgb = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)


def measure(
    onnx_file: Path,
    images: list[bytes],
    batch_sizes: tuple[int, ...] = (1, 4, 8, 16, 32, 64),
    seconds: float = 4.0,
    threads: int | None = None,
) -> list[RawResult]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    tensors = np.stack([to_tensor(data) for data in images])
    results = []
    for batch_size in batch_sizes:
        batch = np.resize(tensors, (batch_size, *tensors.shape[1:]))
        session.run(None, {name: batch})  # warm-up
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            session.run(None, {name: batch})
            done += batch_size
        results.append(RawResult(batch_size, round(done / (time.perf_counter() - started), 2)))
    return results
