"""OpenTelemetry metrics, read by Prometheus from each process's ``/metrics``.

The instruments are made here, once, on the global meter: until a process calls
``configure_metrics`` they record into nothing (the API's proxy meter), so code and
unit tests that never serve metrics pay nothing for them.

Triton's batch sizes are not measured here: Triton publishes them itself on its own
metrics port (``nv_inference_count`` / ``nv_inference_exec_count``), scraped beside ours.
"""

import threading
from collections.abc import Callable, Iterable

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, generate_latest, start_http_server

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a cache hit to a cold CPU inference under load.
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Seconds a job waits for people: a minute to two days, around the due targets (1 h, 24 h).
REVIEW_WAIT_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0, 172800.0)

_meter = metrics.get_meter("modstream")
events_consumed = _meter.create_counter("modstream.events.consumed", description="Records taken from a topic")
records_published = _meter.create_counter("modstream.records.published", description="Records put on a topic")
decisions = _meter.create_counter("modstream.decisions", description="Decisions by outcome and source")
decision_labels = _meter.create_counter(
    "modstream.decision.labels", description="Labels that triggered a review or block decision"
)
errors = _meter.create_counter("modstream.errors", description="Error decisions and dead letters by reason")
dependency_retries = _meter.create_counter(
    "modstream.dependency.retries", description="Calls retried because a dependency was unreachable"
)
stage_duration = _meter.create_histogram(
    "modstream.stage.duration", unit="s", description="Time spent in a pipeline stage"
)
bank_matches = _meter.create_counter(
    "modstream.bank.matches", description="Decisions made by a hash bank entry, by bank and signal"
)
score_cache_hits = _meter.create_counter(
    "modstream.score_cache.hits", description="Images whose scores were reused from a byte-identical earlier upload"
)
verdicts = _meter.create_counter("modstream.review.verdicts", description="Human verdicts by queue and verdict")
archived_records = _meter.create_counter(
    "modstream.archive.records", description="Records committed to the archive's tables, by table"
)
archive_commits = _meter.create_counter("modstream.archive.commits", description="Archive table commits, by table")
archive_replayed = _meter.create_counter(
    "modstream.archive.replayed",
    description="Records read again (after a crash or a rebalance) that their table already held, by table",
)
archive_unreadable = _meter.create_counter(
    "modstream.archive.unreadable", description="Records on archived topics that were not their type, by topic"
)
statements = _meter.create_counter(
    "modstream.statements", description="Statements of reasons put on their topic, by tenant and decision path"
)
statements_submitted = _meter.create_counter(
    "modstream.statements.submitted",
    description="Statements the Transparency Database took (outcome accepted) or already held (duplicate), by tenant",
)
statements_refused = _meter.create_counter(
    "modstream.statements.refused",
    description="Statements refused (by the database, or by our own check before sending), dead-lettered, by tenant",
)
statements_lifted = _meter.create_counter(
    "modstream.statements.lifted",
    description="Updated statements put on their topic (a restriction lifted on appeal), by tenant",
)
statements_not_sent = _meter.create_counter(
    "modstream.statements.not_sent",
    description="Updated statements the submitter kept from the Transparency Database (it takes no updates), by tenant",
)
appeals_decided = _meter.create_counter(
    "modstream.appeals.decided", description="Appeals a person decided, by tenant, outcome and whether past due"
)
erased_items = _meter.create_counter(
    "modstream.erased.items",
    description="What erasures and retention removed, by place (image versions, archive rows, jobs...) and cause",
)
erasures = _meter.create_counter(
    "modstream.erasures", description="Erasure requests by outcome (done, refused), with the uploads they covered"
)
appeal_decision_time = _meter.create_histogram(
    "modstream.appeals.decision_time", unit="s", description="From an appeal lodged to a person's decision, by queue"
)
gold_answers = _meter.create_counter(
    "modstream.review.gold_answers", description="Verdicts on gold items, by queue and whether the verdict was right"
)
review_first_look = _meter.create_histogram(
    "modstream.review.first_look_time",
    unit="s",
    description="From a job queued to its first claim by a reviewer, by queue and severity",
)
review_decision_time = _meter.create_histogram(
    "modstream.review.decision_time",
    unit="s",
    description="From a job queued to its verdict, by queue, severity and kind",
)

_configured = False
_lock = threading.Lock()


def configure_metrics(service: str) -> None:
    """Install the meter provider (once per process) whose readings ``render`` returns."""
    global _configured
    with _lock:
        if _configured:
            return
        buckets = ExplicitBucketHistogramAggregation(boundaries=STAGE_BUCKETS)
        waits = ExplicitBucketHistogramAggregation(boundaries=REVIEW_WAIT_BUCKETS)
        provider = MeterProvider(
            metric_readers=[PrometheusMetricReader()],
            resource=Resource.create({"service.name": service}),
            views=[
                View(instrument_name="modstream.stage.duration", aggregation=buckets),
                View(instrument_name="modstream.review.first_look_time", aggregation=waits),
                View(instrument_name="modstream.review.decision_time", aggregation=waits),
            ],
        )
        metrics.set_meter_provider(provider)
        _configured = True


def serve_metrics(service: str, host: str, port: int) -> None:
    """Metrics on their own port (a background thread), for a process whose main port is public."""
    configure_metrics(service)
    start_http_server(port, addr=host)


def render() -> bytes:
    """The Prometheus text exposition of everything this process has recorded."""
    return generate_latest(REGISTRY)


Readings = Callable[[], Iterable[tuple[float, dict[str, str]]]]


def observe_gauge(name: str, unit: str, description: str, read: Readings) -> None:
    """A gauge whose values ``read`` gives (value, attributes) at each scrape; ``read`` must not block."""

    def callback(options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attributes) for value, attributes in read()]

    _meter.create_observable_gauge(name, callbacks=[callback], unit=unit, description=description)
