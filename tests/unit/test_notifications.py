"""Bucket notifications (MinIO's Kafka target, Amazon S3) into upload events: the pure parser."""

import json
import re

import pytest
from modstream.core.events import DeadLetterReason, ImageUploaded
from modstream.worker.intake import Admission, Malformed
from modstream.worker.notifications import (
    Ignored,
    Tenancy,
    admit_notification,
    object_event_id,
    parse_notification,
)

from tests.notifications import minio_message, s3_message, s3_record

EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")  # core.events.EventId
TENANCY = Tenancy({"uploads": "acme"})


def one(raw: bytes, tenancy: Tenancy = TENANCY) -> ImageUploaded | Malformed | Ignored:
    (outcome,) = parse_notification(raw, tenancy)
    return outcome


def test_minio_record_becomes_an_upload_event() -> None:
    kafka_key, raw = minio_message("uploads", "2026/11/my photo+1 (ü).jpg", size=1234, etag="abc123")
    event = one(raw)
    assert isinstance(event, ImageUploaded), event
    assert (event.tenant, event.bucket, event.key) == ("acme", "uploads", "2026/11/my photo+1 (ü).jpg")
    assert kafka_key == b"uploads/2026/11/my photo+1 (\xc3\xbc).jpg"
    assert (event.size_bytes, event.content_type) == (1234, "image/jpeg")
    assert event.event_id == object_event_id("uploads", event.key, "1", "abc123")
    assert event.metadata == {"notification": "s3:ObjectCreated:Put", "etag": "abc123", "version_id": "1"}
    assert event.occurred_at.tzinfo is not None


def test_every_s3_record_of_a_message_becomes_an_event_with_its_key_decoded() -> None:
    raw = s3_message(
        s3_record("uploads", "a/with space.png", size=10, etag="e1"),
        s3_record("uploads", "b/plus+and%percent.webp", size=20, etag="e2", version_id="3HL4kqtJlcpXroDTDmJ"),
    )
    first, second = parse_notification(raw, TENANCY)
    assert isinstance(first, ImageUploaded) and isinstance(second, ImageUploaded)
    assert json.loads(raw)["Records"][0]["s3"]["object"]["key"] == "a/with+space.png"  # as S3 sends it
    assert (first.key, first.size_bytes) == ("a/with space.png", 10)
    assert second.key == "b/plus+and%percent.webp"
    assert second.metadata["version_id"] == "3HL4kqtJlcpXroDTDmJ"
    assert first.event_id != second.event_id


def test_the_id_names_one_object_version() -> None:
    def event_id(raw: bytes) -> str:
        event = one(raw)
        assert isinstance(event, ImageUploaded), event
        return event.event_id

    same = event_id(s3_message(s3_record("uploads", "k.jpg", etag="aa")))
    assert event_id(s3_message(s3_record("uploads", "k.jpg", etag="aa"))) == same  # a redelivery
    assert event_id(s3_message(s3_record("uploads", "k.jpg", etag='"aa"'))) == same  # quoted eTag
    assert event_id(s3_message(s3_record("uploads", "k.jpg", etag="aa", version_id="null"))) == same
    assert event_id(s3_message(s3_record("uploads", "k.jpg", etag="bb"))) != same  # new content
    assert event_id(s3_message(s3_record("uploads", "k.jpg", etag="aa", version_id="v2"))) != same
    assert event_id(s3_message(s3_record("uploads", "k2.jpg", etag="aa"))) != same
    longest = event_id(s3_message(s3_record("uploads", "x/" + "é" * 500, etag="aa", version_id="v" * 1024)))
    assert EVENT_ID.match(same) and EVENT_ID.match(longest)


@pytest.mark.parametrize(
    "raw",
    [
        s3_message(s3_record("uploads", "k.jpg", event_name="ObjectRemoved:Delete")),
        s3_message(s3_record("uploads", "k.jpg", event_name="ObjectRemoved:DeleteMarkerCreated", etag=None)),
        minio_message("uploads", "k.jpg", event_name="s3:ObjectRemoved:Delete", etag=None)[1],
        minio_message("uploads", "k.jpg", event_name="s3:ObjectAccessed:Get")[1],
        json.dumps(
            {
                "Service": "Amazon S3",
                "Event": "s3:TestEvent",
                "Time": "2026-11-28T04:00:00.000Z",
                "Bucket": "uploads",
                "RequestId": "5582815E1AEA5ADF",
                "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE",
            }
        ).encode(),
    ],
    ids=["s3-delete", "s3-delete-marker", "minio-delete", "minio-get", "s3-test-event"],
)
def test_notifications_about_anything_but_a_new_object_are_ignored(raw: bytes) -> None:
    ignored = one(raw)
    assert isinstance(ignored, Ignored) and ignored.detail


