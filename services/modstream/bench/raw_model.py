"""The baseline: the ensemble's ONNX components run in-process with onnxruntime, no server, no I/O.

Images are turned into tensors before the clock starts, so this measures the models
alone: each component on its own (its cost per image), and all of them on the same batch,
the in-process ensemble, run two ways: one after the other with every core each, and side
by side in threads with one core each (as Triton runs them). The faster is the ceiling the
served pipeline is compared against.

The components are wired as Triton's ensemble wires them: those that read the pixels run on
the image batch, and one whose input is another's output (the learned heads read
EfficientNet-Lite0's embedding) runs after it, on that output. The wiring is read from the
ONNX graphs themselves (an input is fed by the output of the same name and shape), so a new
component needs no change here.
"""

import io
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from PIL import Image

SIZE = 224
SECONDS = 4.0  # each batch size, each mode; each component alone half of it

Array = npt.NDArray[Any]
Pixels = npt.NDArray[np.float32]
Outputs = dict[str, dict[str, Array]]  # component -> its ONNX outputs by name
Feed = tuple[ort.InferenceSession, dict[str, Array]]  # a session and its input by name
RunStage = Callable[[list[Feed]], Iterable[dict[str, Array]]]

# onnxruntime's names of the element types an input may declare.
_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


class Unwired(ValueError):
    """A component's input is neither the pixel batch nor another component's output."""


@dataclass(frozen=True)
class Step:
    """One component as the ensemble runs it: what feeds its ONNX input."""

    component: str  # name:version
    input: str  # its ONNX input's name
    dtype: "np.dtype[Any]"  # the type that input declares: Triton's runner casts what it is given to it
    source: tuple[str, str] | None  # (component, output name) feeding it; None: the pixel batch

    def describe(self) -> str:
        return "pixels" if self.source is None else "/".join(self.source)


@dataclass(frozen=True)
class RawResult:
    batch_size: int
    images_per_second: float
    mode: str  # "sequential" (all threads each) or "parallel" (a thread per component)


@dataclass(frozen=True)
class ComponentCost:
    component: str  # name:version
    ms_per_image: float  # alone with every core, at its best batch size, fed what it gets in the ensemble


@dataclass(frozen=True)
class RawEnsemble:
    by_batch_size: list[RawResult]
    best: RawResult
    components: list[ComponentCost]
    inputs: dict[str, str]  # component -> "pixels" or the "component/output" feeding it

    def best_by_mode(self) -> dict[str, RawResult]:
        found: dict[str, RawResult] = {}
        for result in self.by_batch_size:
            if result.mode not in found or result.images_per_second > found[result.mode].images_per_second:
                found[result.mode] = result
        return found


def to_tensor(data: bytes) -> Pixels:
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
    seconds: float = SECONDS,
) -> RawEnsemble:
    """``components`` (name:version -> ONNX file) on ``images``: the whole at each batch size
    both ways, then each component alone with every core at its own best batch size."""
    wide = {name: session(path) for name, path in components.items()}
    narrow = {name: session(path, threads=1) for name, path in components.items()}
    tensors = np.stack([to_tensor(data) for data in images])
    stages = wiring(wide, tensors.shape[1:])

    def sequential(batch: Pixels) -> None:
        run_stages(stages, wide, batch, one_after_another)

    with ThreadPoolExecutor(max(len(stage) for stage in stages)) as threads:

        def parallel(batch: Pixels) -> None:
            # Stage by stage: the heads wait for every image component, where Triton starts them
            # once EfficientNet is done; what they cost is small enough not to matter.
            run_stages(stages, narrow, batch, partial(threads.map, _outputs))

        results = [
            RawResult(size, _rate(run, _batch(tensors, size), seconds), mode)
            for mode, run in (("sequential", sequential), ("parallel", parallel))
            for size in batch_sizes
        ]
    best = max(results, key=lambda r: r.images_per_second)
    fed = ensemble_inputs(stages, wide, tensors, max(batch_sizes))
    costs = [
        ComponentCost(
            step.component, _cost(wide[step.component], step.input, fed[step.component], batch_sizes, seconds)
        )
        for stage in stages
        for step in stage
    ]
    inputs = {step.component: step.describe() for stage in stages for step in stage}
    return RawEnsemble(by_batch_size=results, best=best, components=costs, inputs=inputs)


def wiring(sessions: Mapping[str, ort.InferenceSession], pixels: Sequence[int]) -> list[list[Step]]:
    """The components in stages, as Triton's ensemble schedules them: first those that read the
    pixel batch (one image's shape: ``pixels``), then each whose input is an output of an
    earlier stage. An input that nothing feeds is an error, not a guess."""
    steps = [_step(name, sessions, pixels) for name in sessions]
    stages: list[list[Step]] = []
    placed: set[str] = set()
    while len(placed) < len(steps):
        ready = [s for s in steps if s.component not in placed and (s.source is None or s.source[0] in placed)]
        if not ready:
            waiting = {s.component: s.describe() for s in steps if s.component not in placed}
            raise Unwired(f"components feed each other in a circle, none can run first: {waiting}")
        stages.append(ready)
        placed |= {s.component for s in ready}
    return stages


