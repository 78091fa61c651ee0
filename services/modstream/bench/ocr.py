"""``modstream bench --text N``: what reading the text in images costs, and how well it reads.

The images: N crops of the demo's sample photos (as ``bench/emblem.py`` makes them) and the
same crops with 2-4 lines of scam-like text drawn on them with Pillow (phrases, phone numbers,
URLs, handles; 16-40 px; dark on a light banner, light on a dark one, or outlined on the photo
as memes are), deterministic for a seed, the drawn lines kept as the ground truth.

The two ensembles, on the running Triton: the serving one (OCR on) and a copy of it without the
ocr step (OCR off), which this bench writes into the model repository under a name of its own,
loads, and unloads and removes afterwards, whatever happens. The copy answers no TEXT and does
not ask the preprocess model for its TEXT_IMAGE (made only when asked for), and its taxonomy
step is a copy of the taxonomy model without the ocr inputs (the taxonomy takes its components
from its inputs): it is the ensemble as it served before OCR.

Cost: the CPU time of tritonserver and its Python backend stubs (the whole process tree) over a
pass of sequential requests, divided by the images. CPU time rather than wall time, because the
machine's other work stretches the second and barely the first. Throughput: images/s with
requests in flight concurrently. Each is the median of a few repetitions, OCR off and on
interleaved in the same run, and OCR on is given as a ratio to OCR off.

Accuracy: the character error rate of what OCR on read in the text images (edit distance over
the drawn text's length, case-sensitive, the lines joined by a space), with the drawn lines it
found, by font size and by the size the text has where detection looks at it.
"""

import asyncio
import io
import os
import platform
import shutil
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import psutil
import tritonclient.grpc as triton
from google.protobuf import text_format
from PIL import Image, ImageDraw, ImageFont
from tritonclient.grpc import model_config_pb2

from modstream.bench import triton_metrics
from modstream.bench.emblem import BACKGROUNDS, crop
from modstream.bench.served import images_per_second
from modstream.core.events import Box, TextLine, TextReading
from modstream.core.inference import TritonScorer, image_input
from modstream.core.settings import Settings
from modstream.demo.samples import source_photos

OCR_STEP = "ocr"  # the ensemble step (and model) that reads text
COPY_SUFFIX = "_bench_no_ocr"  # the copies' names: nothing else in the repository ends so
PREPROCESS = "preprocess"  # every request goes through it once: its count tells others' requests
REPETITIONS = 3
SECONDS = 3.0  # each throughput window
CONCURRENCY = 8  # requests in flight for throughput: one full batch of the ensemble's models
IDLE_SECONDS = 1.0
WARM_UP = 8  # images sent through the copy before it is measured (onnxruntime's first runs are slow)

# The goals (issue 23, "Numbers").
NO_TEXT_COST_RATIO = 1.15
EXTRA_MS_WITH_TEXT = 150.0
MAX_CER = 0.05

SIZES = (16, 20, 24, 32, 40)  # font sizes drawn, px in the image
LEADING = 1.35  # line height over font size
MARGIN = 8  # px kept free around the text block
PAD = 6  # px of banner around the text
STYLES = ("dark_on_light", "light_on_dark", "outlined")
LIGHT = ((255, 255, 255), (246, 240, 220), (230, 236, 246), (255, 226, 0))
DARK = ((0, 0, 0), (20, 30, 90), (120, 12, 12), (30, 30, 36))
# What scam, spam and phishing images say: offers, urgency, phone numbers, URLs, handles. Short
# ones too, so that a line fits on the narrowest crop at the largest size.
PHRASES = (
    "FREE CRYPTO GIVEAWAY",
    "Send 0.1 BTC, get 1 BTC back",
    "Claim your prize now!",
    "You have won $1,000",
    "Your account is locked",
    "Verify your password today",
    "Limited offer: 90% OFF",
    "Double your money in 24h",
    "visit scam-coin.example",
    "www.free-prize.example/claim",
    "https://secure-login.example.com",
    "bit.ly/win-iphone15",
    "call +1 555 0100",
    "WhatsApp +44 7700 900123",
    "Text 555-0199 to win",
    "DM @crypto_king_77",
    "Follow @giveaway.official",
    "Click the link in bio",
    "WIN BIG",
    "Act fast",
)


