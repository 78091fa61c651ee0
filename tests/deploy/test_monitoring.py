"""Prometheus rules and the Grafana dashboard: every query parses and every metric it reads
is one the services (or Triton) really export."""

import json
import subprocess
import sys
from typing import Any

import promql_parser
import pytest
import yaml
from modstream.core.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
# Triton's own counters (its metrics port): inferences, and executions (batches) that ran them.
TRITON = {"nv_inference_count", "nv_inference_exec_count"}
# Every instrument recorded once, then the exporter's real output.
EXPORT = """
from modstream.core import metrics
from modstream.review import gauges
from modstream.review.jobs import QueueStats
metrics.configure_metrics("test")
gauges.remember([QueueStats(name="q", pending=1, in_review=0, oldest_age_seconds=1.0)])
for name in ("events_consumed", "records_published", "decisions", "decision_labels", "errors",
             "dependency_retries", "verdicts"):
    getattr(metrics, name).add(1, {"x": "y"})
metrics.stage_duration.record(0.1, {"stage": "fetch"})
print(metrics.render().decode())
"""


@pytest.fixture(scope="module")
def exported() -> set[str]:
    done = subprocess.run([sys.executable, "-c", EXPORT], capture_output=True, text=True, check=True)
    return {line.split("{")[0].split(" ")[0] for line in done.stdout.splitlines() if line.startswith("modstream_")}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def panel_queries() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "modstream.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def metric_names(query: str) -> set[str]:
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(query), pre_visit=visit)
    return names


def test_every_query_parses_and_reads_metrics_that_exist(exported: set[str]) -> None:
    recorded = {rule["record"] for rule in rules() if "record" in rule}
    known = exported | TRITON | recorded
    queries = [rule["expr"] for rule in rules()] + panel_queries()
    assert len(queries) >= 15
    for query in queries:
        names = metric_names(query)
        assert names and names <= known, f"{query}: unknown {names - known}"


def test_a_misspelt_metric_or_broken_query_is_caught(exported: set[str]) -> None:
    assert metric_names("rate(modstream_decision_total[5m])") - exported == {"modstream_decision_total"}
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (outcome (rate(modstream_decisions_total[5m]))")


def test_the_dashboard_shows_the_key_numbers() -> None:
    shown = set().union(*map(metric_names, panel_queries()))
    for key in (
        "modstream_events_consumed_total",
        "modstream_records_published_total",
        "modstream_decisions_total",
        "modstream_decision_labels_total",
        "modstream_stage_duration_seconds_bucket",
        "nv_inference_exec_count",
        "modstream_review_queue_pending",
        "modstream_review_queue_oldest_age_seconds",
        "modstream_errors_total",
    ):
        assert key in shown, key