@pytest.mark.parametrize(
    ("raw", "reason", "detail"),
    [
        (b"{not json", DeadLetterReason.NOT_JSON, "payload is not JSON"),
        (b"[1, 2]", DeadLetterReason.SCHEMA_MISMATCH, "not a bucket notification"),
        (b'{"Records": []}', DeadLetterReason.SCHEMA_MISMATCH, "not a bucket notification"),
        (b'{"event_type": "image.uploaded"}', DeadLetterReason.SCHEMA_MISMATCH, "not a bucket notification"),
        (b'{"Records": [{"eventName": "ObjectCreated:Put"}]}', DeadLetterReason.SCHEMA_MISMATCH, "Records.0.s3"),
        (s3_message(s3_record("uploads", "../etc/passwd")), DeadLetterReason.SCHEMA_MISMATCH, "'..' segments"),
        (s3_message(s3_record("uploads", "k.jpg", etag=None)), DeadLetterReason.SCHEMA_MISMATCH, "neither versionId"),
        (s3_message(s3_record("Bad_Bucket", "k.jpg")), DeadLetterReason.UNKNOWN_TENANT, "NOTIFICATION_TENANTS"),
    ],
    ids=["not-json", "list", "no-records", "an-upload-event", "no-s3", "dot-dot-key", "no-version", "no-tenant"],
)
def test_malformed_notifications_get_a_reason(raw: bytes, reason: DeadLetterReason, detail: str) -> None:
    refused = one(raw)
    assert isinstance(refused, Malformed) and refused.reason is reason, refused
    assert detail in refused.detail


def test_one_bad_entry_leaves_the_others_alone() -> None:
    record = s3_record("uploads", "ok.jpg")
    broken = s3_record("uploads", "broken.jpg")
    del broken["s3"]["object"]["key"]
    outcomes = parse_notification(s3_message(record, broken, record | {"eventName": "ObjectRemoved:Delete"}), TENANCY)
    assert [type(o) for o in outcomes] == [ImageUploaded, Malformed, Ignored]
    assert isinstance(outcomes[1], Malformed) and outcomes[1].detail == "Records.1.s3.object.key: Field required"


@pytest.mark.parametrize(
    ("tenancy", "bucket", "key", "tenant"),
    [
        (Tenancy({"uploads": "acme"}, from_key=True), "uploads", "other/a.jpg", "acme"),  # the bucket's wins
        (Tenancy(from_key=True), "uploads", "globex/2026/a.jpg", "globex"),
        (Tenancy({"photos": "acme"}, from_key=True), "uploads", "initech/a.jpg", "initech"),
    ],
)
def test_tenant_from_the_bucket_map_then_the_key(tenancy: Tenancy, bucket: str, key: str, tenant: str) -> None:
    event = one(s3_message(s3_record(bucket, key)), tenancy)
    assert isinstance(event, ImageUploaded) and event.tenant == tenant and event.key == key


@pytest.mark.parametrize(
    ("tenancy", "key", "reason", "detail"),
    [
        (Tenancy(), "acme/a.jpg", DeadLetterReason.UNKNOWN_TENANT, "NOTIFICATION_TENANT_FROM_KEY is off"),
        (Tenancy(from_key=True), "a.jpg", DeadLetterReason.UNKNOWN_TENANT, "no first segment"),
        (Tenancy(from_key=True), "Not A Tenant/a.jpg", DeadLetterReason.SCHEMA_MISMATCH, "Records.0.tenant"),
    ],
)
def test_no_tenant_no_event(tenancy: Tenancy, key: str, reason: DeadLetterReason, detail: str) -> None:
    refused = one(s3_message(s3_record("uploads", key)), tenancy)
    assert isinstance(refused, Malformed) and refused.reason is reason and detail in refused.detail, refused
    assert refused.event_id and EVENT_ID.match(refused.event_id)


def test_admission_applies_to_each_entry() -> None:
    admission = Admission(max_event_bytes=64 * 1024, buckets={"uploads"}, tenants={"acme"})
    tenancy = Tenancy({"uploads": "acme", "elsewhere": "acme"}, from_key=True)
    raw = s3_message(
        s3_record("uploads", "a.jpg"),
        s3_record("elsewhere", "b.jpg"),
        s3_record("uploads", "c.jpg", event_name="ObjectRemoved:Delete"),
    )
    allowed, other_bucket, removed = admit_notification(raw, admission, tenancy)
    assert isinstance(allowed, ImageUploaded)
    assert isinstance(other_bucket, Malformed) and other_bucket.reason is DeadLetterReason.BUCKET_NOT_ALLOWED
    assert isinstance(removed, Ignored)
    stranger = s3_message(s3_record("uploads", "a.jpg"))
    (refused,) = admit_notification(stranger, admission, Tenancy({"uploads": "stranger"}))
    assert isinstance(refused, Malformed) and refused.reason is DeadLetterReason.UNKNOWN_TENANT
    huge = s3_message(*[s3_record("uploads", f"{i}.jpg") for i in range(200)])
    (too_large,) = admit_notification(huge, admission, tenancy)
    assert isinstance(too_large, Malformed) and too_large.reason is DeadLetterReason.EVENT_TOO_LARGE
