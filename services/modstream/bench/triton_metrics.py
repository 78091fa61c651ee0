"""What Triton did during a run, from its Prometheus metrics endpoint: the batch sizes it
formed and the compute time per image of each model."""

import re

import httpx

_METRICS = (
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
)
_LINE = re.compile(r"^(" + "|".join(_METRICS) + r')\{model="([^"]+)",version="([^"]*)"\}\s+([0-9.e+]+)$')
_COMPUTE = _METRICS[2:]
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


def ms_per_image(before: Readings, after: Readings) -> dict[str, float]:
    """Per model: compute time (input, inference, output) per image inferred between two readings."""
    costs = {}
    for metric, model in after:
        images = _change(before, after, "nv_inference_count", model)
        if metric != "nv_inference_count" or images <= 0:
            continue
        micros = sum(_change(before, after, m, model) for m in _COMPUTE)
        costs[model] = round(micros / images / 1000, 2)
    return costs
