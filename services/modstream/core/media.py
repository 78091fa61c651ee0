"""What kind of image a file is, from its first bytes, and its exact hashes: it is never decoded for these."""

import hashlib

from modstream.core.events import ImageHashes

_MAGIC = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
    (b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
]
# ISO base media files (HEIF, AVIF) name their kind by the major brand of their ftyp box.
_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    **{brand: "image/heic" for brand in (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs")},
    b"mif1": "image/heif",
    b"msf1": "image/heif",
}


def sniff_content_type(data: bytes) -> str:
    """The image type from its first bytes (never decoded); octet-stream if unknown."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in _BRANDS:
        return _BRANDS[data[8:12]]
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    return "application/octet-stream"


EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
    "image/tiff": ".tif",
    "image/vnd.microsoft.icon": ".ico",
    "image/heic": ".heic",
    "image/heif": ".heif",
    "image/avif": ".avif",
}


def exact_hashes(data: bytes) -> ImageHashes:
    """The bytes' SHA-256 and MD5 (hash exchanges share both); PDQ needs the decoded image
    and comes from Triton's preprocess."""
    md5 = hashlib.md5(data, usedforsecurity=False)
    return ImageHashes(sha256=hashlib.sha256(data).hexdigest(), md5=md5.hexdigest())
