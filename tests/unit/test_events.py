import json
from pathlib import Path

import pytest
from modstream.core.events import DeadLetterReason, ImageUploaded, ModerationDecision, Outcome
from modstream.core.schemas import RECORDS, SCHEMA_DIR, render, stale_schemas
from modstream.worker.intake import Admission, Malformed, admit, parse_upload
from pydantic import ValidationError


def upload(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = json.loads(ImageUploaded.new(tenant="acme", bucket="uploads", key="a/b.jpg").to_bytes())
    event.update(overrides)
    return event


def without(field: str) -> bytes:
    return json.dumps({k: v for k, v in upload().items() if k != field}).encode()


def test_new_upload_round_trips() -> None:
    event = ImageUploaded.new(tenant="acme", bucket="uploads", key="x/1.png", metadata={"filename": "1.png"})
    parsed = parse_upload(event.to_bytes())
    assert parsed == event
    assert event.event_id and event.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", DeadLetterReason.NOT_JSON),
        (b"\xff\xfe\x00", DeadLetterReason.NOT_JSON),
        (b"", DeadLetterReason.NOT_JSON),
        (None, DeadLetterReason.NOT_JSON),
        (b"[1, 2]", DeadLetterReason.SCHEMA_MISMATCH),
        (b'"text"', DeadLetterReason.SCHEMA_MISMATCH),
        (json.dumps(upload(tenant="Not A Tenant")).encode(), DeadLetterReason.SCHEMA_MISMATCH),
        (json.dumps(upload(schema_version=2)).encode(), DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION),
        (without("event_id"), DeadLetterReason.SCHEMA_MISMATCH),
        (without("occurred_at"), DeadLetterReason.SCHEMA_MISMATCH),
    ],
)
def test_malformed_events_get_a_reason(raw: bytes | None, reason: DeadLetterReason) -> None:
    parsed = parse_upload(raw)
    assert isinstance(parsed, Malformed)
    assert parsed.reason is reason
    assert parsed.detail


def test_unknown_fields_from_a_newer_producer_are_accepted_and_dropped() -> None:
    known = upload()
    sent = known | {"uploader_id": "u-42", "thumbnails": {"small": "a/b.small.jpg"}, "schema_hint": [1, 2]}
    parsed = parse_upload(json.dumps(sent).encode())
    assert parsed == ImageUploaded.model_validate(known)
    assert "uploader_id" not in json.loads(parsed.to_bytes())
    schema = json.loads(render("image.uploaded"))
    assert schema["additionalProperties"] is True


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"uploader_id": "u-1", "tenant": "Not A Tenant"}, DeadLetterReason.SCHEMA_MISMATCH),
        ({"uploader_id": "u-1", "size_bytes": -1}, DeadLetterReason.SCHEMA_MISMATCH),
        ({"uploader_id": "u-1", "schema_version": 2}, DeadLetterReason.UNSUPPORTED_SCHEMA_VERSION),
        ({"uploader_id": "u-1", "event_type": "image.deleted"}, DeadLetterReason.SCHEMA_MISMATCH),
    ],
)
def test_unknown_fields_never_excuse_a_bad_known_one(overrides: dict[str, object], reason: DeadLetterReason) -> None:
    parsed = parse_upload(json.dumps(upload(**overrides)).encode())
    assert isinstance(parsed, Malformed) and parsed.reason is reason, parsed


def test_unknown_field_with_a_required_one_missing_is_refused() -> None:
    sent = {k: v for k, v in upload(uploader_id="u-1").items() if k != "bucket"}
    parsed = parse_upload(json.dumps(sent).encode())
    assert isinstance(parsed, Malformed) and parsed.reason is DeadLetterReason.SCHEMA_MISMATCH
    assert parsed.detail == "bucket: Field required"


