"""``modstream bench``: the served pipeline and the raw in-process model, same images, same run."""

import asyncio
import io
import json
import os
import platform
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modstream.bench import raw_model, triton_metrics
from modstream.bench import served as served_ensemble
from modstream.bench.pipeline_run import run_pipeline
from modstream.core.events import ModelRef, ModerationDecision, new_id
from modstream.core.settings import Settings

_TRAILER = b"modstream-bench-"


class NoServedModel(Exception):
    """The classifier version that served the pipeline has no ONNX file to run in-process."""


def uploads(
    pool: list[bytes], count: int, duplicate_rate: float = 0.0, seed: int = 0, nonce: str | None = None
) -> list[bytes]:
    """``count`` uploads made from ``pool``: each distinct in its bytes (a trailer after the
    image's end, which decoders skip, with a ``nonce`` new to every call unless given: the
    worker's duplicate cache must not see repeats the benchmark did not ask for, from this
    run or an earlier one), except a ``duplicate_rate`` share that repeats an earlier upload's
    bytes exactly, as a viral re-upload does."""
    trailer = _TRAILER + (nonce or new_id()).encode() + b"-"
    usable = [data for data in pool if _decodes_with_trailer(data)]
    if not usable:
        raise ValueError("no image of the pool decodes with bytes after its end")
    rng = random.Random(seed)
    made: list[bytes] = []
    for index in range(count):
        if made and rng.random() < duplicate_rate:
            made.append(rng.choice(made))
        else:
            made.append(usable[index % len(usable)] + trailer + str(index).encode())
    return made


def _decodes_with_trailer(data: bytes) -> bool:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data + _TRAILER + b"0")) as image:
            image.load()
        return True
    except Exception:
        return False


def run_bench(
    settings: Settings,
    pool: list[bytes],
    count: int,
    *,
    rate: float = 0.0,
    duplicate_rate: float = 0.0,
    seconds: float | None = None,
    on_decided: Callable[[ModerationDecision], None] = lambda d: None,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> dict[str, Any]:
    """``count`` distinct images from ``pool`` through the pipeline; with ``duplicate_rate``,
    then the same count with that share of exact re-uploads (the duplicate cache's gain);
    then the raw in-process ensemble (the components that served) on the same images.
    ``seconds``, if given, replaces each measurement window after the pipeline (the served
    ensemble's and the in-process ensemble's; each component alone gets half)."""
    images = uploads(pool, count)
    pace = f"at {rate:g} events/s" if rate > 0 else "all published at once"
    on_stage(f"pipeline: {len(images)} distinct images through Kafka, the worker and Triton, {pace}")
    served: Counter[ModelRef] = Counter()

    def decided(decision: ModerationDecision) -> None:
        if decision.model is not None:
            served[decision.model] += 1
        on_decided(decision)

    before = triton_metrics.read(settings.triton_metrics)
    pipeline = asyncio.run(run_pipeline(settings, images, rate=rate, on_decided=decided))
    after = triton_metrics.read(settings.triton_metrics)
    duplicates: dict[str, Any] | None = None
    if duplicate_rate > 0:
        mixed = uploads(pool, count, duplicate_rate, seed=1)
        repeats = count - len(set(mixed))
        on_stage(f"pipeline again: {count} images, {repeats} of them exact re-uploads of earlier ones")
        with_repeats = asyncio.run(run_pipeline(settings, mixed, rate=rate, on_decided=on_decided))
        duplicates = {
            "rate": duplicate_rate,
            "repeated_uploads": repeats,
            "pipeline": asdict(with_repeats),
            "gain": round(with_repeats.images_per_second / pipeline.images_per_second, 3),
        }
    model, files = baseline_components(served, settings.model_repository)
    # Each stage runs alone, never beside another: they would share the same cores.
    unique = list(dict.fromkeys(images))[:64]
    on_stage(f"served: {settings.triton_model}, then its preprocess alone, straight to Triton over gRPC")
    windows = {"served": seconds or served_ensemble.SECONDS, "raw_ensemble": seconds or raw_model.SECONDS}
    alone = served_ensemble.measure(settings.triton_grpc, settings.triton_model, unique, windows["served"])
    on_stage(f"raw ensemble: {', '.join(files)} with onnxruntime in-process")
    raw = raw_model.measure(files, unique, seconds=windows["raw_ensemble"])
    raw_sum = round(sum(c.ms_per_image for c in raw.components), 2)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "profile": settings.profile,
        "pipeline": asdict(pipeline) | {"publish_rate": rate or "burst"},
        "triton_mean_batch_size": triton_metrics.mean_batch_sizes(before, after),
        "served": asdict(alone) | {"classifiers_ms_per_image": alone.classifiers_ms_per_image},
        "raw_ensemble": {
            "model": f"{model.name}:{model.version}",
            "inputs": raw.inputs,
            "by_batch_size": [asdict(r) for r in raw.by_batch_size],
            "best": asdict(raw.best),
            "best_by_mode": {mode: asdict(best) for mode, best in raw.best_by_mode().items()},
            "components_ms_per_image": {c.component: c.ms_per_image for c in raw.components},
            "sum_ms_per_image": raw_sum,
        },
        # What the classifiers and the taxonomy step cost per image as served (decode left
        # out, as in the raw baseline) against the sum of the components' in-process costs.
        "served_vs_raw_cost": round(alone.classifiers_ms_per_image / raw_sum, 3),
        "pipeline_vs_raw": round(pipeline.images_per_second / raw.best.images_per_second, 3),
        "pipeline_vs_raw_sequential": round(
            pipeline.images_per_second / raw.best_by_mode()["sequential"].images_per_second, 3
        ),
        "settings": {"worker_concurrency": settings.worker_concurrency, "partitions": settings.topic_partitions},
        "duplicates": duplicates,
        "measurement_seconds": windows,
    }


def baseline_components(served: Counter[ModelRef], repository: Path) -> tuple[ModelRef, dict[str, Path]]:
    """The ensemble that decided most of the pipeline's images (every answer names each
    component's version) and its classifiers' ONNX files in the model repository: the
    baseline runs what served, whichever versions are pinned or were deployed last (the
    ocr step is left out: the served pipeline pays for it, the baseline does not)."""
    if not served:
        raise NoServedModel("no decision named a model (did every image fail?): nothing to compare with")
    model = served.most_common(1)[0][0]
    files = {}
    for name, version in model.components.items():
        if name.startswith("taxonomy"):
            continue  # the aggregation step has no ONNX model
        config = repository / name / "config.pbtxt"
        if config.is_file() and 'name: "TEXT_IMAGE"' in config.read_text():
            continue  # the ocr step: two models with code between them, priced by `bench --text`
        onnx_file = repository / name / version / "model.onnx"
        if not onnx_file.is_file():
            raise NoServedModel(
                f"{name}:{version} served the images, but {onnx_file} is not there: "
                "set MODSTREAM_MODEL_REPOSITORY to the repository Triton serves"
            )
        files[f"{name}:{version}"] = onnx_file
    return model, files


def write_report(report: dict[str, Any], kind: str, out: Path | None = None) -> Path:
    """The report as JSON in ``out``, by default ``artifacts/<kind>-<when it was measured>.json``."""
    out = out or Path("artifacts") / f"{kind}-{report['measured_at'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out