class NoOcrStep(ValueError):
    """The serving ensemble has no ocr step (or answers no TEXT): nothing to measure."""


class ModelControl(Protocol):
    """Triton's model control, as ``models.control.TritonControl`` gives it (passed in by the CLI)."""

    def load(self, model: str) -> None: ...

    def unload(self, model: str) -> None: ...

    def wait_ready(self, model: str, version: int, timeout: float = 120.0) -> None: ...


# The images --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawnLine:
    text: str
    font_px: int
    box: Box  # x0, y0, x1, y1 as fractions of the image's width and height, as a TextLine's


@dataclass(frozen=True)
class TextSample:
    name: str
    plain: bytes  # the crop as JPEG
    with_text: bytes  # the same crop with the lines drawn, as JPEG
    width: int
    height: int
    style: str
    lines: tuple[DrawnLine, ...]  # top to bottom


def samples(cache_dir: Path, count: int, seed: int) -> list[TextSample]:
    """``count`` crops, each photo in turn, with their text; the same for the same seed."""
    rng = np.random.default_rng(seed)
    photos = source_photos(cache_dir)
    backgrounds = {name: Image.open(io.BytesIO(photos[name])).convert("RGB") for name in BACKGROUNDS}
    made = []
    for i in range(count):
        name = BACKGROUNDS[i % len(BACKGROUNDS)]
        # Larger crops than the emblem's: the smallest photo (384x303) must still take 2 lines at 40 px.
        photo = crop(backgrounds[name], rng, shares=(0.7, 1.0))
        style = STYLES[int(rng.integers(len(STYLES)))]
        texted, lines = draw_text(photo, rng, style)
        made.append(
            TextSample(
                f"text-{seed}-{i:03d}-{Path(name).stem}",
                _jpeg(photo),
                _jpeg(texted),
                photo.width,
                photo.height,
                style,
                lines,
            )
        )
    return made


def draw_text(photo: Image.Image, rng: np.random.Generator, style: str) -> tuple[Image.Image, tuple[DrawnLine, ...]]:
    """``photo`` with 2-4 lines (fewer when they do not fit) in one left-aligned block at a random
    place, and the lines drawn. A line's size is drawn from ``SIZES``, then lowered until some
    phrase not yet used fits the width."""
    image = photo.copy()
    draw = ImageDraw.Draw(image)
    room = image.width - 2 * (MARGIN + PAD)
    unused = [PHRASES[int(i)] for i in rng.permutation(len(PHRASES))]
    chosen: list[tuple[str, int]] = []
    for _ in range(int(rng.integers(2, 5))):
        fitting = _fitting(unused, SIZES[int(rng.integers(len(SIZES)))], room, style)
        if fitting is not None:
            unused.remove(fitting[0])
            chosen.append(fitting)
    while len(chosen) > 1 and _block_height(chosen) > image.height - 2 * (MARGIN + PAD):
        chosen.pop()
    width = max(_width(text, size, style) for text, size in chosen)
    x = int(rng.integers(MARGIN + PAD, max(MARGIN + PAD, image.width - MARGIN - PAD - width) + 1))
    y = int(rng.integers(MARGIN + PAD, max(MARGIN + PAD, image.height - MARGIN - PAD - _block_height(chosen)) + 1))
    foreground, background = _colours(rng, style)
    placed: list[tuple[str, int, tuple[int, int], tuple[int, int, int, int]]] = []
    for text, size in chosen:
        stroke = _stroke(size, style)
        bbox = draw.textbbox((x, y), text, font=_font(size), stroke_width=stroke)
        placed.append((text, size, (x, y), (int(bbox[0]), int(bbox[1]), int(bbox[2]), int(bbox[3]))))
        y += round(size * LEADING)
    if background is not None:
        draw.rectangle(
            (
                min(b[0] for *_, b in placed) - PAD,
                min(b[1] for *_, b in placed) - PAD,
                max(b[2] for *_, b in placed) + PAD,
                max(b[3] for *_, b in placed) + PAD,
            ),
            fill=background,
        )
    lines = []
    for text, size, at, (x0, y0, x1, y1) in placed:
        stroke = _stroke(size, style)
        outline = (0, 0, 0) if stroke else None
        draw.text(at, text, font=_font(size), fill=foreground, stroke_width=stroke, stroke_fill=outline)
        box = (
            round(x0 / image.width, 4),
            round(y0 / image.height, 4),
            round(x1 / image.width, 4),
            round(y1 / image.height, 4),
        )
        lines.append(DrawnLine(text, size, box))
    return image, tuple(lines)


