"""``modstream bench``: the served pipeline and the raw in-process model, same images, same run."""

import asyncio
import json
import os
import platform
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modstream.bench import raw_model, triton_metrics
from modstream.bench.pipeline_run import run_pipeline
from modstream.core.events import ModelRef, ModerationDecision
from modstream.core.settings import Settings


class NoServedModel(Exception):
    """The classifier version that served the pipeline has no ONNX file to run in-process."""


def run_bench(
    settings: Settings,
    pool: list[bytes],
    count: int,
    *,
    rate: float = 0.0,
    on_decided: Callable[[ModerationDecision], None] = lambda d: None,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> dict[str, Any]:
    """``count`` images, taken from ``pool`` in turn, through the pipeline; then the raw model on the same images."""
    images = [pool[i % len(pool)] for i in range(count)]
    pace = f"at {rate:g} events/s" if rate > 0 else "all published at once"
    on_stage(f"pipeline: {len(images)} images through Kafka, the worker and Triton, {pace}")
    served: Counter[ModelRef] = Counter()

    def decided(decision: ModerationDecision) -> None:
        if decision.model is not None:
            served[decision.model] += 1
        on_decided(decision)

    before = triton_metrics.read_counts(settings.triton_metrics)
    pipeline = asyncio.run(run_pipeline(settings, images, rate=rate, on_decided=decided))
    after = triton_metrics.read_counts(settings.triton_metrics)
    model, onnx_file = baseline_model(served, settings.model_repository)
    # The baseline runs after the pipeline, never beside it: both would share the same cores.
    on_stage(f"raw model: {model.name}:{model.version} with onnxruntime in-process, batch sizes 1-64")
    unique = list(dict.fromkeys(images))[:64]
    raw = raw_model.measure(onnx_file, unique)
    best = max(raw, key=lambda r: r.images_per_second)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "pipeline": asdict(pipeline) | {"publish_rate": rate or "burst"},
        "triton_mean_batch_size": triton_metrics.mean_batch_sizes(before, after),
        "raw_model": {
            "model": f"{model.name}:{model.version}",
            "by_batch_size": [asdict(r) for r in raw],
            "best": asdict(best),
        },
        "pipeline_vs_raw": round(pipeline.images_per_second / best.images_per_second, 3),
        "settings": {"worker_concurrency": settings.worker_concurrency, "partitions": settings.topic_partitions},
    }


def baseline_model(served: Counter[ModelRef], repository: Path) -> tuple[ModelRef, Path]:
    """The classifier version that decided most of the pipeline's images (every answer names
    the version that produced it), and its ONNX file in the model repository: the baseline
    runs the model that served, whichever version is pinned or was deployed last."""
    if not served:
        raise NoServedModel("no decision named a model (did every image fail?): nothing to compare with")
    model = served.most_common(1)[0][0]
    onnx_file = repository / model.name / model.version / "model.onnx"
    if not onnx_file.is_file():
        raise NoServedModel(
            f"{model.name}:{model.version} decided the images, but {onnx_file} is not there: "
            "set MODSTREAM_MODEL_REPOSITORY to the repository Triton serves"
        )
    return model, onnx_file


def write_report(report: dict[str, Any], kind: str, out: Path | None = None) -> Path:
    """The report as JSON in ``out``, by default ``artifacts/<kind>-<when it was measured>.json``."""
    out = out or Path("artifacts") / f"{kind}-{report['measured_at'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return out
