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
# Every instrument recorded once (the drift gauges read what the monitor last saw), then
# the exporter's real output.
EXPORT = """
from modstream.core import metrics
from modstream.quality import archived, drift_monitor
from modstream.quality.drift import Drift
from modstream.review import gauges
from modstream.review.jobs import QueueStats
metrics.configure_metrics("test")
gauges.remember([QueueStats(name="q", pending=1, in_review=0, oldest_age_seconds=1.0)], {"t": 1})
from modstream.core.gold import Tally
from modstream.core.review_rules import GoldRules
gauges.remember_gold([Tally("rita", "t", "(verdict)", 30, 12)], lambda tenant: GoldRules())
for name in ("events_consumed", "records_published", "decisions", "decision_labels", "errors",
             "dependency_retries", "verdicts", "archived_records", "archive_commits",
             "archive_replayed", "archive_unreadable", "statements", "statements_submitted",
             "statements_refused", "appeals_decided", "gold_answers"):
    getattr(metrics, name).add(1, {"x": "y"})
metrics.stage_duration.record(0.1, {"stage": "fetch"})
metrics.appeal_decision_time.record(3600.0, {"queue": "appeals"})
metrics.review_first_look.record(600.0, {"queue": "q", "severity": "severe"})
metrics.review_decision_time.record(900.0, {"queue": "q", "severity": "severe", "kind": "threshold_review"})
drift_monitor._readings[("t", "nsfw")] = drift_monitor.Reading("1", 0, Drift(0.3, 0.1, 0.2, 0.0, 900))
drift_monitor._audit_rates["t"] = 0.1
archived._set_aside["t"] = {"orphan": 1}
from modstream.statements import service
service._waiting_since["t"] = 0.0
print(metrics.render().decode())
"""


@pytest.fixture(scope="module")
def exported() -> set[str]:
    done = subprocess.run([sys.executable, "-c", EXPORT], capture_output=True, text=True, check=True)
    return {line.split("{")[0].split(" ")[0] for line in done.stdout.splitlines() if line.startswith("modstream_")}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def panels() -> list[dict[str, Any]]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "modstream.json").read_text())
    found: list[dict[str, Any]] = dashboard["panels"]
    return found


def panel_queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


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
        "modstream_review_queue_past_due",
        "modstream_review_first_look_time_seconds_bucket",
        "modstream_review_decision_time_seconds_bucket",
        "modstream_errors_total",
        "modstream_drift_psi",
        "modstream_drift_decision_rate_change",
        "modstream_drift_audit_rate",
    ):
        assert key in shown, key


def comparison(query: str) -> tuple[list[str], set[str], float]:
    """An alert's ``<aggregation> > <number>``: the labels it keeps, the functions it applies, the number."""
    node = promql_parser.parse(query)
    assert isinstance(node, promql_parser.BinaryExpr) and str(node.op) == ">", query
    assert isinstance(node.lhs, promql_parser.AggregateExpr) and node.lhs.modifier is not None, query
    assert isinstance(node.rhs, promql_parser.NumberLiteral), query
    functions: set[str] = set()

    def visit(child: object) -> None:
        if isinstance(child, promql_parser.Call):
            functions.add(child.func.name)

    promql_parser.walk(node.lhs, pre_visit=visit)
    return list(node.lhs.modifier.labels), functions, node.rhs.val


def test_drift_alerts_fire_at_the_default_thresholds_per_tenant_and_label() -> None:
    groups = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())["groups"]
    (drift,) = [group["rules"] for group in groups if group["name"] == "modstream.drift"]
    alerts = {rule["alert"]: rule for rule in drift}
    psi, rate_change = "modstream_drift_psi", "modstream_drift_decision_rate_change"
    expected = {
        # One series per tenant and label (and level), whatever the number of archivers;
        # a decision rate that falls counts as much as one that rises (abs).
        "ModstreamScoreDriftWarning": ({psi}, ["tenant", "label"], set(), 0.1, "15m", "ticket"),
        "ModstreamScoreDrift": ({psi}, ["tenant", "label"], set(), 0.2, "15m", "page"),
        "ModstreamDecisionRateDrift": ({rate_change}, ["tenant", "label", "level"], {"abs"}, 0.1, "30m", "ticket"),
    }
    assert set(alerts) == set(expected)
    for name, (metrics, kept, functions, threshold, duration, severity) in expected.items():
        alert = alerts[name]
        assert (metric_names(alert["expr"]), *comparison(alert["expr"])) == (metrics, kept, functions, threshold), name
        assert alert["for"] == duration and alert["labels"] == {"severity": severity}, name
        summary = alert["annotations"]["summary"]
        assert "$labels.tenant" in summary and "$labels.label" in summary, name
    with pytest.raises(AssertionError):
        comparison("max by (tenant, label) (modstream_drift_psi) >= 0.1")


def test_the_psi_panel_draws_the_alert_thresholds() -> None:
    (panel,) = [p for p in panels() if p["title"] == "Score drift (PSI) by tenant and label"]
    assert [metric_names(target["expr"]) for target in panel["targets"]] == [{"modstream_drift_psi"}]
    defaults = panel["fieldConfig"]["defaults"]
    steps = [step["value"] for step in defaults["thresholds"]["steps"]]
    assert steps == [None, 0.1, 0.2] and defaults["custom"]["thresholdsStyle"]["mode"] != "off"


def test_panels_have_their_own_ids_and_places_on_a_24_column_grid() -> None:
    found = panels()
    assert [panel["id"] for panel in found] == list(range(1, len(found) + 1))
    cells: set[tuple[int, int]] = set()
    for panel in found:
        place = panel["gridPos"]
        assert place["x"] + place["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(place["x"], place["x"] + place["w"])
            for y in range(place["y"], place["y"] + place["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
