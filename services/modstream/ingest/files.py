"""Upload image files and folders from disk (behind ``modstream upload``)."""

import asyncio
from collections.abc import Callable, Iterable
from pathlib import Path

from modstream.core.events import ImageUploaded
from modstream.ingest.sdk import UploadClient

IMAGE_SUFFIXES = {
    *(".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".ico"),
    *(".avif", ".heic", ".heif", ".hif"),
}


def image_files(paths: Iterable[Path]) -> list[Path]:
    """Files named on the command line as they are; folders searched for image files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return found


async def upload_files(
    client: UploadClient,
    files: list[Path],
    tenant: str,
    *,
    concurrency: int = 8,
    subject: str | None = None,
    on_uploaded: Callable[[Path, ImageUploaded], None] = lambda path, event: None,
) -> list[ImageUploaded]:
    """Upload each file and publish its event; the original file name travels as metadata,
    ``subject`` (the uploader's pseudonymous id) on the event."""
    gate = asyncio.Semaphore(concurrency)

    async def one(path: Path) -> ImageUploaded:
        async with gate:
            data = await asyncio.to_thread(path.read_bytes)
            event = await client.upload_image(data, tenant, metadata={"filename": path.name}, subject=subject)
        on_uploaded(path, event)
        return event

    return list(await asyncio.gather(*(one(path) for path in files)))
