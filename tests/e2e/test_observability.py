"""Traces and metrics of the real worker process: one trace per upload, counts that add up."""

import asyncio
import subprocess

import pytest
from modstream.core.events import ModerationDecision, Outcome, ReviewRequest, ReviewVerdict
from modstream.core.settings import Settings
from modstream.core.tracing import extract_context, trace_carrier
from modstream.ingest.sdk import UploadClient
from modstream.review.intake import job_for
from modstream.review.jobs import Verdict, VerdictInput
from modstream.review.service import ReviewService
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests import images
from tests.e2e.conftest import TRACED_QUEUE, TRACED_TENANT
from tests.otlp import OtlpReceiver
from tests.records import R, RecordLog, decisions_for
from tests.scrape import scrape, total

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
WORKER_STAGES = {"moderate", "fetch", "inference", "policy", "publish"}


async def first_with_headers(
    settings: Settings, topic: str, kind: type[R], event_id: str
) -> tuple[R, list[tuple[str, bytes]]]:
    async with RecordLog(settings, topic, kind) as log:
        assert await log.wait_for([event_id]) == 1, f"no {kind.__name__} for {event_id} on {topic}"
        return log.first(event_id), log.headers(event_id)


def counted(reader: InMemoryMetricReader, name: str, **attributes: str) -> float:
    """A counter's value for these attributes, as recorded in this process."""
    data = reader.get_metrics_data()
    return sum(
        point.value
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
        if isinstance(point, NumberDataPoint) and dict(point.attributes or {}) == attributes
    )


async def test_one_trace_from_the_upload_through_the_worker_to_the_human_verdict(
    worker_settings: Settings,
    worker: subprocess.Popen[bytes],
    otlp: OtlpReceiver,
    spans: InMemorySpanExporter,
    metric_reader: InMemoryMetricReader,
) -> None:
    spans.clear()
    verdicts_before = counted(metric_reader, "modstream.review.verdicts", queue=TRACED_QUEUE, verdict="approve")
    human_before = counted(metric_reader, "modstream.decisions", outcome="allow", source="human")
    async with UploadClient(worker_settings) as client:
        event = await client.upload_image(images.encode_noise_png(320, 240), TRACED_TENANT)
    (upload,) = [s for s in spans.get_finished_spans() if s.name == "upload"]
    trace_id = upload.context.trace_id

    request, headers = await first_with_headers(
        worker_settings, worker_settings.topic_review_requests, ReviewRequest, event.event_id
    )
    review = ReviewService(worker_settings)
    await review.start()
    try:
        await review.queues.enqueue(job_for(request, trace_context=trace_carrier(headers)))
        claimed = await review.claim_next(TRACED_QUEUE, "tracy")
        assert claimed is not None and claimed[0].job_id == event.event_id
        human = await review.submit(event.event_id, "tracy", VerdictInput(verdict=Verdict.APPROVE, labels=[]))
    finally:
        await review.stop()

    for _ in range(50):  # the worker exports in batches, every 200 ms here
        worker_spans = otlp.in_trace(trace_id)
        if {span.name for _, span in worker_spans} >= WORKER_STAGES:
            break
        await asyncio.sleep(0.2)
    assert {span.name for _, span in worker_spans} >= WORKER_STAGES
    assert {service for service, _ in worker_spans} == {"modstream-worker"}
    by_name = {span.name: span for _, span in worker_spans}
    assert by_name["moderate"].parent_span_id == upload.context.span_id.to_bytes(8, "big")
    for stage in WORKER_STAGES - {"moderate"}:
        assert by_name[stage].parent_span_id == by_name["moderate"].span_id

    (verdict,) = [s for s in spans.get_finished_spans() if s.name == "verdict"]
    assert verdict.context.trace_id == trace_id
    assert verdict.parent is not None and verdict.parent.span_id == int.from_bytes(by_name["publish"].span_id, "big")

    # Consumers of the verdicts topic continue the same trace from the record's headers.
    _, verdict_headers = await first_with_headers(
        worker_settings, worker_settings.topic_review_verdicts, ReviewVerdict, event.event_id
    )
    assert trace.get_current_span(extract_context(verdict_headers)).get_span_context().trace_id == trace_id
    assert isinstance(human, ModerationDecision) and human.source == "human"
    # The verdict is counted where it happened (here: the review service runs in this process).
    verdicts = counted(metric_reader, "modstream.review.verdicts", queue=TRACED_QUEUE, verdict="approve")
    assert verdicts - verdicts_before == 1
    assert counted(metric_reader, "modstream.decisions", outcome="allow", source="human") - human_before == 1


async def test_worker_metrics_count_every_event_decision_and_stage(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    uploads = worker_settings.topic_uploads
    metrics_url = f"http://127.0.0.1:{worker_settings.worker_web_port}/metrics"
    before = scrape(metrics_url)
    async with UploadClient(worker_settings) as client:
        events = [await client.upload_image(images.encode_noise_png(64 + i, 64), "e2e") for i in range(6)]
    decided = await decisions_for(worker_settings, {e.event_id for e in events}, timeout=120)
    assert len(decided) == len(events)
    await asyncio.sleep(0.5)  # the counters are updated right after the publish
    after = scrape(metrics_url)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("modstream_events_consumed_total", topic=uploads) == len(events)
    outcomes = {d.decision.value for d in decided}
    assert sum(grew("modstream_decisions_total", outcome=o, source="automatic") for o in outcomes) == len(events)
    assert grew("modstream_records_published_total", topic=worker_settings.topic_decisions) == len(events)
    for stage in ("fetch", "inference", "policy", "publish"):
        assert grew("modstream_stage_duration_seconds_count", stage=stage) == len(events), stage
        assert grew("modstream_stage_duration_seconds_sum", stage=stage) > 0, stage
    triggered = sum(len(d.triggered) for d in decided)
    assert sum(grew("modstream_decision_labels_total", outcome=o) for o in outcomes) == triggered
    assert grew("modstream_errors_total") == sum(d.decision is Outcome.ERROR for d in decided)
