"""The served ensemble alone: Triton driven straight over gRPC, no Kafka, no worker.

Measured twice at the same concurrency, the whole ensemble and its preprocess model alone;
with both cores busy, time per image adds up, so the difference is what the classifiers and
the taxonomy step cost per image as served (decode left out, as in the raw baseline).
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tritonclient.grpc.aio as triton

PREPROCESS = "preprocess"
SECONDS = 10.0  # the ensemble, then its preprocess


@dataclass(frozen=True)
class Served:
    ensemble_images_per_second: float
    preprocess_images_per_second: float

    @property
    def classifiers_ms_per_image(self) -> float:
        return round(1000 / self.ensemble_images_per_second - 1000 / self.preprocess_images_per_second, 2)


async def images_per_second(
    url: str,
    model: str,
    images: list[bytes],
    seconds: float,
    concurrency: int,
    on_start: Callable[[], None] = lambda: None,
) -> float:
    """Images per second Triton answers for ``model``, ``concurrency`` requests of one image in
    flight; ``on_start`` is called after the warm-up, as the clock starts (to read a counter)."""
    client = triton.InferenceServerClient(url)
    done = 0

    async def send(data: bytes) -> None:
        request = triton.InferInput("IMAGE", [1, 1], "BYTES")
        request.set_data_from_numpy(np.array([[data]], dtype=np.object_))
        await client.infer(model, [request])

    async def keep_sending(first: int, until: float) -> None:
        nonlocal done
        i = first
        while time.perf_counter() < until:
            await send(images[i % len(images)])
            done += 1
            i += concurrency

    try:
        await asyncio.gather(*(send(images[i % len(images)]) for i in range(concurrency)))  # warm-up
        on_start()
        started = time.perf_counter()
        await asyncio.gather(*(keep_sending(i, started + seconds) for i in range(concurrency)))
        return round(done / (time.perf_counter() - started), 2)
    finally:
        await client.close()


def measure(url: str, ensemble: str, images: list[bytes], seconds: float = SECONDS, concurrency: int = 16) -> Served:
    return Served(
        ensemble_images_per_second=asyncio.run(images_per_second(url, ensemble, images, seconds, concurrency)),
        preprocess_images_per_second=asyncio.run(images_per_second(url, PREPROCESS, images, seconds, concurrency)),
    )
