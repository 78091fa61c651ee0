"""Bucket notifications exactly as MinIO's Kafka target and Amazon S3 publish them.

The local S3 servers send none, so tests build them here, field for field as documented:
MinIO's Kafka target wraps one record as ``{"EventName", "Key", "Records"}`` (its Kafka
message key is ``bucket/key``); S3 sends ``{"Records": [...]}`` (event message structure
2.1). Both URL-encode the object key in the record (``+`` for a space).
"""

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def s3_record(
    bucket: str,
    key: str,
    *,
    event_name: str = "ObjectCreated:Put",
    size: int = 0,
    etag: str | None = "d41d8cd98f00b204e9800998ecf8427e",
    version_id: str | None = None,
) -> dict[str, Any]:
    """One record as Amazon S3 sends it (eventVersion 2.1)."""
    stored: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "sequencer": "0055AED6DCD90281E5"}
    if etag is not None:
        stored["eTag"] = etag
    if version_id is not None:
        stored["versionId"] = version_id
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": _now(),
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "modstream-uploads",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": stored,
        },
    }


def s3_message(*records: dict[str, Any]) -> bytes:
    """An Amazon S3 event notification: one or more records."""
    return json.dumps({"Records": list(records)}).encode()


def minio_message(
    bucket: str,
    key: str,
    *,
    event_name: str = "s3:ObjectCreated:Put",
    size: int = 0,
    etag: str | None = "d41d8cd98f00b204e9800998ecf8427e",
    content_type: str = "image/jpeg",
) -> tuple[bytes, bytes]:
    """What MinIO's Kafka target publishes for one object: (Kafka message key, value)."""
    stored: dict[str, Any] = {
        "key": quote_plus(key, safe=""),  # MinIO escapes the whole name, "/" too
        "size": size,
        "contentType": content_type,
        "userMetadata": {"content-type": content_type},
        "sequencer": "17F4C0E2B5A1D3C8",
        "versionId": "1",
    }
    if etag is not None:
        stored["eTag"] = etag
    record = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": _now(),
        "eventName": event_name,
        "userIdentity": {"principalId": "modstream"},
        "requestParameters": {"principalId": "modstream", "region": "", "sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "content-length": "0",
            "x-amz-request-id": "17F4C0E2B5A1D3C8",
            "x-minio-deployment-id": "0170a4cc-dca6-4e72-86f1-c0cc760dff7f",
            "x-minio-origin-endpoint": "http://127.0.0.1:9000",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "modstream"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": stored,
        },
        "source": {"host": "127.0.0.1", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.80"},
    }
    name = f"{bucket}/{key}"
    return name.encode(), json.dumps({"EventName": event_name, "Key": name, "Records": [record]}).encode()
