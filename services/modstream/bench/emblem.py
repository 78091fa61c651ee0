"""A concept no model knows, for learning benchmarks and tests: a coloured emblem pasted onto photos.

The emblem is a red disc with a yellow five-pointed star and a blue ring. Each image is a
random crop of one of the sample photos (flipped at random, brightness varied), and an
emblem image carries the emblem at a random place, at 25-40 % of the crop's shorter side.
Deterministic for a seed, so a failure can be looked at again.
"""

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from modstream.demo.samples import PHOTOS, source_photos

# Every sample photo but the logo (a flat drawing) and the animated GIF.
BACKGROUNDS = [name for name in PHOTOS if name not in ("logo.png", "no_time_for_that_tiny.gif")]


@dataclass(frozen=True)
class Example:
    name: str
    data: bytes
    emblem: bool
    box: tuple[float, float, float, float] | None = None
    """Where the emblem is: x0, y0, x1, y1 as fractions of the image's width and height."""


def emblem(size: int) -> Image.Image:
    """The emblem, ``size`` pixels square, on a transparent background."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((0, 0, size - 1, size - 1), fill=(30, 60, 200, 255))
    ring = size // 10
    draw.ellipse((ring, ring, size - 1 - ring, size - 1 - ring), fill=(220, 20, 30, 255))
    centre, outer, inner = size / 2, size * 0.36, size * 0.15
    points = [
        (centre + r * math.sin(k * math.pi / 5), centre - r * math.cos(k * math.pi / 5))
        for k in range(10)
        for r in [outer if k % 2 == 0 else inner]
    ]
    draw.polygon(points, fill=(250, 215, 0, 255))
    return image


def examples(cache_dir: Path, count: int, seed: int, share_with_emblem: float = 0.5) -> Iterator[Example]:
    """``count`` JPEG images, the first ``share_with_emblem`` of them (rounded) with the emblem."""
    rng = np.random.default_rng(seed)
    photos = source_photos(cache_dir)
    backgrounds = {name: Image.open(io.BytesIO(photos[name])).convert("RGB") for name in BACKGROUNDS}
    with_emblem = round(count * share_with_emblem)
    for i in range(count):
        name = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        image = crop(backgrounds[name], rng)
        marked = i < with_emblem
        box = None
        if marked:
            side = int(min(image.size) * rng.uniform(0.25, 0.4))
            x = int(rng.integers(0, image.width - side))
            y = int(rng.integers(0, image.height - side))
            mark = emblem(side)
            image.paste(mark, (x, y), mark)
            box = (x / image.width, y / image.height, (x + side) / image.width, (y + side) / image.height)
        out = io.BytesIO()
        image.save(out, "JPEG", quality=int(rng.integers(80, 95)))
        yield Example(f"{'emblem' if marked else 'clean'}-{seed}-{i:03d}.jpg", out.getvalue(), marked, box)


def crop(photo: Image.Image, rng: np.random.Generator, shares: tuple[float, float] = (0.5, 0.9)) -> Image.Image:
    """A random crop of ``photo`` (each side a share in ``shares`` of the photo's), flipped at
    random, brightness varied: one of many distinct images from a few photos."""
    share = rng.uniform(*shares)
    width, height = int(photo.width * share), int(photo.height * share)
    x = int(rng.integers(0, photo.width - width + 1))
    y = int(rng.integers(0, photo.height - height + 1))
    image = photo.crop((x, y, x + width, y + height))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    return ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.75, 1.25)))