def _fitting(phrases: Sequence[str], size: int, room: int, style: str) -> tuple[str, int] | None:
    for smaller in sorted((s for s in SIZES if s <= size), reverse=True):
        for phrase in phrases:
            if _width(phrase, smaller, style) <= room:
                return phrase, smaller
    return None


def _block_height(lines: Sequence[tuple[str, int]]) -> int:
    return sum(round(size * LEADING) for _, size in lines)


def _width(text: str, size: int, style: str) -> int:
    return int(_font(size).getlength(text)) + 2 * _stroke(size, style)


def _stroke(size: int, style: str) -> int:
    # Thin enough to leave the letters open at 16 px, as meme captions are drawn.
    return max(1, size // 12) if style == "outlined" else 0


def _colours(rng: np.random.Generator, style: str) -> tuple[tuple[int, int, int], tuple[int, int, int] | None]:
    """(text, banner) colours; an outlined line has no banner."""
    light = LIGHT[int(rng.integers(len(LIGHT)))]
    dark = DARK[int(rng.integers(len(DARK)))]
    if style == "dark_on_light":
        return dark, light
    if style == "light_on_dark":
        return light, dark
    return light, None


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    # Pillow's own font (Aileron Regular): the same glyphs on every machine, no system fonts needed.
    font = ImageFont.load_default(size)
    if not isinstance(font, ImageFont.FreeTypeFont):
        raise RuntimeError("Pillow was built without FreeType: it cannot draw text at a chosen size")
    return font


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


# Accuracy ----------------------------------------------------------------------------------


def levenshtein(a: str, b: str) -> int:
    """Edits (insert, delete, substitute one character) that turn ``a`` into ``b``."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char != other)))
        previous = current
    return previous[-1]


def error_rate(pairs: Iterable[tuple[str, str]]) -> float:
    """Character error rate of (reference, read) pairs: their edit distances over the
    references' length, together (a long line weighs as its characters do)."""
    errors = length = 0
    for reference, read in pairs:
        errors += levenshtein(reference, read)
        length += len(reference)
    return errors / length if length else 0.0


@dataclass(frozen=True)
class LineResult:
    reference: str
    read: str  # the read lines that overlap it most, left to right, joined by a space; "" when none
    font_px: int
    detect_px: float  # the font size where detection looks at it


@dataclass(frozen=True)
class ImageResult:
    name: str
    style: str
    reference: str  # the drawn lines joined by a space
    read: str  # every line read, in reading order, joined by a space
    lines: list[LineResult]
    lines_read: int
    extra_lines: int  # read lines that overlap no drawn line


def judge(sample: TextSample, reading: TextReading, detect_side: int) -> ImageResult:
    """What OCR read in ``sample``'s text image against what was drawn. Each read line belongs to
    the drawn line its box overlaps most (detection may cut a line in pieces at wide gaps)."""
    assigned: list[list[TextLine]] = [[] for _ in sample.lines]
    extra = 0
    for line in reading.lines:
        overlaps = [_overlap(line.box, drawn.box) for drawn in sample.lines]
        best = max(range(len(overlaps)), key=overlaps.__getitem__, default=None)
        if best is None or overlaps[best] <= 0:
            extra += 1
        else:
            assigned[best].append(line)
    scale = detect_side / max(sample.width, sample.height)  # detection brings the longer side to detect_side
    lines = [
        LineResult(
            drawn.text,
            " ".join(line.text for line in sorted(parts, key=lambda line: line.box[0])),
            drawn.font_px,
            round(drawn.font_px * scale, 1),
        )
        for drawn, parts in zip(sample.lines, assigned, strict=True)
    ]
    return ImageResult(
        name=sample.name,
        style=sample.style,
        reference=" ".join(drawn.text for drawn in sample.lines),
        read=" ".join(line.text for line in reading.lines),
        lines=lines,
        lines_read=len(reading.lines),
        extra_lines=extra,
    )


def _overlap(a: Box, b: Box) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, width) * max(0.0, height)


