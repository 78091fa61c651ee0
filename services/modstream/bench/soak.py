"""``modstream bench --soak``: many events as fast as the stack takes them, watching memory.

Publishes every event at once (the worker then runs at its own top speed), counts what
was lost and what was decided twice, and samples the resident memory of the running
worker and Triton server while it goes, so growth without bound shows as a trend.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from modstream.bench.pipeline_run import run_pipeline
from modstream.core.events import ModerationDecision
from modstream.core.settings import Settings

SAMPLE_SECONDS = 5.0
# After the last event's decision, decisions are read on until none of the soak's events has
# had one for this long: a late duplicate (a redelivery after a commit was lost) still counts.
QUIET_SECONDS = 20.0


@dataclass(frozen=True)
class MemorySample:
    seconds: float
    worker_mb: float
    triton_mb: float


class NothingToWatch(Exception):
    """The soak watches a running worker and Triton server; one of them is not running."""


def watched_processes(running: Mapping[str, int]) -> tuple[psutil.Process, psutil.Process]:
    """The worker's and Triton's processes, from the running servers' PIDs by name."""
    if not {"worker", "triton"} <= running.keys():
        raise NothingToWatch
    return psutil.Process(running["worker"]), psutil.Process(running["triton"])


def _mb(process: psutil.Process) -> float:
    # The server's own memory plus its children's (Triton's Python backend stubs).
    processes = [process, *process.children(recursive=True)]
    return round(float(sum(p.memory_info().rss for p in processes)) / 2**20, 1)


async def run_soak(
    settings: Settings,
    images: list[bytes],
    events: int,
    worker: psutil.Process,
    triton: psutil.Process,
    on_decided: Callable[[ModerationDecision], None] = lambda d: None,
    quiet_seconds: float = QUIET_SECONDS,
) -> dict[str, Any]:
    samples: list[MemorySample] = []
    started = time.monotonic()

    async def sample() -> None:
        while True:
            samples.append(MemorySample(round(time.monotonic() - started, 1), _mb(worker), _mb(triton)))
            await asyncio.sleep(SAMPLE_SECONDS)

    sampler = asyncio.create_task(sample())
    try:
        result = await run_pipeline(
            settings,
            images,
            events=events,
            timeout=events + quiet_seconds,
            quiet_seconds=quiet_seconds,
            on_decided=on_decided,
        )
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    samples.append(MemorySample(round(time.monotonic() - started, 1), _mb(worker), _mb(triton)))
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "events": events,
        "decided": result.decided,
        "lost": events - result.decided,
        "duplicates": result.duplicates,
        "seconds": result.seconds,
        "images_per_second": result.images_per_second,
        "outcomes": result.outcomes,
        "worker_rss_mb": _summary([s.worker_mb for s in samples]),
        "triton_rss_mb": _summary([s.triton_mb for s in samples]),
        "samples": [asdict(s) for s in samples],
    }


def _summary(values: list[float]) -> dict[str, float]:
    half = len(values) // 2
    # The second half against the first: a leak keeps climbing after the warm-up.
    return {
        "start": values[0],
        "end": values[-1],
        "peak": max(values),
        "mean_first_half": round(sum(values[:half]) / max(half, 1), 1),
        "mean_second_half": round(sum(values[half:]) / max(len(values) - half, 1), 1),
    }
