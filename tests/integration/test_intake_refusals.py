"""Refusals at intake happen before any storage call: counted on the wire to the real S3 server."""

import json

import pytest
from modstream.core.dedupe import DecidedEvents
from modstream.core.events import DeadLetter, ImageUploaded, ModerationDecision
from modstream.core.inference import TritonScorer
from modstream.core.kafka import KafkaPublisher, kafka_producer
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.core.topics import ensure_topics
from modstream.policy.watcher import PolicyStore
from modstream.worker.pipeline import Delivery, Pipeline

from tests import images
from tests.proxy import CountingProxy

pytestmark = pytest.mark.integration


async def test_refused_events_never_reach_the_object_store(stack_settings: Settings) -> None:
    names = {f"topic_{t}": f"refusal-test.{t}" for t in ("uploads", "decisions", "review_requests", "dead_letter")}
    settings = stack_settings.model_copy(update=names | {"tenants": ["t"]})
    await ensure_topics(settings)
    stored = ObjectStore(settings).put(
        settings.uploads_bucket, "refusal/photo.png", images.encode_noise_png(), "image/png"
    )
    valid: dict[str, object] = json.loads(
        ImageUploaded.new(tenant="t", bucket=stored.bucket, key=stored.key).to_bytes()
    )
    refused = [
        ("not_json", b'{"event_id": "broken", '),
        ("schema_mismatch", json.dumps(valid | {"bucket": None}).encode()),
        ("schema_mismatch", json.dumps(valid | {"key": "../" + stored.key}).encode()),
        ("unsupported_schema_version", json.dumps(valid | {"schema_version": 2}).encode()),
        ("event_too_large", json.dumps(valid | {"metadata": {"x": "y" * settings.max_event_bytes}}).encode()),
        ("bucket_not_allowed", json.dumps(valid | {"bucket": "elsewhere"}).encode()),
        ("unknown_tenant", json.dumps(valid | {"tenant": "stranger"}).encode()),
    ]
    decided = DecidedEvents(settings, prefix="refusal-test:")
    async with CountingProxy(settings.s3_endpoint) as proxy, kafka_producer(settings) as producer:
        pipeline = Pipeline(
            settings=settings,
            store=ObjectStore(settings.model_copy(update={"s3_endpoint": proxy.endpoint})),
            scorer=TritonScorer(settings.triton_grpc, settings.triton_model, 60),
            decided=decided,
            publisher=KafkaPublisher(producer),
            policies=PolicyStore(settings.policies_dir, model_labels=None),
        )
        for offset, (reason, payload) in enumerate(refused):
            (letter,) = await pipeline.handle(Delivery(payload, [], settings.topic_uploads, 0, offset))
            assert isinstance(letter, DeadLetter) and letter.reason.value == reason, (reason, letter)
        assert proxy.bytes_to_clients == 0
        # The same event, admitted, is fetched through the proxy: the count above could have moved.
        (decision,) = await pipeline.handle(Delivery(json.dumps(valid).encode(), [], settings.topic_uploads, 0, 99))
        assert isinstance(decision, ModerationDecision) and decision.error is None
        assert proxy.bytes_to_clients > stored.size
    await decided.close()