# Below this many px at detection, small print: the buckets of the report's by-detection-size rows.
DETECT_BUCKETS = (8.0, 12.0, 16.0)


def accuracy(results: Sequence[ImageResult], worst: int = 5) -> dict[str, Any]:
    """The run's character error rate (the issue's measure), the same without spaces (what is
    lost by the recogniser's spacing alone), the drawn lines found, and each by font size, by
    size at detection and by style; and the images read worst, to look at."""
    lines = [line for result in results for line in result.lines]

    def rows(key: Callable[[LineResult], Any]) -> dict[str, dict[str, Any]]:
        groups: dict[Any, list[LineResult]] = {}
        for line in lines:
            groups.setdefault(key(line), []).append(line)
        return {str(k): _line_summary(groups[k]) for k in sorted(groups)}

    styles = {
        style: round(error_rate((r.reference, r.read) for r in results if r.style == style), 4)
        for style in sorted({r.style for r in results})
    }
    ordered = sorted(results, key=lambda r: levenshtein(r.reference, r.read) / max(1, len(r.reference)), reverse=True)
    return {
        "cer": round(error_rate((r.reference, r.read) for r in results), 4),
        "cer_without_spaces": round(error_rate((_unspaced(r.reference), _unspaced(r.read)) for r in results), 4),
        "characters": sum(len(r.reference) for r in results),
        "images": len(results),
        "lines_drawn": len(lines),
        "lines_found": sum(1 for line in lines if line.read),
        "lines_read": sum(r.lines_read for r in results),
        "extra_lines": sum(r.extra_lines for r in results),
        "by_font_px": rows(lambda line: line.font_px),
        "by_detect_px": rows(_bucket),
        "cer_by_style": styles,
        "worst": [
            {
                "image": r.name,
                "drawn": r.reference,
                "read": r.read,
                "cer": round(error_rate([(r.reference, r.read)]), 3),
            }
            for r in ordered[:worst]
            if r.reference != r.read
        ],
        # Every line not read exactly, with its sizes and style: what a change to the model must fix.
        "misread_lines": [
            {"image": r.name, "style": r.style} | asdict(line)
            for r in results
            for line in r.lines
            if line.read != line.reference
        ],
    }


def _line_summary(lines: list[LineResult]) -> dict[str, Any]:
    return {
        "lines": len(lines),
        "found": sum(1 for line in lines if line.read),
        "cer": round(error_rate((line.reference, line.read) for line in lines), 4),
    }


def _bucket(line: LineResult) -> str:
    """The size class at detection, e.g. "8-12" (px); sorted as strings, so zero-padded."""
    edges = (0.0, *DETECT_BUCKETS)
    for low, high in zip(edges, (*DETECT_BUCKETS, float("inf")), strict=True):
        if low <= line.detect_px < high:
            return f"{low:02.0f}-{high:02.0f}" if high != float("inf") else f"{low:02.0f}+"
    raise AssertionError("unreachable: the buckets cover every size")


def _unspaced(text: str) -> str:
    return "".join(text.split())


# The ensemble without OCR -------------------------------------------------------------------


