"""Batch sizes Triton actually formed, from its Prometheus metrics endpoint."""

import re

import httpx

_LINE = re.compile(r'^(nv_inference_count|nv_inference_exec_count)\{model="([^"]+)",version="([^"]*)"\}\s+([0-9.e+]+)$')
Readings = dict[tuple[str, str], float]


def parse(text: str) -> Readings:
    """(metric, model) -> value, summed over versions."""
    counts: Readings = {}
    for line in text.splitlines():
        found = _LINE.match(line.strip())
        if found:
            key = (found.group(1), found.group(2))
            counts[key] = counts.get(key, 0.0) + float(found.group(4))
    return counts


def read(metrics_address: str) -> Readings:
    response = httpx.get(f"http://{metrics_address}/metrics", timeout=10)
    response.raise_for_status()
    return parse(response.text)


def _change(before: Readings, after: Readings, metric: str, model: str) -> float:
    return after.get((metric, model), 0.0) - before.get((metric, model), 0.0)


def mean_batch_sizes(before: Readings, after: Readings) -> dict[str, float]:
    """Per model: images inferred / model executions between two readings."""
    sizes = {}
    for metric, model in after:
        if metric != "nv_inference_exec_count":
            continue
        executions = _change(before, after, metric, model)
        if executions > 0:
            sizes[model] = round(_change(before, after, "nv_inference_count", model) / executions, 2)
    return sizes
