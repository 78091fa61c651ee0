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


# --- formats beyond JPEG, PNG, WebP and GIF (tests/e2e/test_formats.py) ---------------


def heif(image: Image.Image, grid_tile: int = 0, **options: object) -> bytes:
    """HEIF (HEVC) written by pillow-heif; ``grid_tile`` > 0 splits it into tiles as iPhones do."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    before = pillow_heif.options.GRID_TILE_SIZE
    pillow_heif.options.GRID_TILE_SIZE = grid_tile
    try:
        return encode(image, "HEIF", **options)
    finally:
        pillow_heif.options.GRID_TILE_SIZE = before


def with_major_brand(data: bytes, brand: bytes) -> bytes:
    """A HEIF/AVIF file whose ftyp box names another major brand (e.g. the generic mif1)."""
    assert data[4:8] == b"ftyp" and len(brand) == 4
    return data[:8] + brand + data[12:]


def claiming_item_size(data: bytes, width: int, height: int) -> bytes:
    """A HEIF/AVIF file whose image items' ``ispe`` properties claim ``width`` x ``height``."""
    patched = bytearray(data)
    at = patched.find(b"ispe")
    while at >= 0:
        if patched[at - 4 : at] == (20).to_bytes(4, "big"):  # an ispe box is 20 bytes long
            patched[at + 8 : at + 16] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
        at = patched.find(b"ispe", at + 4)
    assert patched != data, "no ispe box"
    return bytes(patched)


def raw_tiff(
    width: int,
    height: int,
    samples: bytes,
    *,
    channels: int = 1,
    bits: int = 8,
    sample_format: int = 1,
    photometric: int = 1,
) -> bytes:
    """A little-endian TIFF with one uncompressed strip, every tag written here: for sample
    layouts Pillow cannot write (16-bit RGB, float RGB), and for headers that lie about size.
    ``sample_format``: 1 unsigned, 2 signed, 3 float; ``photometric``: 1 grey, 2 RGB."""
    tags: list[tuple[int, int, list[int]]] = [  # (tag, type 3 SHORT / 4 LONG, values)
        (256, 4, [width]),
        (257, 4, [height]),
        (258, 3, [bits] * channels),
        (259, 3, [1]),
        (262, 3, [photometric]),
        (273, 4, [0]),  # StripOffsets: filled in below
        (277, 3, [channels]),
        (278, 4, [height]),
        (279, 4, [len(samples)]),
        (284, 3, [1]),
        (339, 3, [sample_format] * channels),
    ]
    ifd_at = 8
    values_at = ifd_at + 2 + 12 * len(tags) + 4
    values = bytearray()
    entries = bytearray(len(tags).to_bytes(2, "little"))
    packed = [
        (tag, kind, b"".join(v.to_bytes(2 if kind == 3 else 4, "little") for v in vals), len(vals))
        for tag, kind, vals in tags
    ]
    pixels_at = values_at + sum(len(raw) + len(raw) % 2 for _, _, raw, _ in packed if len(raw) > 4)
    for tag, kind, raw, count in packed:
        if tag == 273:
            raw = pixels_at.to_bytes(4, "little")
        if len(raw) > 4:
            field = (values_at + len(values)).to_bytes(4, "little")
            values += raw + bytes(len(raw) % 2)
        else:
            field = raw.ljust(4, b"\0")
        entries += tag.to_bytes(2, "little") + kind.to_bytes(2, "little") + count.to_bytes(4, "little") + field
    entries += bytes(4)  # no next IFD
    return b"II*\0" + ifd_at.to_bytes(4, "little") + bytes(entries) + bytes(values) + samples


def tiff_claiming(width: int, height: int) -> bytes:
    """A TIFF whose header declares ``width`` x ``height`` grey pixels over a 64-byte strip."""
    return raw_tiff(width, height, bytes(64))


def multipage_tiff(pages: list[Image.Image], **options: object) -> bytes:
    return encode(pages[0], "TIFF", save_all=True, append_images=pages[1:], **options)


def cmyk_with_black(rgb: Image.Image) -> Image.Image:
    """``rgb`` separated into CMYK the way print files are, black ink for the shared darkness:
    K = 1 - max(R, G, B), C = (1 - R - K) / (1 - K), ... (the inverse of the usual CMYK -> RGB)."""
    import numpy as np

    unit = np.asarray(rgb.convert("RGB"), dtype=np.float64) / 255.0
    black = 1.0 - unit.max(axis=2, keepdims=True)
    inks = (1.0 - unit - black) / np.maximum(1.0 - black, 1e-9)
    cmyk = np.concatenate([inks, black], axis=2)
    return Image.fromarray((cmyk * 255.0).round().astype("uint8"), "CMYK")


def ico_holding(image_data: bytes, directory_size: int = 256) -> bytes:
    """An ICO with one directory entry saying ``directory_size`` square, holding ``image_data``
    (a PNG or a BMP without its file header) as the image."""
    side = directory_size % 256  # 0 means 256
    entry = bytes([side, side, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little")
    entry += len(image_data).to_bytes(4, "little") + (6 + 16).to_bytes(4, "little")
    return b"\0\0\1\0" + (1).to_bytes(2, "little") + entry + image_data


def ico_of_three_sizes(picture: Image.Image) -> bytes:
    """An ICO of 16x16 (all blue), 64x64 (``picture``) and 32x32 (all red): the largest is the picture."""
    return encode(
        picture.convert("RGBA").resize((64, 64)),
        "ICO",
        sizes=[(16, 16), (64, 64), (32, 32)],
        append_images=[Image.new("RGBA", (16, 16), "blue"), Image.new("RGBA", (32, 32), "red")],
    )


def png_text_bomb(inflated: int = 64 * 1024 * 1024, chunk: bytes = b"zTXt", before_pixels: bool = True) -> bytes:
    """A small PNG with one compressed text chunk (zTXt, or iTXt flagged compressed) that
    inflates to ``inflated`` bytes: about 1,000 times its size on disk."""
    import struct
    import zlib

    compressed = zlib.compress(bytes(inflated), 9)
    body = b"Comment\0\0" + compressed if chunk == b"zTXt" else b"Comment\0\1\0\0\0" + compressed
    text = struct.pack(">I", len(body)) + chunk + body + struct.pack(">I", zlib.crc32(chunk + body))
    png = encode(Image.effect_noise((64, 48), 40).convert("RGB"), "PNG")
    at = png.index(b"IDAT") - 4 if before_pixels else png.index(b"IEND") - 4
    return png[:at] + text + png[at:]


def psd(image: Image.Image) -> bytes:
    """An 8-bit RGB Photoshop file (no layers, raw planes), which Pillow reads but cannot write."""
    rgb = image.convert("RGB")
    header = b"8BPS" + (1).to_bytes(2, "big") + bytes(6) + (3).to_bytes(2, "big")
    header += rgb.height.to_bytes(4, "big") + rgb.width.to_bytes(4, "big") + (8).to_bytes(2, "big")
    header += (3).to_bytes(2, "big")  # colour mode RGB
    sections = bytes(4) * 3  # no colour mode data, no resources, no layers
    planes = b"".join(band.tobytes() for band in rgb.split())
    return header + sections + (0).to_bytes(2, "big") + planes


def mpo(pictures: list[Image.Image]) -> bytes:
    """A JPEG with more pictures after the first (an MP extension), as phones write them."""
    return encode(pictures[0], "MPO", save_all=True, append_images=pictures[1:], quality=95)
