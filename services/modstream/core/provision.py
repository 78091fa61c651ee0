"""What the servers must hold before the worker and the dashboard run: the topics and the
uploads bucket, created where missing, or checked before a start."""

import asyncio

from modstream.core.settings import Settings
from modstream.core.storage import ObjectMissing, ObjectStore, StorageDenied
from modstream.core.topics import ensure_topics


class StorageMisconfigured(Exception):
    """The object store cannot be used as configured: a reason to refuse to start."""


def provision(settings: Settings) -> None:
    """Create the topics and the buckets (uploads, archive) that do not exist yet; what exists
    is left as it is."""
    asyncio.run(ensure_topics(settings))
    store = ObjectStore(settings)
    for bucket in (settings.uploads_bucket, settings.archive_bucket):
        store.ensure_bucket(bucket)


def check_uploads_bucket(settings: Settings) -> None:
    """Raise ``StorageMisconfigured`` on a configuration mistake (credentials refused, no
    bucket); ``StorageUnavailable`` when the store does not answer, which is worth waiting for."""
    try:
        ObjectStore(settings, pool_size=1).check_bucket(settings.uploads_bucket)
    except StorageDenied as exc:
        raise StorageMisconfigured(
            f"the object store at {settings.s3_endpoint} refused the credentials "
            f"(MODSTREAM_S3_ACCESS_KEY / MODSTREAM_S3_SECRET_KEY): {exc}"
        ) from exc
    except ObjectMissing as exc:
        raise StorageMisconfigured(f"{exc}: create it, or set MODSTREAM_UPLOADS_BUCKET") from exc