@pytest.mark.parametrize("name", [n for n in RECORDS if n != "image.uploaded"])
def test_records_modstream_writes_stay_strict(name: str) -> None:
    model, _ = RECORDS[name]
    assert model.model_config.get("extra") == "forbid"
    assert json.loads(render(name))["additionalProperties"] is False


def test_malformed_event_keeps_its_id_when_it_has_one() -> None:
    parsed = parse_upload(json.dumps(upload(event_id="evt-1", tenant="BAD")).encode())
    assert isinstance(parsed, Malformed) and parsed.event_id == "evt-1"
    assert "tenant" in parsed.detail


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", "/absolute", "a\\b", "tab\there", ""])
def test_hostile_keys_rejected(key: str) -> None:
    with pytest.raises(ValidationError):
        ImageUploaded.new(tenant="acme", bucket="uploads", key=key)


@pytest.mark.parametrize("bucket", ["UP", "a", "has_underscore", "-lead"])
def test_bad_buckets_rejected(bucket: str) -> None:
    with pytest.raises(ValidationError):
        ImageUploaded.new(tenant="acme", bucket=bucket, key="k.jpg")


def test_decision_serialises_every_field() -> None:
    event = ImageUploaded.new(tenant="acme", bucket="uploads", key="k.jpg")
    decision = ModerationDecision(
        event_id=event.event_id,
        tenant=event.tenant,
        bucket=event.bucket,
        key=event.key,
        decision=Outcome.ALLOW,
        scores={"sfw": 0.9},
        policy_id="default",
        policy_version="p1",
        uploaded_at=event.occurred_at,
        latency_ms=12.5,
    )
    data = json.loads(decision.to_bytes())
    required = json.loads(render("moderation.decision"))["required"]
    assert set(required) == set(data)
    assert ModerationDecision.model_validate(data) == decision


def test_checked_in_schemas_match_models() -> None:
    assert stale_schemas() == [], "run `modstream schemas` and commit schemas/"
    assert sorted(p.name for p in SCHEMA_DIR.glob("*.schema.json")) == sorted(f"{n}.schema.json" for n in RECORDS)


def test_schema_drift_is_detected(tmp_path: Path) -> None:
    directory = tmp_path
    for name in RECORDS:
        (directory / f"{name}.schema.json").write_text(render(name))
    assert stale_schemas(directory) == []
    edited = json.loads(render("moderation.decision"))
    edited["properties"].pop("latency_ms")
    (directory / "moderation.decision.schema.json").write_text(json.dumps(edited))
    assert stale_schemas(directory) == ["moderation.decision"]


ADMISSION = Admission(max_event_bytes=4096, buckets={"uploads"}, tenants={"acme"})


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (json.dumps(upload(metadata={"x": "y" * 5000})).encode(), DeadLetterReason.EVENT_TOO_LARGE),
        (json.dumps(upload(bucket="elsewhere")).encode(), DeadLetterReason.BUCKET_NOT_ALLOWED),
        (json.dumps(upload(tenant="stranger")).encode(), DeadLetterReason.UNKNOWN_TENANT),
        (json.dumps(upload(key="../etc/passwd")).encode(), DeadLetterReason.SCHEMA_MISMATCH),
        (b"{not json", DeadLetterReason.NOT_JSON),
    ],
    ids=["2mb-like", "bucket", "tenant", "dot-dot-key", "not-json"],
)
def test_admission_refuses_with_a_reason(raw: bytes, reason: DeadLetterReason) -> None:
    refused = admit(raw, ADMISSION)
    assert isinstance(refused, Malformed) and refused.reason is reason, refused
    assert refused.detail


def test_admission_accepts_what_is_allowed_and_any_tenant_when_none_are_listed() -> None:
    assert isinstance(admit(json.dumps(upload()).encode(), ADMISSION), ImageUploaded)
    open_tenants = Admission(max_event_bytes=4096, buckets={"uploads"})
    assert isinstance(admit(json.dumps(upload(tenant="stranger")).encode(), open_tenants), ImageUploaded)
