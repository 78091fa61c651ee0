"""Events from outside clients and from bucket notifications, through the real worker.

Every record here is produced (and a decision consumed) with confluent-kafka, a second real
Kafka client beside the project's aiokafka: what a platform that is not written in our stack
would use. The local S3 servers send no notifications, so the test publishes them in MinIO's
and Amazon S3's exact formats for objects really stored in the local S3.
"""

import base64
import io
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer
from minio import Minio
from modstream.core.events import DeadLetter, ImageUploaded, ModerationDecision, Outcome
from modstream.core.settings import Settings
from modstream.worker.notifications import object_event_id

from tests import images
from tests.e2e.conftest import NOTIFIED_BUCKET
from tests.notifications import minio_message, s3_message, s3_record
from tests.records import decisions_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
Worker = subprocess.Popen[bytes]
Send = Callable[[str, bytes | None, bytes], None]


@pytest.fixture
def producer(worker_settings: Settings) -> Iterator[Send]:
    """Produce with confluent-kafka, each record acknowledged by the broker before returning."""
    client = Producer({"bootstrap.servers": worker_settings.kafka_bootstrap, "acks": "all", "linger.ms": 0})
    failures: list[KafkaError] = []

    def send(topic: str, key: bytes | None, value: bytes) -> None:
        def delivered(error: KafkaError | None, _: Message) -> None:
            if error is not None:
                failures.append(error)

        client.produce(topic, value=value, key=key, on_delivery=delivered)
        assert client.flush(30) == 0, "confluent-kafka did not deliver within 30 s"
        assert not failures, failures

    yield send
    client.flush(10)


