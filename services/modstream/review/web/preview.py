"""What a reviewer's browser is sent for an image: the stored bytes, or a PNG of them.

Browsers show JPEG, PNG, GIF, WebP, BMP, ICO and AVIF, but not TIFF or HEIF/HEIC, which
the pipeline scores (phones upload HEIC). Those are decoded here, the first picture as the
classifier saw it, and sent as PNG. The pixel limit is checked from the header before any
decoding, as in Triton's preprocess model: a hostile file must not take the dashboard down.
"""

import io

import pillow_heif
from PIL import Image, ImageOps

from modstream.core.media import sniff_content_type

CONVERTED = {"image/tiff", "image/heic", "image/heif"}
MAX_PIXELS = 50_000_000


class NoPreview(Exception):
    """The image cannot be shown: too many pixels, or its bytes do not decode."""


def for_browser(data: bytes) -> tuple[bytes, str]:
    """The bytes to send and their media type."""
    kind = sniff_content_type(data)
    if kind not in CONVERTED:
        return data, kind
    try:
        shown = ImageOps.exif_transpose(_first_picture(data, kind))
        if shown.mode not in ("RGB", "RGBA", "L", "LA"):
            shown = shown.convert("RGBA" if "A" in shown.getbands() else "RGB")
        out = io.BytesIO()
        shown.save(out, "PNG")
    except NoPreview:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, far above ours, said it first
        raise NoPreview(f"{kind}: {exc}") from exc
    except Exception as exc:  # any decoder failure is this one image's, never the dashboard's
        raise NoPreview(f"{kind} does not decode: {type(exc).__name__}") from exc
    return out.getvalue(), "image/png"


def _first_picture(data: bytes, kind: str) -> Image.Image:
    if kind == "image/tiff":
        image = Image.open(io.BytesIO(data))
        _check(*image.size)
        image.seek(0)
        image.load()
        return image
    # libheif straight, not as a Pillow plugin: registering one would change how every
    # other Pillow user in this process opens files. The primary image only: HEIF
    # thumbnails can show another picture than the image itself.
    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    _check(*heif.size)
    return heif.to_pillow()


def _check(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise NoPreview(f"{width}x{height} is over {MAX_PIXELS} pixels")
