"""Bucket notifications -> upload events: MinIO's Kafka target and Amazon S3 event notifications.

MinIO's Kafka target publishes ``{"EventName": "s3:ObjectCreated:Put", "Key": "bucket/key",
"Records": [record]}``; Amazon S3 publishes ``{"Records": [record, ...]}``. A record is an S3
event record: ``eventName`` (``s3:ObjectCreated:Put`` from MinIO, ``ObjectCreated:Put`` from
S3), ``eventTime``, ``s3.bucket.name`` and ``s3.object`` with ``key`` (URL-encoded, ``+`` for a
space), ``size``, ``eTag``, ``versionId``. Each object-created entry becomes the same
``ImageUploaded`` the uploads topic carries and passes the same admission. Entries about
anything else (removals, reads, S3's test message) are ignored, not dead-lettered: a bucket
set up for every event type would otherwise fill the dead-letter topic with no mistakes.

Pure, like ``intake`` beside it: the worker is the only reader of this topic, and the result
is the worker's own intake outcome (an event, or a ``Malformed`` with its dead-letter reason).
"""

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote_plus

from pydantic import BaseModel, Field, ValidationError

from modstream.core.events import SCHEMA_VERSION, DeadLetterReason, ImageUploaded
from modstream.worker.intake import Admission, Malformed, allowed, oversized, problems


class _Bucket(BaseModel):
    name: str


class _Object(BaseModel):
    key: str = Field(min_length=1)
    size: int | None = Field(default=None, ge=0)
    etag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")
    content_type: str | None = Field(default=None, alias="contentType")  # MinIO only


class _Entity(BaseModel):
    bucket: _Bucket
    stored: _Object = Field(alias="object")


class S3EventRecord(BaseModel):
    """One entry of ``Records``, with only what the worker uses: the format grows, the rest is ignored."""

    event_name: str = Field(alias="eventName")
    event_time: datetime = Field(alias="eventTime")
    s3: _Entity


@dataclass(frozen=True)
class Ignored:
    """A notification about anything but a new object: nothing to moderate."""

    detail: str


@dataclass(frozen=True)
class Tenancy:
    """Whose object a notification names: its records carry no tenant."""

    by_bucket: Mapping[str, str] = field(default_factory=dict)
    from_key: bool = False  # for buckets not listed: the key's first segment ("acme/2026/a.jpg")

    def tenant_for(self, bucket: str, key: str) -> str | None:
        if bucket in self.by_bucket:
            return self.by_bucket[bucket]
        if self.from_key and "/" in key:
            return key.split("/", 1)[0]
        return None


def admit_notification(
    raw: bytes | None, admission: Admission, tenancy: Tenancy
) -> list[ImageUploaded | Malformed | Ignored]:
    """One outcome per entry, each event through the same admission as an upload event."""
    refused = oversized(raw, admission)
    if refused is not None:
        return [refused]
    return [e if isinstance(e, Ignored) else allowed(e, admission) for e in parse_notification(raw, tenancy)]


def parse_notification(raw: bytes | None, tenancy: Tenancy) -> list[ImageUploaded | Malformed | Ignored]:
    try:
        data = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        return [Malformed(DeadLetterReason.NOT_JSON, f"payload is not JSON: {exc}")]
    if isinstance(data, dict) and data.get("Event") == "s3:TestEvent":
        return [Ignored("Amazon S3's test message, sent when a notification is configured")]
    records = data.get("Records") if isinstance(data, dict) else None
    if not isinstance(records, list) or not records:
        return [
            Malformed(DeadLetterReason.SCHEMA_MISMATCH, "not a bucket notification: no JSON object with a Records list")
        ]
    return [_entry(f"Records.{i}", record, tenancy) for i, record in enumerate(records)]


def object_event_id(bucket: str, key: str, version_id: str | None, etag: str | None) -> str:
    """The same id for every notification of one object version (a redelivery, a retry, MinIO
    and S3 alike), a new one for new content under the same key. Hashed: keys are longer and
    freer than an event id."""
    digest = hashlib.sha256("\0".join((bucket, key, version_id or "", etag or "")).encode()).hexdigest()
    return f"s3-{digest}"


def _entry(where: str, data: object, tenancy: Tenancy) -> ImageUploaded | Malformed | Ignored:
    try:
        record = S3EventRecord.model_validate(data)
    except ValidationError as exc:
        return Malformed(DeadLetterReason.SCHEMA_MISMATCH, problems(exc, within=where))
    bucket, stored = record.s3.bucket.name, record.s3.stored
    key = unquote_plus(stored.key)
    if not record.event_name.removeprefix("s3:").startswith("ObjectCreated:"):
        return Ignored(f"{where}: {record.event_name} for s3://{bucket}/{key}; only new objects are moderated")
    # S3 sends "null" (or nothing) for a bucket without versioning; quotes around an eTag vary by server.
    version_id = stored.version_id if stored.version_id not in (None, "", "null") else None
    etag = (stored.etag or "").strip('"') or None
    if version_id is None and etag is None:
        return Malformed(
            DeadLetterReason.SCHEMA_MISMATCH,
            f"{where}: s3.object has neither versionId nor eTag, so this version of it cannot be told apart",
        )
    event_id = object_event_id(bucket, key, version_id, etag)
    tenant = tenancy.tenant_for(bucket, key)
    if tenant is None:
        rule = "its key has no first segment" if tenancy.from_key else "MODSTREAM_NOTIFICATION_TENANT_FROM_KEY is off"
        return Malformed(
            DeadLetterReason.UNKNOWN_TENANT,
            f"{where}: bucket {bucket!r} is not in MODSTREAM_NOTIFICATION_TENANTS and {rule}",
            event_id,
        )
    found = {"notification": record.event_name, "etag": etag, "version_id": version_id}
    try:
        return ImageUploaded(
            event_type="image.uploaded",
            schema_version=SCHEMA_VERSION,
            event_id=event_id,
            occurred_at=record.event_time,
            tenant=tenant,
            bucket=bucket,
            key=key,
            content_type=stored.content_type,
            size_bytes=stored.size,
            metadata={name: value for name, value in found.items() if value is not None},
        )
    except ValidationError as exc:
        return Malformed(DeadLetterReason.SCHEMA_MISMATCH, problems(exc, within=where), event_id)
