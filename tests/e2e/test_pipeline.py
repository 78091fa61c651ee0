"""The whole flow on real servers: upload -> Kafka -> worker -> S3 -> Triton -> decisions."""

import asyncio
import base64
import hashlib
import json
import subprocess

import pytest
from modstream.core.events import DeadLetter, ImageUploaded, Outcome
from modstream.core.kafka import kafka_consumer, kafka_producer
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.ingest.sdk import UploadClient

from tests import images
from tests.e2e.conftest import WORKER_MAX_IMAGE_BYTES
from tests.records import decisions_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
LABELS = (PROJECT_ROOT / "model_repository" / "image_safety" / "labels.txt").read_text().split()


async def dead_letters(settings: Settings, wanted: int, timeout: float = 60) -> list[DeadLetter]:
    found: list[DeadLetter] = []
    async with kafka_consumer(settings, settings.topic_dead_letter) as consumer:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < wanted and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                found += [DeadLetter.model_validate_json(r.value or b"") for r in records]
    return found


async def test_200_varied_uploads_get_exactly_200_decisions(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    uploads = images.varied_images(200)
    async with UploadClient(worker_settings) as client:
        events = await asyncio.gather(
            *(client.upload_image(data, "e2e", metadata={"filename": name}) for name, data in uploads)
        )
    ids = {e.event_id for e in events}
    assert len(ids) == 200

    decisions = await decisions_for(worker_settings, ids, timeout=400)

    assert len(decisions) == 200, f"{len(decisions)} decisions for 200 uploads"
    assert {d.event_id for d in decisions} == ids
    by_event = {d.event_id: d for d in decisions}
    for event, (name, _) in zip(events, uploads, strict=True):
        decision = by_event[event.event_id]
        assert decision.decision in {Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK}, (name, decision.error)
        assert sorted(decision.scores) == sorted(LABELS), name
        assert all(0.0 <= s <= 1.0 for s in decision.scores.values())
        assert decision.model is not None and decision.model.name == "image_safety" and decision.model.version
        assert decision.policy_version and decision.latency_ms > 0
        assert (decision.tenant, decision.bucket, decision.key) == (event.tenant, event.bucket, event.key)


async def test_each_bad_input_gets_its_named_outcome_and_the_worker_goes_on(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    bad_images = {
        "corrupt_image": images.corrupt_jpeg(),
        "truncated_png": images.truncated_png(),
        "empty_file": b"",
        "not_an_image": images.html_named_jpg(),
        "too_large": images.over_size(WORKER_MAX_IMAGE_BYTES),
        "too_many_pixels": images.decompression_bomb(),
    }
    expected_reason = {name: name for name in bad_images} | {"truncated_png": "corrupt_image"}
    not_json = b'{"event_id": "broken", '
    wrong_schema = json.dumps({"event_id": "wrong-schema-1", "tenant": "e2e", "hello": "world"}).encode()

    async with UploadClient(worker_settings) as client:
        events = {
            name: await client.upload_image(data, "e2e", key=f"bad/{name}.jpg") for name, data in bad_images.items()
        }
        events["object_missing"] = await client.publish_upload_event("e2e", "bad/never-uploaded.jpg")
        expected_reason["object_missing"] = "object_missing"
        stored = events["corrupt_image"]
        huge = ImageUploaded.new(tenant="e2e", bucket=stored.bucket, key=stored.key, metadata={"x": "y" * 2_000_000})
        other_bucket = ImageUploaded.new(tenant="e2e", bucket="not-allowed", key=stored.key)
        stranger = ImageUploaded.new(tenant="nobody-we-know", bucket=stored.bucket, key=stored.key)
        async with kafka_producer(worker_settings, max_request_size=4_000_000) as producer:
            await producer.send_and_wait(worker_settings.topic_uploads, not_json)
            await producer.send_and_wait(worker_settings.topic_uploads, wrong_schema)
            for refused in (huge, other_bucket, stranger):
                await producer.send_and_wait(worker_settings.topic_uploads, refused.to_bytes())
        # Good images after the bad ones: the worker must still be deciding.
        good = [await client.upload_image(data, "e2e") for _, data in images.varied_images(5, seed=99)]

    wanted = {e.event_id for e in events.values()} | {e.event_id for e in good}
    decisions = {d.event_id: d for d in await decisions_for(worker_settings, wanted, timeout=180)}

    for name, event in events.items():
        decision = decisions.get(event.event_id)
        assert decision is not None, f"no decision for {name}"
        assert decision.decision is Outcome.ERROR, name
        assert decision.error is not None and decision.error.reason.value == expected_reason[name], (
            name,
            decision.error,
        )
        assert decision.reasons == [expected_reason[name]]
        assert decision.scores == {} and decision.model is None
    for event in good:
        assert decisions[event.event_id].decision is not Outcome.ERROR

    letters = [
        d for d in await dead_letters(worker_settings, wanted=5) if d.source_topic == worker_settings.topic_uploads
    ]
    by_payload = {base64.b64decode(d.payload_base64): d for d in letters if not d.payload_truncated}
    (too_large,) = [d for d in letters if d.payload_sha256 == hashlib.sha256(huge.to_bytes()).hexdigest()]
    assert (too_large.reason.value, too_large.payload_truncated) == ("event_too_large", True)
    assert too_large.payload_bytes == len(huge.to_bytes()) > 2_000_000
    assert by_payload[other_bucket.to_bytes()].reason.value == "bucket_not_allowed"
    assert by_payload[other_bucket.to_bytes()].event_id == other_bucket.event_id
    assert by_payload[stranger.to_bytes()].reason.value == "unknown_tenant"
    refused_ids = {huge.event_id, other_bucket.event_id, stranger.event_id}
    assert await decisions_for(worker_settings, refused_ids, timeout=5) == []  # refused: never decided
    assert by_payload[not_json].reason.value == "not_json"
    assert by_payload[wrong_schema].reason.value == "schema_mismatch"
    assert by_payload[wrong_schema].event_id == "wrong-schema-1"
    assert "bucket: Field required" in by_payload[wrong_schema].detail
    assert worker.poll() is None, "the worker stopped"


async def test_replayed_event_is_not_decided_twice(worker_settings: Settings, worker: subprocess.Popen[bytes]) -> None:
    async with UploadClient(worker_settings) as client:
        event = await client.upload_image(images.varied_images(1, seed=5)[0][1], "e2e")
        first = await decisions_for(worker_settings, {event.event_id}, timeout=120)
        assert len(first) == 1
        await client.send(ImageUploaded.model_validate(event.model_dump()))  # the same event id again
        marker = await client.upload_image(images.varied_images(1, seed=6)[0][1], "e2e")
    after = await decisions_for(worker_settings, {event.event_id, marker.event_id}, timeout=120)
    assert [d.event_id for d in after].count(event.event_id) == 1
    assert [d.event_id for d in after].count(marker.event_id) == 1
