"""The whole flow on real servers: upload -> Kafka -> worker -> S3 -> Triton -> decisions."""

import asyncio
import base64
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from modstream.core.events import DeadLetter, ImageUploaded, ModerationDecision, Outcome
from modstream.core.kafka import kafka_consumer, kafka_producer
from modstream.core.settings import Settings
from modstream.core.storage import ObjectStore
from modstream.explain.store import SaliencyStore, event_prefix, explainer_for, saliency_key
from modstream.ingest.sdk import UploadClient

from tests import images
from tests.e2e.conftest import BLOCKS_TENANT, DECIDED_LABELS, MAPS_TENANT, WORKER_MAX_IMAGE_BYTES
from tests.offsets import records_so_far, wait_until_committed_to_end
from tests.records import decisions_for, first_records
from tests.workers import log_line, log_size

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


async def dead_letters(settings: Settings, payloads: list[bytes], timeout: float = 60) -> dict[bytes, DeadLetter]:
    """The dead letter of each payload (known by its sha256), once every one has arrived."""
    wanted = {hashlib.sha256(payload).hexdigest(): payload for payload in payloads}
    found: dict[bytes, DeadLetter] = {}
    async with kafka_consumer(settings, settings.topic_dead_letter) as consumer:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(found) < len(wanted) and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    letter = DeadLetter.model_validate_json(record.value or b"")
                    if letter.payload_sha256 in wanted and letter.source_topic == settings.topic_uploads:
                        found[wanted[letter.payload_sha256]] = letter
    missing = len(wanted) - len(found)
    assert not missing, f"{missing} of {len(wanted)} refused events have no dead letter"
    return found


async def record_at(settings: Settings, letter: DeadLetter) -> bytes | None:
    """The record a dead letter names, read at its partition and offset."""
    where = TopicPartition(letter.source_topic, letter.partition)
    async with kafka_consumer(settings) as consumer:
        consumer.assign([where])
        consumer.seek(where, letter.offset)
        record = await asyncio.wait_for(consumer.getone(where), 30)
    value: bytes | None = record.value
    return value


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
    assert {d.event_id for d in decisions} == ids
    # Exactly one each, checked once the worker has committed every upload (so it is done with
    # each, redeliveries included) and the decisions topic is read to its end.
    await wait_until_committed_to_end(worker_settings, worker_settings.consumer_group, worker_settings.topic_uploads)
    so_far = await records_so_far(worker_settings, worker_settings.topic_decisions, ModerationDecision)
    assert sum(len(so_far[e]) for e in ids) == 200, f"{sum(len(so_far[e]) for e in ids)} decisions for 200 uploads"
    by_event = {d.event_id: d for d in decisions}
    for event, (name, _) in zip(events, uploads, strict=True):
        decision = by_event[event.event_id]
        assert decision.decision in {Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK}, (name, decision.error)
        assert sorted(decision.scores) == DECIDED_LABELS, name
        assert all(0.0 <= s <= 1.0 for s in decision.scores.values())
        assert decision.model is not None and decision.model.name == "moderation" and decision.model.version
        assert decision.policy_version and decision.latency_ms > 0
        assert (decision.tenant, decision.bucket, decision.key) == (event.tenant, event.bucket, event.key)


