"""The Python SDK for platform backends: store an image and announce it.

    async with UploadClient(settings) as client:
        event = await client.upload_image(data, tenant="acme")

``upload_image`` puts the bytes in the uploads bucket and publishes one
``image.uploaded`` event; ``publish_upload_event`` only announces an object that is
already in the bucket. Both return the event, whose ``event_id`` names the decision
that will follow on the decisions topic.
"""

from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer

from modstream.core.events import ImageUploaded, new_id
from modstream.core.kafka import producer_options
from modstream.core.media import EXTENSIONS, sniff_content_type
from modstream.core.settings import Settings, get_settings
from modstream.core.storage import ObjectStore
from modstream.core.tracing import inject_headers, tracer


class UploadClient:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = ObjectStore(self.settings)
        self._producer = AIOKafkaProducer(**producer_options(self.settings))
        self._tracer = tracer("modstream.ingest")

    async def __aenter__(self) -> Self:
        await self._producer.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.stop()

    async def upload_image(
        self,
        data: bytes,
        tenant: str,
        *,
        key: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        subject: str | None = None,
    ) -> ImageUploaded:
        content_type = content_type or sniff_content_type(data)
        if key is None:
            key = f"{tenant}/{datetime.now(UTC):%Y/%m/%d}/{new_id()}{EXTENSIONS.get(content_type, '')}"
        bucket = self.settings.uploads_bucket
        with self._tracer.start_as_current_span("upload"):
            # Validated before any storage call: a bad tenant or key never reaches the bucket.
            event = ImageUploaded.new(
                tenant=tenant,
                bucket=bucket,
                key=key,
                content_type=content_type,
                size_bytes=len(data),
                metadata=metadata or {},
                subject=subject,
            )
            await self.store.aput(bucket, key, data, content_type)
            await self.send(event)
        return event

    async def publish_upload_event(
        self,
        tenant: str,
        key: str,
        *,
        bucket: str | None = None,
        content_type: str | None = None,
        size_bytes: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ImageUploaded:
        event = ImageUploaded.new(
            tenant=tenant,
            bucket=bucket or self.settings.uploads_bucket,
            key=key,
            content_type=content_type,
            size_bytes=size_bytes,
            metadata=metadata or {},
        )
        with self._tracer.start_as_current_span("publish-upload"):
            await self.send(event)
        return event

    async def send(self, event: ImageUploaded) -> None:
        """Publish an already-built upload event (its object must be in the bucket)."""
        await self._producer.send_and_wait(
            self.settings.topic_uploads, event.to_bytes(), key=event.event_id.encode(), headers=inject_headers()
        )


async def upload_image(data: bytes, tenant: str, settings: Settings | None = None, **options: object) -> ImageUploaded:
    """One-off upload; a long-lived backend keeps an ``UploadClient`` open instead."""
    async with UploadClient(settings) as client:
        return await client.upload_image(data, tenant, **options)  # type: ignore[arg-type]


async def publish_upload_event(
    tenant: str, key: str, settings: Settings | None = None, **options: object
) -> ImageUploaded:
    async with UploadClient(settings) as client:
        return await client.publish_upload_event(tenant, key, **options)  # type: ignore[arg-type]
