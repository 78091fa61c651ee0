"""``modstream bench --bank N``: the PDQ match index against faiss's exact flat scan, on one core.

For each size: N random 256-bit hashes (ids 0..N-1) into a ``PdqIndex`` (build time, its
own bytes, the process's RSS growth); lookups one query per call, as a worker looks up an
image, for random hashes and for planted near-duplicates (a database hash with 10-20
random bits flipped); recall of the planted queries against the exact scan
(``faiss.IndexBinaryFlat``, range search) on the first ``recall_queries`` of them, since
that scan is slow at 10M; hits on random queries at radius 31 (random hashes are ~128 bits
apart: any hit is noise); single adds and removes on the built index, each checked by a
lookup; lookups while a merge runs. Lookup rates are medians over ``repeats`` passes; the
exact scan is timed on the same queries, one per call, for the ratio.
"""

import contextlib
import ctypes
import gc
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import psutil
from rich.table import Table

from modstream.bank.index import MERGE_AT, SCAN_UP_TO, PdqIndex

RADIUS = 31  # HMA's default PDQ threshold
PLANTED_BITS = (10, 20)
FAR_BITS = (21, 31)  # also reported: planted further out, up to the radius
LATENCY_SAMPLES = 1000
Codes = npt.NDArray[np.uint8]


def run_bank_bench(
    sizes: Sequence[int],
    queries: int,
    seed: int = 0,
    *,
    recall_queries: int = 2000,
    repeats: int = 3,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> dict[str, Any]:
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        results = [_one_size(n, queries, min(recall_queries, queries), repeats, seed, on_stage) for n in sizes]
    finally:
        faiss.omp_set_num_threads(threads)
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "threads": 1,
        "seed": seed,
        "radius": RADIUS,
        "queries": queries,
        "recall_queries": min(recall_queries, queries),
        "repeats": repeats,
        "sizes": results,
    }