def consume_until(settings: Settings, topic: str, found: Callable[[bytes], bool], timeout: float) -> bytes:
    """The first record on ``topic`` (from its start) that ``found`` accepts, read with a
    confluent-kafka consumer in a group of its own."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"confluent-e2e-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": int(settings.broker_session_timeout * 1000),
            "heartbeat.interval.ms": max(100, int(settings.broker_session_timeout * 1000) // 3),
        }
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            error = message.error()
            assert error is None or error.code() == KafkaError._PARTITION_EOF, error
            value = message.value()
            if isinstance(value, bytes) and found(value):
                return value
        raise AssertionError(f"nothing matching on {topic} within {timeout} s")
    finally:
        consumer.close()


def store(settings: Settings, bucket: str, key: str, data: bytes) -> str:
    """Put an object in the local S3 and return its eTag (what a notification carries)."""
    client = Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key.get_secret_value(),
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=False,
        region=settings.s3_region,
    )
    written = client.put_object(bucket, key, io.BytesIO(data), len(data), content_type="image/jpeg")
    assert written.etag
    return str(written.etag).strip('"')


def decision_of(event_id: str) -> Callable[[bytes], bool]:
    return lambda value: json.loads(value).get("event_id") == event_id


def dead_letter_of(payload: bytes) -> Callable[[bytes], bool]:
    def matches(value: bytes) -> bool:
        letter = DeadLetter.model_validate_json(value)
        return not letter.payload_truncated and base64.b64decode(letter.payload_base64) == payload

    return matches


def test_an_upload_event_with_unknown_fields_from_confluent_kafka_is_decided(
    worker_settings: Settings, worker: Worker, producer: Send
) -> None:
    key = f"e2e/confluent/{uuid.uuid4().hex}.jpg"
    data = images.varied_images(1, seed=71)[0][1]
    store(worker_settings, worker_settings.uploads_bucket, key, data)
    event = ImageUploaded.new(tenant="e2e", bucket=worker_settings.uploads_bucket, key=key, size_bytes=len(data))
    # A newer producer's event: fields this worker has never heard of, at the top level.
    sent = json.loads(event.to_bytes()) | {"uploader_id": "u-42", "moderation_hint": {"priority": "high"}}

    producer(worker_settings.topic_uploads, event.event_id.encode(), json.dumps(sent).encode())
    found = consume_until(worker_settings, worker_settings.topic_decisions, decision_of(event.event_id), 180)

    decision = ModerationDecision.model_validate_json(found)
    assert decision.decision in {Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK}, decision.error
    assert (decision.tenant, decision.bucket, decision.key) == ("e2e", worker_settings.uploads_bucket, key)
    assert decision.scores and decision.model is not None


async def test_minio_and_s3_notifications_each_get_exactly_one_decision(
    worker_settings: Settings, worker: Worker, producer: Send
) -> None:
    topic = worker_settings.topic_s3_notifications
    uploads = worker_settings.uploads_bucket
    run = uuid.uuid4().hex[:8]
    photos = iter(data for _, data in images.varied_images(4, seed=72))
    # MinIO: a bucket mapped to tenant e2e; a key with spaces, "+" and a non-ASCII letter.
    minio_key = f"summer {run}/day+1 (ü).jpg"
    minio_etag = store(worker_settings, NOTIFIED_BUCKET, minio_key, next(photos))
    kafka_key, minio_raw = minio_message(NOTIFIED_BUCKET, minio_key, etag=minio_etag, size=1)
    # Amazon S3: one message, three entries; the uploads bucket, tenant from the key's first segment.
    s3_keys = [f"e2e/{run}/a b.jpg", f"e2e/{run}/c%d.jpg"]
    s3_etags = [store(worker_settings, uploads, k, next(photos)) for k in s3_keys]
    removed_key = f"e2e/{run}/removed.jpg"
    s3_raw = s3_message(
        s3_record(uploads, s3_keys[0], etag=s3_etags[0]),
        s3_record(uploads, removed_key, event_name="ObjectRemoved:Delete", etag=None),
        s3_record(uploads, s3_keys[1], etag=s3_etags[1]),
    )
    expected = {
        object_event_id(NOTIFIED_BUCKET, minio_key, "1", minio_etag): (NOTIFIED_BUCKET, minio_key),
        object_event_id(uploads, s3_keys[0], None, s3_etags[0]): (uploads, s3_keys[0]),
        object_event_id(uploads, s3_keys[1], None, s3_etags[1]): (uploads, s3_keys[1]),
    }

    producer(topic, kafka_key, minio_raw)
    producer(topic, None, s3_raw)
    first = await decisions_for(worker_settings, set(expected), timeout=180)

    assert sorted(d.event_id for d in first) == sorted(expected), "each notified object: one decision"
    for decision in first:
        assert (decision.bucket, decision.key) == expected[decision.event_id]
        assert decision.tenant == "e2e"
        assert decision.decision in {Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK}, decision.error
    # The removal came between the two decided entries of its message: it was read, and ignored.
    assert not [d for d in first if d.key == removed_key]

    # The same notification again (MinIO retries; Kafka redelivers), then a new object as a marker.
    marker_key = f"e2e/{run}/marker.jpg"
    marker_etag = store(worker_settings, uploads, marker_key, next(photos))
    marker_id = object_event_id(uploads, marker_key, None, marker_etag)
    producer(topic, kafka_key, minio_raw)
    producer(topic, None, s3_message(s3_record(uploads, marker_key, etag=marker_etag)))
    again = await decisions_for(worker_settings, {*expected, marker_id}, timeout=180)
    counts = {e: [d.event_id for d in again].count(e) for e in {*expected, marker_id}}
    assert counts == dict.fromkeys(counts, 1), counts


async def test_malformed_notifications_are_dead_lettered_with_a_reason(
    worker_settings: Settings, worker: Worker, producer: Send
) -> None:
    topic = worker_settings.topic_s3_notifications
    run = uuid.uuid4().hex[:8]
    no_key = s3_record(worker_settings.uploads_bucket, f"e2e/{run}/no-key.jpg")
    del no_key["s3"]["object"]["key"]
    cases = {
        f'{{"Records": [ {run}'.encode(): ("not_json", "payload is not JSON"),
        json.dumps({"EventName": "s3:ObjectCreated:Put", "run": run}).encode(): (
            "schema_mismatch",
            "not a bucket notification",
        ),
        s3_message(no_key): ("schema_mismatch", "Records.0.s3.object.key: Field required"),
        s3_message(s3_record("not-allowed", f"e2e/{run}/x.jpg")): ("bucket_not_allowed", "'not-allowed'"),
        s3_message(s3_record(worker_settings.uploads_bucket, f"{run}.jpg")): (
            "unknown_tenant",
            "its key has no first segment",
        ),
    }
    for payload in cases:
        producer(topic, None, payload)

    for payload, (reason, detail) in cases.items():
        found = consume_until(worker_settings, worker_settings.topic_dead_letter, dead_letter_of(payload), 120)
        letter = DeadLetter.model_validate_json(found)
        assert (letter.reason.value, letter.source_topic) == (reason, topic), letter
        assert detail in letter.detail, letter.detail
