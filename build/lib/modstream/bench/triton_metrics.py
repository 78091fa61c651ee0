"""Batch sizes Triton actually formed, from its Prometheus metrics endpoint."""

import re

import httpx

_LINE = re.compile(r'^(nv_inference_count|nv_inference_exec_count)\{model="([^"]+)",version="([^"]*)"\}\s+([0-9.e+]+)$')


def parse_counts(text: str) -> dict[tuple[str, str], float]:
    """(metric, model) -> value, summed over versions."""
    counts: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        found = _LINE.match(line.strip())
        if found:
            key = (found.group(1), found.group(2))
            counts[key] = counts.get(key, 0.0) + float(found.group(4))
    return counts


def read_counts(metrics_address: str) -> dict[tuple[str, str], float]:
    response = httpx.get(f"http://{metrics_address}/metrics", timeout=10)
    response.raise_for_status()
    return parse_counts(response.text)


def mean_batch_sizes(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float]) -> dict[str, float]:
    """Per model: images inferred / model executions between two readings."""
    sizes = {}
    for metric, model in after:
        if metric != "nv_inference_exec_count":
            continue
        executions = after[(metric, model)] - before.get((metric, model), 0.0)
        inferred = after.get(("nv_inference_count", model), 0.0) - before.get(("nv_inference_count", model), 0.0)
        if executions > 0:
            sizes[model] = round(inferred / executions, 2)
    return sizes