def _one_size(
    n: int, count: int, recall_count: int, repeats: int, seed: int, on_stage: Callable[[str], None]
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    random_queries = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    sources = rng.integers(0, n, count)
    planted = _flipped(rng, codes[sources], rng.integers(PLANTED_BITS[0], PLANTED_BITS[1] + 1, count))
    far_bits = rng.integers(FAR_BITS[0], FAR_BITS[1] + 1, recall_count)
    far = _flipped(rng, codes[sources[:recall_count]], far_bits)

    structure = "exact two-half scan" if n <= SCAN_UP_TO else "multi-index hashing"
    on_stage(f"{n:,} hashes: building the index ({structure})")
    index = PdqIndex()
    with _RssWatch() as rss:
        started = time.perf_counter()
        index.add(np.arange(n, dtype=np.int64), codes)
        index.compact()
        build_seconds = time.perf_counter() - started
    memory = index.memory_bytes()
    on_stage(f"{n:,} hashes: {count:,} random and {count:,} planted lookups, {repeats} passes each")
    random_rate = _rate(index, random_queries, repeats)
    planted_rate = _rate(index, planted, repeats)
    false_hits = sum(len(found) for found in index.search(random_queries, RADIUS))
    found = index.search(planted[:recall_count], RADIUS)
    far_found = index.search(far, RADIUS)

    on_stage(f"{n:,} hashes: faiss's exact flat scan, {recall_count:,} planted and {recall_count:,} random lookups")
    flat = faiss.IndexBinaryFlat(256)
    with _RssWatch() as flat_rss:
        started = time.perf_counter()
        flat.add(codes)
        flat_build = time.perf_counter() - started
    flat_bytes = flat.xb.size()  # type: ignore[attr-defined]  # its codes, all it holds; not in the stubs
    exact, flat_planted_seconds = _exact(flat, planted[:recall_count])
    flat_random_rate = statistics.median(
        recall_count / _exact(flat, random_queries[:recall_count])[1] for _ in range(repeats)
    )
    flat_planted_rate = recall_count / flat_planted_seconds
    del flat

    on_stage(f"{n:,} hashes: {LATENCY_SAMPLES:,} single adds, then as many removes")
    latency = _changes(index, rng, n)
    on_stage(f"{n:,} hashes: {MERGE_AT:,} adds at once start a merge; lookups until it is in")
    during_merge = _during_merge(index, rng, n + LATENCY_SAMPLES, random_queries)

    pairs_exact = sum(len(e) for e in exact)
    pairs_found = sum(len(set(f) & e) for f, e in zip(found, exact, strict=True))
    return {
        "hashes": n,
        "structure": structure,
        "build_seconds": round(build_seconds, 3),
        "memory_bytes": memory,
        "bytes_per_hash": round(memory / n, 1),
        "rss_growth_mb": rss.growth_mb,
        "rss_peak_growth_mb": rss.peak_growth_mb,
        "lookups_per_second": {"random": round(random_rate), "planted": round(planted_rate)},
        "recall_planted": {
            "bits_flipped": list(PLANTED_BITS),
            "queries": recall_count,
            "exact_pairs": pairs_exact,
            "found_pairs": pairs_found,
            "recall": round(pairs_found / pairs_exact, 5) if pairs_exact else None,
            "not_in_exact_scan": sum(len(set(f) - e) for f, e in zip(found, exact, strict=True)),
        },
        # Against the planted source itself (within the radius by construction): no exact scan.
        "planted_far_found": {
            "bits_flipped": list(FAR_BITS),
            "queries": recall_count,
            "found": sum(
                any(i == int(s) for i, _ in hits) for hits, s in zip(far_found, sources[:recall_count], strict=True)
            ),
        },
        "false_hits_random": {"queries": count, "radius": RADIUS, "hits": false_hits},
        **latency,
        "lookups_during_merge": during_merge,
        "flat": {
            "build_seconds": round(flat_build, 3),
            "bytes_per_hash": round(flat_bytes / n, 1),
            "rss_growth_mb": flat_rss.growth_mb,
            "lookups_per_second": {"random": round(flat_random_rate), "planted": round(flat_planted_rate)},
        },
        "vs_flat": {
            "random": round(random_rate / flat_random_rate, 1),
            "planted": round(planted_rate / flat_planted_rate, 1),
        },
    }


def _flipped(rng: np.random.Generator, codes: Codes, bits: npt.NDArray[np.int64]) -> Codes:
    """Each row with its own number of distinct random bits flipped."""
    ranks = rng.random((len(codes), 256)).argsort(axis=1).argsort(axis=1)
    flips: Codes = np.packbits(ranks < bits[:, None], axis=1)
    return codes ^ flips


def _rate(index: PdqIndex, queries: Codes, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for query in queries:
            index.search(query[None], RADIUS)
        rates.append(len(queries) / (time.perf_counter() - started))
    return statistics.median(rates)


def _exact(flat: Any, queries: Codes) -> tuple[list[set[tuple[int, int]]], float]:
    """The exact scan's answers, one query per call, and the seconds it took."""
    answers = []
    started = time.perf_counter()
    for query in queries:
        _, distances, labels = flat.range_search(query[None], RADIUS + 1)  # strict: "< 32"
        answers.append(set(zip(labels.tolist(), distances.astype(int).tolist(), strict=True)))
    return answers, time.perf_counter() - started


def _changes(index: PdqIndex, rng: np.random.Generator, n: int) -> dict[str, Any]:
    """Median and p99 of single adds and removes, each checked by a lookup right after."""
    codes = rng.integers(0, 256, (LATENCY_SAMPLES, 32), dtype=np.uint8)
    ids = np.arange(n, n + LATENCY_SAMPLES, dtype=np.int64)
    added, found = [], 0
    for entry, code in zip(ids, codes, strict=True):
        started = time.perf_counter()
        index.add(entry[None], code[None])
        added.append(time.perf_counter() - started)
        found += (int(entry), 0) in index.search(code[None], RADIUS)[0]
    removed, gone = [], 0
    order = rng.permutation(LATENCY_SAMPLES)
    for entry, code in zip(ids[order], codes[order], strict=True):
        started = time.perf_counter()
        index.remove(entry[None])
        removed.append(time.perf_counter() - started)
        gone += all(i != entry for i, _ in index.search(code[None], RADIUS)[0])
    return {
        "add_us": _micros(added),
        "found_right_after_add": f"{found}/{LATENCY_SAMPLES}",
        "remove_us": _micros(removed),
        "gone_right_after_remove": f"{gone}/{LATENCY_SAMPLES}",
    }


def _during_merge(index: PdqIndex, rng: np.random.Generator, first_id: int, queries: Codes) -> dict[str, Any]:
    """Lookups while a merge runs in its thread on the same core: they slow down, but none
    waits for the merge to finish."""
    ids = np.arange(first_id, first_id + MERGE_AT, dtype=np.int64)
    started = time.perf_counter()
    index.add(ids, rng.integers(0, 256, (MERGE_AT, 32), dtype=np.uint8))
    took: list[float] = []
    while index.merging:
        query = queries[len(took) % len(queries)]
        lookup = time.perf_counter()
        index.search(query[None], RADIUS)
        took.append(time.perf_counter() - lookup)
    merge_seconds = time.perf_counter() - started
    index.search(queries[:1], RADIUS)  # installs the new main part
    # A small index can finish merging before the first lookup: none measured then.
    lookup_us = _micros(took) if took else None
    return {"merge_seconds": round(merge_seconds, 2), "lookups": len(took), "lookup_us": lookup_us}


def _micros(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median": round(statistics.median(ordered) * 1e6, 1),
        "p99": round(ordered[int(0.99 * (len(ordered) - 1))] * 1e6, 1),
        "max": round(ordered[-1] * 1e6, 1),
    }


class _RssWatch:
    """This process's resident memory over a block: its growth, and the peak (sampled every 20 ms)."""

    def __enter__(self) -> "_RssWatch":
        _trim()
        self._process = psutil.Process()
        self._before = self._peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join()
        _trim()
        after = self._process.memory_info().rss
        self._peak = max(self._peak, after)
        self.growth_mb = round((after - self._before) / 2**20, 1)
        self.peak_growth_mb = round((self._peak - self._before) / 2**20, 1)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, self._process.memory_info().rss)


def _trim() -> None:
    """Hand freed heap memory back to the OS (glibc), so that RSS shows what is held rather
    than what malloc keeps for later: at 1M, 160 MB instead of the index's 41 MB without it."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def bank_table(report: dict[str, Any]) -> Table:
    """One column per size: the index, faiss's flat scan beside it, and their ratio."""
    sizes = report["sizes"]
    table = Table("measure", *(f"{s['hashes']:,} hashes" for s in sizes))
    rows: dict[str, list[str]] = {}
    for s in sizes:
        rows.setdefault("structure", []).append(s["structure"])
        rows.setdefault("build (index / flat)", []).append(f"{s['build_seconds']} s / {s['flat']['build_seconds']} s")
        rows.setdefault("memory: bytes/hash, RSS growth (peak) / flat", []).append(
            f"{s['bytes_per_hash']}, +{s['rss_growth_mb']} MB (+{s['rss_peak_growth_mb']} MB)"
            f" / {s['flat']['bytes_per_hash']}, +{s['flat']['rss_growth_mb']} MB"
        )
        for kind in ("random", "planted"):
            rows.setdefault(f"lookups/s, {kind}: index / flat = ratio", []).append(
                f"{s['lookups_per_second'][kind]:,} / {s['flat']['lookups_per_second'][kind]:,} = {s['vs_flat'][kind]}x"
            )
        recall = s["recall_planted"]
        rows.setdefault(f"recall, planted 10-20 bits ({recall['queries']:,} queries, vs exact scan)", []).append(
            f"{recall['recall']} ({recall['found_pairs']}/{recall['exact_pairs']}; {recall['not_in_exact_scan']} extra)"
        )
        far = s["planted_far_found"]
        rows.setdefault("planted 21-31 bits found", []).append(f"{far['found']}/{far['queries']}")
        hits = s["false_hits_random"]
        rows.setdefault(f"hits on {hits['queries']:,} random queries, radius {hits['radius']}", []).append(
            str(hits["hits"])
        )
        merge, during = s["lookups_during_merge"], s["lookups_during_merge"]["lookup_us"]
        rows.setdefault("lookups during a merge: median / p99 / max µs", []).append(
            (f"{during['median']} / {during['p99']} / {during['max']}" if during else "none: it merged first")
            + f" ({merge['lookups']:,} in the {merge['merge_seconds']} s it took)"
        )
        for change, check in (("add", "found_right_after_add"), ("remove", "gone_right_after_remove")):
            micros = s[f"{change}_us"]
            rows.setdefault(f"single {change}: median / p99 / max µs", []).append(
                f"{micros['median']} / {micros['p99']} / {micros['max']} ({check.split('_')[0]} {s[check]})"
            )
    for label, cells in rows.items():
        table.add_row(label, *cells)
    return table