async def test_each_bad_input_gets_its_named_outcome_and_the_worker_goes_on(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    bad_images = {
        "corrupt_jpeg": images.corrupt_jpeg(),
        "truncated_png": images.truncated_png(),
        "corrupt_webp": images.corrupt_webp(),
        "corrupt_gif": images.corrupt_gif(),
        "empty_file": b"",
        "html": images.html_named_jpg(),
        "svg": images.svg_named_jpg(),
        "text": images.text_named_jpg(),
        "too_large": images.over_size(WORKER_MAX_IMAGE_BYTES),
        "too_many_pixels": images.decompression_bomb(),
    }
    expected_reason = {
        "corrupt_jpeg": "corrupt_image",
        "truncated_png": "corrupt_image",
        "corrupt_webp": "corrupt_image",
        "corrupt_gif": "corrupt_image",
        "empty_file": "empty_file",
        "html": "not_an_image",
        "svg": "not_an_image",
        "text": "not_an_image",
        "too_large": "too_large",
        "too_many_pixels": "too_many_pixels",
        "object_missing": "object_missing",
    }

    async with UploadClient(worker_settings) as client:
        events = {
            name: await client.upload_image(data, "e2e", key=f"bad/{name}.jpg") for name, data in bad_images.items()
        }
        events["object_missing"] = await client.publish_upload_event("e2e", "bad/never-uploaded.jpg")
        stored = events["corrupt_jpeg"]
        valid = json.loads(stored.to_bytes())
        refused = {
            "not_json": b'{"event_id": "broken", ',
            "schema_mismatch": json.dumps({"event_id": "wrong-schema-1", "tenant": "e2e", "hello": "world"}).encode(),
            "dot_dot_key": json.dumps(valid | {"event_id": "dot-dot-1", "key": "../etc/passwd"}).encode(),
            "absolute_key": json.dumps(valid | {"event_id": "absolute-1", "key": "/etc/passwd"}).encode(),
            "schema_version": json.dumps(valid | {"event_id": "version-2", "schema_version": 2}).encode(),
        }
        huge = ImageUploaded.new(tenant="e2e", bucket=stored.bucket, key=stored.key, metadata={"x": "y" * 2_000_000})
        other_bucket = ImageUploaded.new(tenant="e2e", bucket="not-allowed", key=stored.key)
        stranger = ImageUploaded.new(tenant="nobody-we-know", bucket=stored.bucket, key=stored.key)
        async with kafka_producer(worker_settings, max_request_size=4_000_000) as producer:
            for payload in [*refused.values(), huge.to_bytes(), other_bucket.to_bytes(), stranger.to_bytes()]:
                await producer.send_and_wait(worker_settings.topic_uploads, payload)
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

    letters = await dead_letters(
        worker_settings, [*refused.values(), huge.to_bytes(), other_bucket.to_bytes(), stranger.to_bytes()]
    )
    too_large = letters[huge.to_bytes()]
    assert (too_large.reason.value, too_large.payload_truncated) == ("event_too_large", True)
    assert too_large.payload_bytes == len(huge.to_bytes()) > 2_000_000
    assert len(base64.b64decode(too_large.payload_base64)) == worker_settings.max_event_bytes
    assert await record_at(worker_settings, too_large) == huge.to_bytes()  # the original stays at its offset
    assert letters[other_bucket.to_bytes()].reason.value == "bucket_not_allowed"
    assert letters[other_bucket.to_bytes()].event_id == other_bucket.event_id
    assert letters[stranger.to_bytes()].reason.value == "unknown_tenant"
    for name in ("not_json", "schema_mismatch", "schema_version"):
        assert letters[refused[name]].reason.value == name.replace("schema_version", "unsupported_schema_version")
    for name in ("dot_dot_key", "absolute_key"):
        assert letters[refused[name]].reason.value == "schema_mismatch", name
        assert "key" in letters[refused[name]].detail
    for payload in refused.values():
        assert base64.b64decode(letters[payload].payload_base64) == payload  # the exact bytes, kept
    assert letters[refused["schema_mismatch"]].event_id == "wrong-schema-1"
    assert "bucket: Field required" in letters[refused["schema_mismatch"]].detail
    # Each refused event is done with (its dead letter is out), so a decision for one would be
    # on the topic by now: read the decisions topic to its present end.
    so_far = await records_so_far(worker_settings, worker_settings.topic_decisions, ModerationDecision)
    assert good[-1].event_id in so_far  # the read reached the latest decisions
    refused_ids = {huge.event_id, other_bucket.event_id, stranger.event_id, "dot-dot-1", "absolute-1", "version-2"}
    assert not refused_ids & so_far.keys(), "a refused event was decided"
    assert worker.poll() is None, "the worker stopped"


async def test_replayed_event_is_not_decided_twice(
    worker_settings: Settings, worker: subprocess.Popen[bytes], worker_log: Path
) -> None:
    async with UploadClient(worker_settings) as client:
        event = await client.upload_image(images.varied_images(1, seed=5)[0][1], "e2e")
        first = (
            await first_records(worker_settings, worker_settings.topic_decisions, ModerationDecision, [event.event_id])
        )[event.event_id]
        logged = log_size(worker_log)
        await client.send(ImageUploaded.model_validate(event.model_dump()))  # the same event id again
    skipped = await log_line(
        worker_log,
        lambda line: line.get("msg") == "already decided, skipping" and line.get("event_id") == event.event_id,
        after=logged,
        timeout=120,
    )
    assert skipped["decision_id"] == first.decision_id
    # The replay is handled (skipped): any decision it made is on the topic by now.
    so_far = await records_so_far(worker_settings, worker_settings.topic_decisions, ModerationDecision)
    assert [d.decision_id for d in so_far[event.event_id]] == [first.decision_id]


async def test_a_policy_asking_for_maps_of_blocks_gets_them_kept_and_named_by_the_decision(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    """Two tenants that block the same photo, one with ``saliency_on_block``: its decision names
    maps kept where it says, the ones the review page would be served for that event and model
    version; the other's decision names none and none are kept of it."""
    settings, photo = worker_settings, images.varied_images(1, seed=11)[0][1]
    async with UploadClient(settings) as client:
        plain = await client.upload_image(photo, BLOCKS_TENANT)
        mapped = await client.upload_image(photo, MAPS_TENANT)
    decided = await first_records(
        settings, settings.topic_decisions, ModerationDecision, [plain.event_id, mapped.event_id]
    )
    blocked, with_maps = decided[plain.event_id], decided[mapped.event_id]
    assert blocked.decision is with_maps.decision is Outcome.BLOCK, (blocked.reasons, with_maps.reasons)
    assert with_maps.model is not None and with_maps.saliency is not None, "the block names no maps"

    ref = with_maps.saliency
    assert ref.bucket == settings.archive_bucket
    assert ref.key == saliency_key(mapped.event_id, with_maps.model, ref.method)
    kept = await SaliencyStore(ObjectStore(settings), settings.archive_bucket).get(
        mapped.event_id, with_maps.model, ref.method
    )
    assert kept is not None, f"nothing kept at s3://{ref.bucket}/{ref.key}"
    assert kept.model == with_maps.model and sorted(kept.maps) == ref.labels
    assert "sexual.any" in ref.labels and kept.maps["sexual.any"].cells  # the label that blocked has a map
    # What the dashboard's heat map toggle answers for this event and model: these maps, kept.
    explainer = explainer_for(settings)
    try:
        served = await explainer.document(mapped.event_id, photo, with_maps.model)
    finally:
        await explainer.close()
    assert served["cached"] is True and served["maps"] == kept.model_dump(mode="json")["maps"]

    # The tenant without the key: its block was decided (after which the worker makes no map of
    # it), and nothing is kept under its id.
    assert blocked.saliency is None
    assert ObjectStore(settings).keys(settings.archive_bucket, event_prefix(plain.event_id)) == []
