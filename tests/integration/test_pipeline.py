"""The per-event pipeline in-process against the real servers: tracing and publication."""

import asyncio

import pytest
from modstream.core.dedupe import DecidedEvents
from modstream.core.events import ModerationDecision, Outcome
from modstream.core.inference import TritonScorer
from modstream.core.kafka import KafkaPublisher, kafka_consumer, kafka_producer
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.core.topics import ensure_topics
from modstream.core.tracing import extract_context
from modstream.ingest.sdk import UploadClient
from modstream.policy.watcher import PolicyStore
from modstream.worker.pipeline import Delivery, Pipeline
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from PIL import Image

from tests import images

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    # Topics of its own: a worker of the end-to-end tests may consume the default ones.
    names = {f"topic_{t}": f"pipeline-test.{t}" for t in ("uploads", "decisions", "review_requests", "dead_letter")}
    return stack_settings.model_copy(update=names)


async def test_one_trace_from_upload_through_every_stage_to_the_decision(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    spans.clear()  # the exporter serves the whole session
    await ensure_topics(settings)
    store = ObjectStore(settings)
    store.ensure_bucket(settings.uploads_bucket)
    async with UploadClient(settings) as client:
        event = await client.upload_image(images.encode(Image.effect_noise((300, 200), 50).convert("RGB"), "PNG"), "t")
    async with kafka_consumer(settings, settings.topic_uploads) as consumer:
        record = await asyncio.wait_for(consumer.getone(), 30)

    decided = DecidedEvents(settings, prefix="pipeline-test:")
    async with kafka_producer(settings) as producer:
        pipeline = Pipeline(
            settings=settings,
            store=store,
            scorer=TritonScorer(settings.triton_grpc, settings.triton_model, 60),
            decided=decided,
            publisher=KafkaPublisher(producer),
            policies=PolicyStore(settings.policies_dir, model_labels=None),
        )
        delivery = Delivery(record.value, list(record.headers), record.topic, record.partition, record.offset)
        (decision,) = await pipeline.handle(delivery)
        assert await pipeline.handle(delivery) == [None]  # the same event again: already decided
    await decided.close()

    assert isinstance(decision, ModerationDecision) and decision.event_id == event.event_id
    assert decision.decision in {Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK}
    finished: dict[str, ReadableSpan] = {}
    for span in spans.get_finished_spans():  # the first of each name: the replay adds a second "moderate"
        finished.setdefault(span.name, span)
    assert {"upload", "moderate", "fetch", "inference", "policy", "publish"} <= set(finished)
    trace_id = finished["upload"].context.trace_id
    assert {finished[n].context.trace_id for n in ("moderate", "fetch", "inference", "policy", "publish")} == {trace_id}
    assert finished["moderate"].parent is not None
    for stage in ("fetch", "inference", "policy", "publish"):
        assert finished[stage].parent.span_id == finished["moderate"].context.span_id  # type: ignore[union-attr]

    async with kafka_consumer(settings, settings.topic_decisions) as consumer:
        published = await asyncio.wait_for(consumer.getone(), 30)
    assert ModerationDecision.model_validate_json(published.value or b"") == decision
    carried = trace.get_current_span(extract_context(published.headers)).get_span_context()
    assert carried.trace_id == trace_id