def _step(name: str, sessions: Mapping[str, ort.InferenceSession], pixels: Sequence[int]) -> Step:
    inputs = sessions[name].get_inputs()
    if len(inputs) != 1:
        raise Unwired(f"{name} has {len(inputs)} ONNX inputs; the ensemble feeds a component one")
    given = inputs[0]
    # Matched by name and shape, as Triton's ensemble config maps one step's output to another's input.
    producers = [
        (other, output.name)
        for other, one in sessions.items()
        if other != name
        for output in one.get_outputs()
        if output.name == given.name and _fits(output.shape, given.shape)
    ]
    if len(producers) > 1:
        raise Unwired(f"{name}'s input {given.name!r} {given.shape} could be fed by any of {producers}")
    if not producers and not _fits(given.shape, [None, *pixels]):
        raise Unwired(
            f"{name}'s input {given.name!r} {given.shape} is neither the pixel batch {['batch', *pixels]} "
            f"nor an output of another component ({', '.join(o for o in sessions if o != name) or 'none'})"
        )
    if given.type not in _DTYPES:
        raise Unwired(f"{name}'s input {given.name!r} is {given.type}, which the baseline cannot feed")
    return Step(name, given.name, np.dtype(_DTYPES[given.type]), producers[0] if producers else None)


def _fits(declared: Sequence[object], shape: Sequence[object]) -> bool:
    """Same rank, and every dimension both give as a number the same (symbolic ones fit any)."""
    numbers = [(a, b) for a, b in zip(declared, shape, strict=False) if isinstance(a, int) and isinstance(b, int)]
    return len(declared) == len(shape) and all(a == b for a, b in numbers)


def run_stages(
    stages: list[list[Step]], sessions: Mapping[str, ort.InferenceSession], pixels: Pixels, run_stage: RunStage
) -> Outputs:
    """Every component's outputs on ``pixels``, stage after stage; ``run_stage`` runs one
    stage's components (one after another, or side by side in threads)."""
    outputs: Outputs = {}
    for stage in stages:
        feeds = [(sessions[step.component], {step.input: _fed(step, pixels, outputs)}) for step in stage]
        outputs.update(zip((step.component for step in stage), run_stage(feeds), strict=True))
    return outputs


def one_after_another(feeds: list[Feed]) -> Iterable[dict[str, Array]]:
    return map(_outputs, feeds)


def ensemble_inputs(
    stages: list[list[Step]], sessions: Mapping[str, ort.InferenceSession], tensors: Pixels, chunk: int
) -> dict[str, Array]:
    """What each component is fed in the ensemble on ``tensors``: the pixels, or its source's
    outputs on them (computed ``chunk`` images at a time, as the ensemble would batch them)."""
    fed: dict[str, list[Array]] = {step.component: [] for stage in stages for step in stage}
    for start in range(0, len(tensors), chunk):
        pixels = tensors[start : start + chunk]
        outputs = run_stages(stages, sessions, pixels, one_after_another)
        for stage in stages:
            for step in stage:
                fed[step.component].append(_fed(step, pixels, outputs))
    return {component: np.concatenate(parts) for component, parts in fed.items()}


def _fed(step: Step, pixels: Pixels, outputs: Outputs) -> Array:
    given = pixels if step.source is None else outputs[step.source[0]][step.source[1]]
    # Cast as Triton's runner casts (EfficientNet's float16 embedding to the heads' float32).
    return given.astype(step.dtype, copy=False)


def _outputs(feed: Feed) -> dict[str, Array]:
    one, given = feed
    names = [output.name for output in one.get_outputs()]
    return dict(zip(names, one.run(names, given), strict=True))


def _cost(
    one: ort.InferenceSession, input_name: str, fed: Array, batch_sizes: tuple[int, ...], seconds: float
) -> float:
    """Milliseconds per image of one component alone on what it is fed, at its best batch size."""
    run = partial(_run, one, input_name)
    return round(1000 / max(_rate(run, _batch(fed, size), seconds / 2) for size in batch_sizes), 2)


def _run(one: ort.InferenceSession, input_name: str, batch: Array) -> None:
    one.run(None, {input_name: batch})


def _batch(tensors: Array, size: int) -> Array:
    return np.resize(tensors, (size, *tensors.shape[1:]))


def _rate(run: Callable[[Array], object], batch: Array, seconds: float) -> float:
    """Images per second running ``run`` on ``batch`` over and over for ``seconds``."""
    run(batch)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run(batch)
        done += len(batch)
    return round(done / (time.perf_counter() - started), 2)