def _parse(path: Path) -> Any:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def without_step(ensemble: Any, step_model: str, name: str, suffix: str) -> tuple[Any, dict[str, set[str]]]:
    """A copy of ``ensemble`` (a ModelConfig) named ``name`` without the step that runs
    ``step_model``, and without all that only fed or came from it: the ensemble's outputs it
    made, the other steps' inputs it fed, and the other steps' outputs only it read (which a
    model then need not make). A step that lost inputs runs a copy of its model named with
    ``suffix``; returned beside the copy: each such model and the inputs its copy must lose."""
    steps = ensemble.ensemble_scheduling.step
    dropped = [step for step in steps if step.model_name == step_model]
    if not dropped:
        raise NoOcrStep(f"the ensemble {ensemble.name!r} has no {step_model!r} step")
    made = {tensor for step in dropped for tensor in step.output_map.values()}
    read = {tensor for step in dropped for tensor in step.input_map.values()}
    copy = model_config_pb2.ModelConfig()
    copy.CopyFrom(ensemble)
    copy.name = name
    kept = [step for step in copy.ensemble_scheduling.step if step.model_name != step_model]
    del copy.ensemble_scheduling.step[:]
    copy.ensemble_scheduling.step.extend(kept)
    outputs = [output for output in copy.output if output.name not in made]
    del copy.output[:]
    copy.output.extend(outputs)
    losing: dict[str, set[str]] = {}
    for step in copy.ensemble_scheduling.step:
        lost = {key for key, tensor in step.input_map.items() if tensor in made}
        if lost:
            for key in lost:
                del step.input_map[key]
            losing[step.model_name] = lost
            step.model_name += suffix
    wanted = {tensor for step in copy.ensemble_scheduling.step for tensor in step.input_map.values()}
    wanted |= {output.name for output in copy.output}
    for step in copy.ensemble_scheduling.step:
        for key in [key for key, tensor in step.output_map.items() if tensor in read and tensor not in wanted]:
            del step.output_map[key]
    return copy, losing


def without_inputs(model: Any, name: str, inputs: set[str]) -> Any:
    """A copy of ``model`` (a ModelConfig) named ``name`` that declares none of ``inputs``."""
    missing = inputs - {entry.name for entry in model.input}
    if missing:
        raise ValueError(f"{model.name} has no input {sorted(missing)}")
    copy = model_config_pb2.ModelConfig()
    copy.CopyFrom(model)
    copy.name = name
    kept = [entry for entry in copy.input if entry.name not in inputs]
    del copy.input[:]
    copy.input.extend(kept)
    return copy


def write_without_ocr(root: Path, ensemble: str, suffix: str = COPY_SUFFIX) -> list[str]:
    """Write ``ensemble`` without its ocr step into the repository at ``root``, with a copy of each
    model that must lose the ocr inputs (the taxonomy step's); the names written, in the order to
    load them (the ensemble last). Copies left by an earlier run are written over."""
    config, losing = without_step(_parse(root / ensemble / "config.pbtxt"), OCR_STEP, ensemble + suffix, suffix)
    names = []
    for model, inputs in sorted(losing.items()):
        target = root / (model + suffix)
        shutil.rmtree(target, ignore_errors=True)
        # The model's code and files as they are (the taxonomy's file, read relative to its folder).
        shutil.copytree(root / model, target, ignore=shutil.ignore_patterns("__pycache__", "config.pbtxt"))
        _write_config(target, without_inputs(_parse(root / model / "config.pbtxt"), target.name, inputs))
        names.append(target.name)
    target = root / config.name
    shutil.rmtree(target, ignore_errors=True)
    (target / "1").mkdir(parents=True)  # an ensemble has a version folder and nothing in it
    _write_config(target, config)
    return [*names, config.name]


def _write_config(folder: Path, config: Any) -> None:
    header = "# Written by `modstream bench --text` for the run's OCR-off side; removed when it ends.\n"
    (folder / "config.pbtxt").write_text(header + text_format.MessageToString(config))


def remove_copies(root: Path, names: Sequence[str]) -> None:
    for name in names:
        if name.endswith(COPY_SUFFIX):  # never anything the bench did not write
            shutil.rmtree(root / name, ignore_errors=True)


def detect_side(root: Path) -> int:
    """The ocr model's detection size (its ``detect_side`` parameter), px on the longer side."""
    parameters = _parse(root / OCR_STEP / "config.pbtxt").parameters
    return int(parameters["detect_side"].string_value)


