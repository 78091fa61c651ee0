"""Test images made on the spot: varied good ones, and one of each kind of bad input."""

import io
import random
from pathlib import Path

from modstream.demo.samples import source_photos, variants
from PIL import Image

CACHE = Path(__file__).resolve().parents[1] / ".modstream" / "cache"


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def varied_images(count: int, seed: int = 7) -> list[tuple[str, bytes]]:
    """Real photos in every upload format, topped up with generated images of odd sizes."""
    images = [v for name, data in source_photos(CACHE).items() for v in variants(name, data)]
    rng = random.Random(seed)
    shapes = [(1, 1), (3, 500), (640, 480), (1920, 1080), (224, 224), (97, 31), (2500, 1800)]
    while len(images) < count:
        width, height = rng.choice(shapes)
        # Noise drawn small and scaled up: image-like smooth blobs, quick to encode.
        seed_size = (max(1, width // 16), max(1, height // 16))
        base = Image.effect_noise(seed_size, rng.uniform(10, 120)).convert("RGB").resize((width, height))
        fmt, mode = rng.choice(
            [("JPEG", "RGB"), ("PNG", "RGB"), ("WEBP", "RGB"), ("GIF", "P"), ("PNG", "L"), ("PNG", "RGBA")]
        )
        options = {"compress_level": 1} if fmt == "PNG" else {}
        images.append((f"generated-{len(images)}.{fmt.lower()}", encode(base.convert(mode), fmt, **options)))
    return images[:count]


def truncated_png() -> bytes:
    data = encode(Image.effect_noise((400, 300), 60).convert("RGB"), "PNG")
    return data[: len(data) // 2]


def corrupt_jpeg() -> bytes:
    data = bytearray(encode(Image.effect_noise((400, 300), 60).convert("RGB"), "JPEG"))
    data[200:2000] = bytes(random.Random(1).randrange(256) for _ in range(1800))
    return bytes(data[:1800]) + bytes(200)  # JPEG header, garbage scan data, no end marker


def corrupt_webp() -> bytes:
    """A lossless WebP with garbage where its bitstream starts: the header reads, decoding fails.

    (Lossy VP8 decodes most garbage into some picture, and a WebP cut short fails already at
    its header, so neither is a corrupt-but-recognised file.)"""
    data = bytearray(encode(Image.effect_noise((400, 300), 60).convert("RGB"), "WEBP", lossless=True))
    data[30:2030] = bytes(random.Random(1).randrange(256) for _ in range(2000))
    return bytes(data)


def corrupt_gif() -> bytes:
    """A GIF cut off in the middle of its pixel data."""
    data = encode(Image.effect_noise((400, 300), 60).convert("P"), "GIF")
    return data[: len(data) // 2]


def text_named_jpg() -> bytes:
    return b"Plain text in a file called photo.jpg: no image header anywhere.\n"


def decompression_bomb(side: int = 30_000) -> bytes:
    """A real PNG of side x side 1-bit pixels: tiny on disk, huge once decoded."""
    return encode(Image.new("1", (side, side)), "PNG", optimize=True)


def html_named_jpg() -> bytes:
    return b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def over_size(limit: int) -> bytes:
    """A valid JPEG padded past ``limit`` bytes (trailing data after the end marker)."""
    return encode(Image.new("RGB", (64, 64), "white"), "JPEG") + bytes(limit + 1)


def png_with_bad_crc() -> bytes:
    """A 1x1 PNG whose IDAT checksum is wrong: once enough to crash torchvision's decoder."""
    data = bytearray(encode(Image.new("RGB", (1, 1), "white"), "PNG"))
    idat = data.index(b"IDAT")
    length = int.from_bytes(data[idat - 4 : idat], "big")
    data[idat + 4 + length] ^= 0xFF  # first byte of the chunk's CRC
    return bytes(data)


def encode_noise_png(width: int = 96, height: int = 64) -> bytes:
    return encode(Image.effect_noise((width, height), 50).convert("RGB"), "PNG")


def svg_named_jpg() -> bytes:
    return (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
        b'<rect width="64" height="64" fill="red"/></svg>'
    )


def exif_rotated_jpeg(upright: Image.Image) -> bytes:
    """``upright`` stored turned on its side, with EXIF orientation 6 saying how to turn it back."""
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a phone camera writes
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def photos() -> list[Image.Image]:
    return [Image.open(io.BytesIO(data)).convert("RGB") for data in source_photos(CACHE).values()]
