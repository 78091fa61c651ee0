"""How many labelled examples a learned head needs: a learning curve on a concept no model knows.

The served ensemble embeds a pool of synthetic images (``bench/emblem.py``: half carry the
emblem) and a separate test set; for each number of labelled examples, heads are fitted on
several draws of that many (half with the emblem, as ``train-head`` fits them: a quarter
held out) and measured on the test set, which no draw ever sees. Reported per size: the
median held-out and test precision and recall at 0.5, and the median fitting time.
"""

import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from modstream.bench.emblem import examples
from modstream.core.inference import TritonScorer
from modstream.core.settings import Settings
from modstream.learn.seed import vector_of
from modstream.learn.train import MIN_EACH, THRESHOLD, fit_head, probability

TEST_IMAGES = 200
DRAWS = 3
_CONCURRENCY = 8


async def embed(settings: Settings, images: list[bytes], on_done: Callable[[], None]) -> npt.NDArray[np.float32]:
    """The served ensemble's embeddings of ``images``, a few requests in flight (Triton batches them)."""
    scorer = TritonScorer(settings.triton_grpc, settings.triton_model, settings.inference_timeout)
    limit = asyncio.Semaphore(_CONCURRENCY)

    async def one(data: bytes) -> npt.NDArray[np.float32]:
        async with limit:
            embedding = (await scorer.score(data)).embedding
        on_done()
        if embedding is None:
            raise ValueError(f"{settings.triton_model} gives no embedding (the light profile has none)")
        return vector_of(embedding)

    try:
        return np.stack(await asyncio.gather(*(one(data) for data in images)))
    finally:
        await scorer.close()


def learning_curve(
    settings: Settings,
    sizes: list[int],
    cache_dir: Path,
    on_stage: Callable[[str], None],
    on_embedded: Callable[[], None],
) -> dict[str, Any]:
    too_small = [n for n in sizes if n < 2 * MIN_EACH]
    if too_small:
        raise ValueError(f"a head needs at least {2 * MIN_EACH} examples (half of each kind); not {too_small}")
    pool_size = max(sizes) * DRAWS
    pool = list(examples(cache_dir, pool_size, seed=1))
    test = list(examples(cache_dir, TEST_IMAGES, seed=2))
    on_stage(f"embedding {pool_size} + {TEST_IMAGES} synthetic images with {settings.triton_model}")
    vectors = asyncio.run(embed(settings, [e.data for e in pool + test], on_embedded))
    pool_x, test_x = vectors[:pool_size], vectors[pool_size:]
    pool_y = np.array([e.emblem for e in pool])
    test_y = np.array([e.emblem for e in test])
    rows = []
    for n in sizes:
        on_stage(f"{DRAWS} heads on {n} labelled examples")
        runs = [_run(pool_x, pool_y, test_x, test_y, n, draw) for draw in range(DRAWS)]
        # An undefined rate (nothing reached the threshold) is left out of its median.
        rows.append({"examples": n, **{key: _median([run[key] for run in runs]) for key in runs[0]}})
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "concept": "bench/emblem.py: a red disc, yellow star, blue ring at 25-40 % of the shorter side",
        "test_images": TEST_IMAGES,
        "draws": DRAWS,
        "rows": rows,
    }


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _run(
    pool_x: npt.NDArray[np.float32],
    pool_y: npt.NDArray[np.bool_],
    test_x: npt.NDArray[np.float32],
    test_y: npt.NDArray[np.bool_],
    n: int,
    draw: int,
) -> dict[str, float | None]:
    """One head on ``n`` examples of draw ``draw`` (half with the emblem), measured on the test set."""
    rng = np.random.default_rng(draw)
    marked, clean = np.flatnonzero(pool_y), np.flatnonzero(~pool_y)
    chosen = np.concatenate([rng.choice(marked, n // 2, replace=False), rng.choice(clean, n - n // 2, replace=False)])
    started = time.perf_counter()
    head = fit_head("bench.emblem", pool_x[chosen], pool_y[chosen], seed=draw)
    seconds = time.perf_counter() - started
    predicted = probability(test_x, head.weights, head.bias) >= THRESHOLD
    hits = int((predicted & test_y).sum())
    return {
        "held_out_precision": head.precision.value,
        "held_out_recall": head.recall.value,
        "test_precision": hits / int(predicted.sum()) if predicted.any() else None,
        "test_recall": hits / int(test_y.sum()),
        "test_false_positive_rate": int((predicted & ~test_y).sum()) / int((~test_y).sum()),
        "fit_seconds": seconds,
    }
