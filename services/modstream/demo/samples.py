"""Sample photos for the demo and the end-to-end tests.

Real photographs (public domain or CC0, see scikit-image's data notes) taken from the
scikit-image wheel, then written in the formats platforms upload: JPEG, PNG, WebP, GIF,
grayscale, RGBA, animated GIF, in several sizes.
"""

import io
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from modstream.core.packages import fetch_wheel, read_member

SOURCE = ("scikit-image", "0.26.0")
PHOTOS = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "camera.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "brick.png",
    "coins.png",
    "horse.png",
    "logo.png",
    "no_time_for_that_tiny.gif",
]


def source_photos(cache_dir: Path) -> dict[str, bytes]:
    wheel = fetch_wheel(*SOURCE, cache_dir)
    return {name: read_member(wheel, f"skimage/data/{name}") for name in PHOTOS}


def sample_images(cache_dir: Path) -> list[bytes]:
    """Every photo in every variant: the image pool for benchmarks."""
    return [data for name, photo in source_photos(cache_dir).items() for _, data in variants(name, photo)]


def variants(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """One photo in the formats and modes uploads come in."""
    stem = Path(name).stem
    yield name, data
    with Image.open(io.BytesIO(data)) as original:
        if getattr(original, "is_animated", False):
            return
        rgb = original.convert("RGB")
    small = rgb.copy()
    small.thumbnail((160, 160))
    large = rgb.resize((rgb.width * 2, rgb.height * 2))
    for suffix, image, fmt, options in [
        ("q85.jpg", rgb, "JPEG", {"quality": 85}),
        ("small.webp", small, "WEBP", {"quality": 80}),
        ("large.jpg", large, "JPEG", {"quality": 90}),
        ("gray.png", rgb.convert("L"), "PNG", {}),
        ("rgba.png", _with_alpha(rgb), "PNG", {}),
        ("palette.gif", small.convert("P"), "GIF", {}),
    ]:
        out = io.BytesIO()
        image.save(out, fmt, **options)
        yield f"{stem}.{suffix}", out.getvalue()


def _with_alpha(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(image.size))
    return rgba


def write_samples(dest: Path, cache_dir: Path) -> dict[str, list[Path]]:
    """Write every variant of each photo to ``dest``; returns each photo's files."""
    dest.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    for name, data in source_photos(cache_dir).items():
        for variant_name, variant in variants(name, data):
            path = dest / variant_name
            if not path.exists():
                path.write_bytes(variant)
            written.setdefault(name, []).append(path)
    return written
