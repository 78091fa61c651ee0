"""Raw Kafka payload -> a valid upload event, or the reason it can never be one."""

import json
from collections.abc import Collection
from dataclasses import dataclass

from pydantic import ValidationError

from modstream.core.events import SCHEMA_VERSION, DeadLetterReason, ImageUploaded


@dataclass(frozen=True)
class Malformed:
    reason: DeadLetterReason
    detail: str
    event_id: str | None = None


@dataclass(frozen=True)
class Admission:
    """What the worker accepts beyond the schema: checked before any storage call."""

    max_event_bytes: int
    buckets: Collection[str]
    tenants: Collection[str] | None = None  # None: any tenant (unknown ones get the default policy)


def admit(raw: bytes | None, admission: Admission) -> ImageUploaded | Malformed:
    return oversized(raw, admission) or allowed(parse_upload(raw), admission)


def oversized(raw: bytes | None, admission: Admission) -> Malformed | None:
    if raw is not None and len(raw) > admission.max_event_bytes:
        return Malformed(
            DeadLetterReason.EVENT_TOO_LARGE, f"event is {len(raw)} bytes; the limit is {admission.max_event_bytes}"
        )
    return None


def allowed(event: ImageUploaded | Malformed, admission: Admission) -> ImageUploaded | Malformed:
    """The event, unless its bucket or tenant is not one this worker serves."""
    if isinstance(event, Malformed):
        return event
    if event.bucket not in admission.buckets:
        served = ", ".join(sorted(admission.buckets))
        return Malformed(
            DeadLetterReason.BUCKET_NOT_ALLOWED, f"bucket {event.bucket!r} is not one of: {served}", event.event_id
        )
    if admission.tenants is not None and event.tenant not in admission.tenants:
        return Malformed(DeadLetterReason.UNKNOWN_TENANT, f"tenant {event.tenant!r} is not configured", event.event_id)
    return event


def parse_upload(raw: bytes | None) -> ImageUploaded | Malformed:
    try:
        data = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        return Malformed(DeadLetterReason.NOT_JSON, f"payload is not JSON: {exc}")
    if not isinstance(data, dict):
        return Malformed(DeadLetterReason.SCHEMA_MISMATCH, f"payload is a JSON {type(data).__name__}, not an object")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    version = data.get("schema_version")
    if version is not None and version != SCHEMA_VERSION:
        return Malformed(
            DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION,
            f"schema_version {version!r}; this worker reads {SCHEMA_VERSION}",
            event_id,
        )
    try:
        return ImageUploaded.model_validate(data)
    except ValidationError as exc:
        return Malformed(DeadLetterReason.SCHEMA_MISMATCH, problems(exc), event_id)


def problems(exc: ValidationError, within: str = "") -> str:
    """Each validation error as ``where: what``, ``where`` prefixed with ``within``."""
    located = []
    for error in exc.errors():
        where = ".".join(filter(None, [within, *map(str, error["loc"])])) or "(root)"
        located.append(f"{where}: {error['msg']}")
    return "; ".join(located)
