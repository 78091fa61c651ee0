"""What an occlusion map costs on the stack's Triton: seconds per map for the full and the light
profile (the review page's wait), and what keeping maps of every block costs the pipeline.

Each profile's ensemble scores the images as a decision would (its ModelRef), then each image's
maps are made ``repetitions`` times, one map at a time (the review page asks for one). The served
ensemble's throughput on the same images, 8 in flight, says what a map is worth in uploads: a
worker that keeps maps of blocks waits one map per block, and Triton scores the image's copies
instead of that many uploads.
"""

import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import tritonclient.http as triton_http

from modstream.core.inference import TritonScorer
from modstream.core.settings import PROFILES, Settings
from modstream.explain.occlusion import Occlusion
from modstream.explain.served import ServedSaliency

GOAL_SECONDS = 3.0
_IN_FLIGHT = 8


async def _profile(
    settings: Settings, ensemble: str, images: list[bytes], repetitions: int, on_stage: Callable[[str], None]
) -> dict[str, Any]:
    scorer = TritonScorer(settings.triton_grpc, ensemble, settings.inference_timeout)
    served = ServedSaliency(settings.triton_grpc, settings.inference_timeout, Occlusion())
    try:
        decided = [await scorer.score(image) for image in images]
        limit = asyncio.Semaphore(_IN_FLIGHT)

        async def one(image: bytes) -> None:
            async with limit:
                await scorer.score(image)

        started = time.perf_counter()
        await asyncio.gather(*(one(image) for image in images * 3))
        uploads_per_second = 3 * len(images) / (time.perf_counter() - started)
        seconds = []
        for n, (image, scores) in enumerate(zip(images, decided, strict=True)):
            on_stage(f"{ensemble}: maps of image {n + 1} of {len(images)}")
            for _ in range(repetitions):
                started = time.perf_counter()
                maps = await served.explain(image, scores.model)
                seconds.append(time.perf_counter() - started)
    finally:
        await scorer.close()
        await served.close()
    median = statistics.median(seconds)
    return {
        "ensemble": ensemble,
        "model": decided[0].model.version,
        "labels_mapped": sorted(maps.maps),
        "copies": maps.copies,
        "maps": len(seconds),
        "seconds_median": round(median, 3),
        "seconds_min": round(min(seconds), 3),
        "seconds_max": round(max(seconds), 3),
        "uploads_per_second": round(uploads_per_second, 2),
        "uploads_per_map": round(median * uploads_per_second, 1),
        "goal_met": median <= GOAL_SECONDS,
    }


def run_saliency_bench(
    settings: Settings, images: list[bytes], repetitions: int, on_stage: Callable[[str], None]
) -> dict[str, Any]:
    """Both profiles on the stack's Triton; the light ensemble is loaded for it if it was not."""
    control = triton_http.InferenceServerClient(settings.triton_http)
    profiles = []
    try:
        for profile, (ensemble, _) in PROFILES.items():
            loaded_here = not control.is_model_ready(ensemble)
            if loaded_here:
                on_stage(f"loading {ensemble}")
                control.load_model(ensemble)
            try:
                found = asyncio.run(_profile(settings, ensemble, images, repetitions, on_stage))
            finally:
                if loaded_here:
                    control.unload_model(ensemble)
            profiles.append({"profile": profile, **found})
    finally:
        control.close()
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "masking": Occlusion().name,
        "images": len(images),
        "repetitions": repetitions,
        "goal_seconds": GOAL_SECONDS,
        "profiles": profiles,
    }