# Measuring ---------------------------------------------------------------------------------


def cpu_seconds(process: psutil.Process) -> dict[int, float]:
    """User + system CPU seconds of ``process`` and each process under it, by PID (the Python
    backend's stubs are tritonserver's children; a model loaded meanwhile adds one)."""
    found = {}
    for one in [process, *process.children(recursive=True)]:
        try:
            times = one.cpu_times()
        except psutil.NoSuchProcess:
            continue
        found[one.pid] = times.user + times.system
    return found


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two readings; a process started between them counts whole."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


@dataclass(frozen=True)
class Pass:
    """One sequential pass over one image set on one ensemble."""

    ocr: bool
    text: bool
    images: int
    seconds: float
    cpu_seconds: float
    others: int  # requests other clients made to Triton meanwhile (their CPU counts here too)

    @property
    def cpu_ms_per_image(self) -> float:
        return 1000 * self.cpu_seconds / self.images

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds


@dataclass(frozen=True)
class Throughput:
    """One window of concurrent requests over one image set on one ensemble."""

    ocr: bool
    text: bool
    images_per_second: float
    cpu_ms_per_image: float  # as batched: requests in flight together share model executions


def run_text_bench(
    settings: Settings,
    triton_process: psutil.Process,
    control: ModelControl,
    count: int,
    seed: int,
    *,
    repetitions: int = REPETITIONS,
    seconds: float = SECONDS,
    concurrency: int = CONCURRENCY,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> dict[str, Any]:
    """The whole run against the running Triton (``triton_process`` is its server process): the
    images, the OCR-off copy written and loaded, accuracy, cost and throughput, the copy unloaded
    and removed."""
    root, serving = settings.model_repository, settings.triton_model
    on_stage(f"{count} photos without text and the same with text (seed {seed})")
    images = samples(settings.state_dir / "cache", count, seed)
    side = detect_side(root)
    names = write_without_ocr(root, serving)
    copy = names[-1]
    on_stage(f"OCR off: {copy}, {serving} without its ocr step, written and loaded ({', '.join(names)})")
    load_average = os.getloadavg()
    try:
        for name in names:
            control.load(name)
        control.wait_ready(copy, 1)
        measured = _measure(
            settings.triton_grpc,
            settings.triton_metrics,
            serving,
            copy,
            triton_process,
            images,
            side,
            repetitions,
            seconds,
            concurrency,
            on_stage,
        )
    finally:
        for name in reversed(names):  # the ensemble first: it runs the others
            try:
                control.unload(name)
            except Exception as exc:  # cleaning up: say so, and unload and remove the rest
                on_stage(f"Triton did not unload {name}: {exc}")
        remove_copies(root, names)
        on_stage(f"OCR off: {', '.join(names)} unloaded and removed")
    return report(
        measured,
        images=count,
        seed=seed,
        ensemble=serving,
        copy=copy,
        detect_side=side,
        repetitions=repetitions,
        concurrency=concurrency,
        seconds=seconds,
        load_average=(load_average, os.getloadavg()),
    )


@dataclass(frozen=True)
class Measured:
    passes: list[Pass]
    throughput: list[Throughput]
    results: list[ImageResult]  # OCR on, the text images
    no_text_readings: list[TextReading]  # OCR on, the photos without text
    idle_cpu_percent: float  # of one core: Triton's own background work, included in each pass
    labels_only_with_ocr: list[str]  # what OCR off does not answer (the check that it is off)


def _measure(
    grpc: str,
    metrics: str,
    serving: str,
    copy: str,
    process: psutil.Process,
    images: list[TextSample],
    side: int,
    repetitions: int,
    seconds: float,
    concurrency: int,
    on_stage: Callable[[str], None],
) -> Measured:
    sets = {False: [s.plain for s in images], True: [s.with_text for s in images]}
    models = {False: copy, True: serving}
    on_stage(f"accuracy: {serving} reads the {len(images)} text images and the photos without text")
    readings, labels = asyncio.run(_read(grpc, serving, sets[True] + sets[False]))
    off_readings, off_labels = asyncio.run(_read(grpc, copy, sets[False][:1]))
    with_text, without_text = readings[: len(images)], readings[len(images) :]
    if any(reading is None for reading in readings):
        raise NoOcrStep(f"{serving} answered no TEXT: it does not read text")
    if off_readings[0] is not None:
        raise NoOcrStep(f"{copy} answered TEXT: the copy still reads text")
    results = [judge(sample, reading, side) for sample, reading in zip(images, with_text, strict=True) if reading]
    client = triton.InferenceServerClient(grpc)
    try:
        for text in (False, True):
            _send(client, copy, sets[text][:WARM_UP])
        before = cpu_seconds(process)
        time.sleep(IDLE_SECONDS)
        idle = spent(before, cpu_seconds(process)) / IDLE_SECONDS
        passes = []
        for repetition in range(repetitions):
            on_stage(f"cost: sequential passes, OCR off and on, without and with text ({repetition + 1}/{repetitions})")
            for ocr in (False, True):
                for text in (False, True):
                    passes.append(_pass(client, metrics, models[ocr], process, sets[text], ocr, text))
    finally:
        client.close()
    throughput = []
    for repetition in range(repetitions):
        on_stage(f"throughput: {concurrency} requests in flight, {seconds:g} s each ({repetition + 1}/{repetitions})")
        for ocr in (False, True):
            for text in (False, True):
                throughput.append(_window(grpc, models[ocr], process, sets[text], ocr, text, seconds, concurrency))
    return Measured(
        passes=passes,
        throughput=throughput,
        results=results,
        no_text_readings=[r for r in without_text if r is not None],
        idle_cpu_percent=round(100 * idle, 1),
        labels_only_with_ocr=sorted(set(labels) - set(off_labels)),
    )


async def _read(grpc: str, model: str, images: list[bytes]) -> tuple[list[TextReading | None], list[str]]:
    """Each image's reading as the worker gets it (None without TEXT), and the model's labels."""
    scorer = TritonScorer(grpc, model, timeout=120.0)
    try:
        answers = [await scorer.score(data) for data in images]
    finally:
        await scorer.close()
    return [answer.text for answer in answers], list(answers[0].by_label) if answers else []


def _send(client: Any, model: str, images: Sequence[bytes]) -> None:
    for data in images:
        # No outputs named: every output, as the worker asks.
        client.infer(model, [image_input(data)])


def _pass(
    client: Any, metrics: str, model: str, process: psutil.Process, images: list[bytes], ocr: bool, text: bool
) -> Pass:
    counted = triton_metrics.read(metrics)
    before, started = cpu_seconds(process), time.perf_counter()
    _send(client, model, images)
    elapsed, after = time.perf_counter() - started, cpu_seconds(process)
    others = _preprocessed(triton_metrics.read(metrics)) - _preprocessed(counted) - len(images)
    return Pass(ocr, text, len(images), elapsed, spent(before, after), int(others))


def _window(
    grpc: str,
    model: str,
    process: psutil.Process,
    images: list[bytes],
    ocr: bool,
    text: bool,
    seconds: float,
    concurrency: int,
) -> Throughput:
    started: list[tuple[dict[int, float], float]] = []
    rate = asyncio.run(
        images_per_second(
            grpc,
            model,
            images,
            seconds,
            concurrency,
            on_start=lambda: started.append((cpu_seconds(process), time.perf_counter())),
        )
    )
    after, ended = cpu_seconds(process), time.perf_counter()
    (before, began), *_ = started
    answered = max(1.0, rate * (ended - began))  # the warm-up before the clock is left out of both
    return Throughput(ocr, text, rate, 1000 * spent(before, after) / answered)


def _preprocessed(readings: triton_metrics.Readings) -> float:
    return readings.get(("nv_inference_count", PREPROCESS), 0.0)


# The report ----------------------------------------------------------------------------------


def report(
    measured: Measured,
    *,
    images: int,
    seed: int,
    ensemble: str,
    copy: str,
    detect_side: int,
    repetitions: int,
    concurrency: int,
    seconds: float,
    load_average: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> dict[str, Any]:
    """The JSON report: medians by side (OCR off/on) and image set (without/with text), OCR on
    against OCR off, accuracy, and the issue's goals beside what was measured."""
    cost: dict[str, dict[str, Any]] = {}
    for ocr in (False, True):
        side = cost.setdefault(_side(ocr), {})
        for text in (False, True):
            passes = [p for p in measured.passes if p.ocr == ocr and p.text == text]
            windows = [t for t in measured.throughput if t.ocr == ocr and t.text == text]
            side[_set(text)] = {
                "cpu_ms_per_image": round(statistics.median(p.cpu_ms_per_image for p in passes), 1),
                "sequential_images_per_second": round(statistics.median(p.images_per_second for p in passes), 2),
                "concurrent_images_per_second": _median(t.images_per_second for t in windows),
                "concurrent_cpu_ms_per_image": _median(t.cpu_ms_per_image for t in windows),
                "cpu_ms_per_image_runs": [round(p.cpu_ms_per_image, 1) for p in passes],
            }
    versus = {}
    for text in (False, True):
        off, on = cost["ocr_off"][_set(text)], cost["ocr_on"][_set(text)]
        versus[_set(text)] = {
            "cpu_cost": round(on["cpu_ms_per_image"] / off["cpu_ms_per_image"], 3),
            "extra_cpu_ms_per_image": round(on["cpu_ms_per_image"] - off["cpu_ms_per_image"], 1),
            "concurrent_throughput": _ratio(on["concurrent_images_per_second"], off["concurrent_images_per_second"]),
            "concurrent_cpu_cost": _ratio(on["concurrent_cpu_ms_per_image"], off["concurrent_cpu_ms_per_image"]),
        }
    found = accuracy(measured.results)
    plain = measured.no_text_readings
    goals = [
        _goal(
            "images without text: CPU with OCR on / off",
            versus["without_text"]["cpu_cost"],
            NO_TEXT_COST_RATIO,
        ),
        _goal(
            "an image with a few lines: extra CPU with OCR on, ms (the ocr model runs on one core)",
            versus["with_text"]["extra_cpu_ms_per_image"],
            EXTRA_MS_WITH_TEXT,
        ),
        _goal("character error rate on the drawn text", found["cer"], MAX_CER),
    ]
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": [round(v, 2) for v in load_average[0]],
            "load_average_after": [round(v, 2) for v in load_average[1]],
        },
        "images": images,
        "seed": seed,
        "ensemble": ensemble,
        "ocr_off_copy": copy,
        "labels_only_with_ocr": measured.labels_only_with_ocr,
        "detect_side": detect_side,
        "repetitions": repetitions,
        "concurrency": concurrency,
        "throughput_seconds": seconds,
        "triton_idle_cpu_percent": measured.idle_cpu_percent,
        "requests_from_others": sum(p.others for p in measured.passes),
        "cost": cost,
        "ocr_on_vs_off": versus,
        "accuracy": found,
        "without_text_read": {
            "images": len(plain),
            "with_regions": sum(1 for r in plain if r.regions),
            "regions": sum(r.regions for r in plain),
            "lines_read": sum(len(r.lines) for r in plain),
        },
        "goals": goals,
        "passes": [
            asdict(p) | {"seconds": round(p.seconds, 3), "cpu_seconds": round(p.cpu_seconds, 3)}
            for p in measured.passes
        ],
        "windows": [asdict(t) | {"cpu_ms_per_image": round(t.cpu_ms_per_image, 1)} for t in measured.throughput],
    }


def _median(values: Iterable[float]) -> float | None:
    found = list(values)
    return round(statistics.median(found), 2) if found else None


def _ratio(on: float | None, off: float | None) -> float | None:
    return round(on / off, 3) if on and off else None


def _goal(what: str, measured: float, limit: float) -> dict[str, Any]:
    return {"goal": what, "measured": measured, "at_most": limit, "met": measured <= limit}


def _side(ocr: bool) -> str:
    return "ocr_on" if ocr else "ocr_off"


def _set(text: bool) -> str:
    return "with_text" if text else "without_text"
