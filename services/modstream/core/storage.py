"""Object storage over the S3 protocol (MinIO, SeaweedFS, nanio, AWS S3).

The minio client is synchronous; calls run in worker threads so the event loop stays free.
"""

import asyncio
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import urllib3
from minio import Minio
from minio.error import S3Error

from modstream.core.settings import Settings

MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchObject"}
DENIED_CODES = {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"}


class ObjectMissing(Exception):
    """The object (or its bucket) does not exist."""


class ObjectTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"object is {size} bytes, over the limit of {limit} bytes")
        self.size = size


class StorageUnavailable(Exception):
    """The object store did not answer; worth retrying."""


class StorageDenied(StorageUnavailable):
    """The object store refused our credentials: retried while running (someone may be
    fixing them), but a reason to refuse to start."""


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    size: int


class ObjectStore:
    def __init__(self, settings: Settings, pool_size: int = 32) -> None:
        self._client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key.get_secret_value(),
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region=settings.s3_region,
            http_client=urllib3.PoolManager(
                maxsize=pool_size,
                cert_reqs="CERT_REQUIRED" if settings.s3_secure else "CERT_NONE",
                ca_certs=str(settings.s3_ca_file) if settings.s3_ca_file else None,
                timeout=urllib3.Timeout(connect=5, read=30),
                retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
            ),
        )

    def check_bucket(self, bucket: str) -> None:
        """Raise unless the bucket exists and our credentials may use it."""
        with _storage_errors(bucket, ""):
            if not self._client.bucket_exists(bucket):
                raise ObjectMissing(f"s3://{bucket}: the bucket does not exist")

    def ensure_bucket(self, bucket: str) -> None:
        with _storage_errors(bucket, ""):
            if not self._client.bucket_exists(bucket):
                self._client.make_bucket(bucket)

    def put(self, bucket: str, key: str, data: bytes, content_type: str) -> StoredObject:
        with _storage_errors(bucket, key):
            self._client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        return StoredObject(bucket, key, len(data))

    def delete(self, bucket: str, key: str) -> None:
        with _storage_errors(bucket, key):
            self._client.remove_object(bucket, key)

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """The keys under ``prefix``, at any depth."""
        with _storage_errors(bucket, prefix):
            return [o.object_name or "" for o in self._client.list_objects(bucket, prefix=prefix, recursive=True)]

    def versions(self, bucket: str, key: str) -> list[str | None]:
        """The version ids the store holds of ``key`` (one, None, on a bucket without versioning);
        empty when there is no such object. Delete markers count: they name the key too."""
        with _storage_errors(bucket, key):
            listed = self._listed_versions(bucket, key, recursive=False)
            if listed is not None:
                return [version for name, version in listed if name == key]
            # A store without versioning at all: the object, if it is there.
            try:
                self._client.stat_object(bucket, key)
            except S3Error as exc:
                if exc.code in MISSING_CODES:
                    return []
                raise
            return [None]

    def erase(self, bucket: str, key: str) -> int:
        """Remove ``key`` and every version of it (a plain delete on a versioned bucket only hides
        it behind a marker); how many versions were removed."""
        held = self.versions(bucket, key)
        with _storage_errors(bucket, key):
            for version in held:
                self._client.remove_object(bucket, key, version_id=version)
        return len(held)

    def erase_under(self, bucket: str, prefix: str) -> int:
        """Remove every object under ``prefix``, at any depth, and every version of each (delete
        markers too, as ``erase``); how many versions were removed (0 when there is no bucket)."""
        try:
            with _storage_errors(bucket, prefix):
                held = self._listed_versions(bucket, prefix, recursive=True)
                if held is None:  # a store without versioning at all: the objects there are
                    held = [(name, None) for name in self.keys(bucket, prefix)]
                for name, version in held:
                    self._client.remove_object(bucket, name, version_id=version)
        except ObjectMissing:
            return 0  # no bucket: nothing was ever kept there
        return len(held)

    def _listed_versions(self, bucket: str, prefix: str, recursive: bool) -> list[tuple[str, str | None]] | None:
        """(key, version id) of every version under ``prefix``; None from a store that cannot list
        versions (it keeps none)."""
        try:
            listed = self._client.list_objects(bucket, prefix=prefix, recursive=recursive, include_version=True)
            return [(o.object_name or "", o.version_id) for o in listed]
        except S3Error as exc:
            if exc.code != "NotImplemented":
                raise
            return None

    def get(self, bucket: str, key: str, max_bytes: int) -> bytes:
        """The object's bytes; refused from the response headers if it is over ``max_bytes``."""
        with _storage_errors(bucket, key):
            response = self._client.get_object(bucket, key)
            try:
                size = int(response.headers.get("Content-Length", "0"))
                if size > max_bytes:
                    raise ObjectTooLarge(size, max_bytes)
                return response.read()
            finally:
                response.close()
                response.release_conn()

    async def answers(self, bucket: str) -> bool:
        """Whether the store serves requests for ``bucket`` at all: tells an outage from one
        object it cannot serve."""
        try:
            await asyncio.to_thread(self.check_bucket, bucket)
        except (StorageUnavailable, ObjectMissing):
            return False
        return True

    async def aget(self, bucket: str, key: str, max_bytes: int) -> bytes:
        return await asyncio.to_thread(self.get, bucket, key, max_bytes)

    async def aput(self, bucket: str, key: str, data: bytes, content_type: str) -> StoredObject:
        return await asyncio.to_thread(self.put, bucket, key, data, content_type)


@contextmanager
def _storage_errors(bucket: str, key: str) -> Iterator[None]:
    """Turns client exceptions into the three outcomes callers act on."""
    # Keys may be 1,024 bytes long; the message must still show the store's own words.
    where = f"s3://{bucket}/{key if len(key) <= 120 else key[:80] + '…' + key[-20:]}"
    try:
        yield
    except S3Error as exc:
        if exc.code in MISSING_CODES:
            raise ObjectMissing(f"{where}: {exc.code}") from exc
        if exc.code in DENIED_CODES:
            raise StorageDenied(f"{where}: {exc.code}: {exc.message}") from exc
        raise StorageUnavailable(f"{where}: {exc.code}: {exc.message}") from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise StorageUnavailable(f"{where}: {type(exc).__name__}: {exc}") from exc
