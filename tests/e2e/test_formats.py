"""The formats users upload, through the real pipeline: each file generated here, uploaded with
the SDK, fetched by the worker and decoded by Triton's ``preprocess`` model.

Every case ends as a scored decision (all labels) or the named error reason; the same photo
scores alike whatever format carries it.
"""

import base64
import subprocess
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import pytest
from modstream.core.events import ModerationDecision, Outcome
from modstream.core.settings import Settings
from modstream.ingest.sdk import UploadClient
from PIL import Image, ImageOps

from tests import images
from tests.e2e.conftest import DECIDED_LABELS
from tests.records import decisions_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
SCORED = "scored"
MAX_PIXELS = 50_000_000  # model_repository/preprocess/config.pbtxt


@cache
def photo() -> Image.Image:
    return images.photos()[1]  # 451x300 RGB


@cache
def small() -> Image.Image:
    return photo().resize((150, 100))


def grey16() -> Image.Image:
    return Image.fromarray(np.asarray(photo().convert("L")).astype(np.uint16) * 257)


def grey_float() -> Image.Image:
    return Image.fromarray(np.asarray(photo().convert("L")).astype(np.float32) / 255)


def rgb16_samples() -> bytes:
    return (np.asarray(small(), dtype="<u2") * 257).tobytes()


# name -> (expected outcome: SCORED or an error reason, the file)
CASES: dict[str, tuple[str, Callable[[], bytes]]] = {
    # BMP
    "bmp-24-bit": (SCORED, lambda: images.encode(photo(), "BMP")),
    "bmp-32-bit": (SCORED, lambda: images.encode(photo().convert("RGBA"), "BMP")),
    "bmp-8-bit-palette": (SCORED, lambda: images.encode(photo().convert("P"), "BMP")),
    "bmp-1-bit": (SCORED, lambda: images.encode(photo().convert("1"), "BMP")),
    "bmp-truncated": ("corrupt_image", lambda: images.encode(photo(), "BMP")[:5000]),
    # TIFF
    "tiff-rgb-uncompressed": (SCORED, lambda: images.encode(photo(), "TIFF")),
    "tiff-rgb-lzw": (SCORED, lambda: images.encode(photo(), "TIFF", compression="tiff_lzw")),
    "tiff-rgb-deflate": (SCORED, lambda: images.encode(photo(), "TIFF", compression="tiff_deflate")),
    "tiff-jpeg-compressed": (SCORED, lambda: images.encode(photo(), "TIFF", compression="jpeg")),
    "tiff-rgba": (SCORED, lambda: images.encode(photo().convert("RGBA"), "TIFF", compression="tiff_lzw")),
    "tiff-cmyk": (SCORED, lambda: images.encode(images.cmyk_with_black(photo()), "TIFF")),
    "tiff-multi-page": (SCORED, lambda: images.multipage_tiff([photo(), Image.new("RGB", (300, 200), "red")])),
    "tiff-bilevel-group4": (SCORED, lambda: images.encode(photo().convert("1"), "TIFF", compression="group4")),
    "tiff-grey-16-bit": (SCORED, lambda: images.encode(grey16(), "TIFF")),
    "tiff-rgb-16-bit": (SCORED, lambda: images.raw_tiff(150, 100, rgb16_samples(), channels=3, bits=16, photometric=2)),
    "tiff-grey-32-bit-float": (SCORED, lambda: images.encode(grey_float(), "TIFF")),
    "tiff-grey-32-bit-int": (SCORED, lambda: images.encode(photo().convert("L").convert("I"), "TIFF")),
    "tiff-cielab": (SCORED, lambda: images.encode(photo().convert("LAB"), "TIFF")),
    "tiff-rgb-32-bit-float": (
        "unsupported_format",
        lambda: images.raw_tiff(150, 100, bytes(150 * 100 * 12), channels=3, bits=32, sample_format=3, photometric=2),
    ),
    "tiff-header-30000x30000": ("too_many_pixels", lambda: images.tiff_claiming(30_000, 30_000)),
    "tiff-truncated-header": ("corrupt_image", lambda: images.encode(photo(), "TIFF")[:6]),
    # ICO
    "ico-png-largest-of-three": (SCORED, lambda: images.ico_of_three_sizes(photo())),
    "ico-bmp": (SCORED, lambda: images.encode(photo().convert("RGBA"), "ICO", sizes=[(128, 128)], bitmap_format="bmp")),
    "ico-holding-a-10000x10000-png": (
        "too_many_pixels",
        lambda: images.ico_holding(images.decompression_bomb(side=10_000)),
    ),
    # HEIF / HEIC
    "heic": (SCORED, lambda: images.heif(photo())),
    "heic-grid-tiles": (SCORED, lambda: images.heif(photo(), grid_tile=128)),
    "heic-alpha": (SCORED, lambda: images.heif(photo().convert("RGBA"))),
    "heif-brand-mif1": (SCORED, lambda: images.with_major_brand(images.heif(small()), b"mif1")),
    "heic-item-10000x8000": (
        "too_many_pixels",
        lambda: images.claiming_item_size(images.heif(Image.new("RGB", (64, 64))), 10_000, 8_000),
    ),
    "heic-truncated": ("corrupt_image", lambda: images.heif(photo())[:400]),
    # AVIF
    "avif": (SCORED, lambda: images.encode(photo(), "AVIF")),
    "avif-alpha": (SCORED, lambda: images.encode(photo().convert("RGBA"), "AVIF")),
    "avif-brand-mif1": (SCORED, lambda: images.with_major_brand(images.encode(small(), "AVIF"), b"mif1")),
    "avif-item-20000x20000": (  # over libavif's own limit: it would not even parse the header
        "too_many_pixels",
        lambda: images.claiming_item_size(images.encode(small(), "AVIF"), 20_000, 20_000),
    ),
    # a phone JPEG carrying a second picture (Pillow calls it MPO)
    "jpeg-with-second-picture-mpo": (SCORED, lambda: images.mpo([photo(), small()])),
    # PNG text-chunk bombs: about 74 kB on disk, 64 MB of text once inflated
    "png-ztxt-bomb": ("decompression_bomb", images.png_text_bomb),
    "png-itxt-bomb-after-pixels": (
        "decompression_bomb",
        lambda: images.png_text_bomb(chunk=b"iTXt", before_pixels=False),
    ),
    "png-ztxt-500-kb-of-text": (SCORED, lambda: images.png_text_bomb(inflated=500_000)),
    # formats Pillow reads that are not decoded here, and one it does not know
    "psd": ("unsupported_format", lambda: images.psd(small())),
    "jpeg-2000": ("unsupported_format", lambda: images.encode(small(), "JPEG2000")),
    "tga": ("unsupported_format", lambda: images.encode(small(), "TGA")),
    "ppm": ("unsupported_format", lambda: images.encode(small(), "PPM")),
    "qoi": ("unsupported_format", lambda: images.encode(small(), "QOI")),
    "jpeg-xl-signature": ("unsupported_format", lambda: b"\xff\x0a" + bytes(200)),
}


async def decide(settings: Settings, files: dict[str, bytes], timeout: float = 300) -> dict[str, ModerationDecision]:
    async with UploadClient(settings) as client:
        events = {name: await client.upload_image(data, "e2e", key=f"formats/{name}") for name, data in files.items()}
    decisions = await decisions_for(settings, {e.event_id for e in events.values()}, timeout=timeout)
    by_event = {d.event_id: d for d in decisions}
    return {name: by_event[event.event_id] for name, event in events.items() if event.event_id in by_event}


@pytest.fixture(scope="module")
async def decided(worker_settings: Settings, worker: subprocess.Popen[bytes]) -> dict[str, ModerationDecision]:
    """Every case uploaded at once, each decision by case name."""
    return await decide(worker_settings, {name: make() for name, (_, make) in CASES.items()})


@pytest.mark.parametrize("name", list(CASES))
async def test_each_format_gets_its_outcome(name: str, decided: dict[str, ModerationDecision]) -> None:
    expected = CASES[name][0]
    decision = decided.get(name)
    assert decision is not None, f"no decision for {name}"
    if expected == SCORED:
        assert decision.decision in {Outcome.ALLOW, Outcome.REVIEW, Outcome.BLOCK}, decision.error
        assert sorted(decision.scores) == DECIDED_LABELS
        assert all(0.0 <= s <= 1.0 for s in decision.scores.values())
        assert decision.model is not None and decision.model.name == "moderation"
    else:
        assert decision.decision is Outcome.ERROR
        assert decision.error is not None and decision.error.reason.value == expected, decision.error
        assert decision.reasons == [expected] and decision.scores == {} and decision.model is None


def test_the_cases_hold_what_their_names_say(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated files really are the formats, sizes and modes the cases are named after."""
    import io

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # headers of 900 MP are read here, never decoded

    def opened(name: str, formats: list[str] | None = None) -> Image.Image:
        return Image.open(io.BytesIO(CASES[name][1]()), formats=formats)

    assert opened("heic").format == "HEIF" and opened("avif").format == "AVIF"
    for name, fmt in (("heif-brand-mif1", "HEIF"), ("avif-brand-mif1", "AVIF")):
        assert CASES[name][1]()[8:12] == b"mif1" and opened(name, [fmt]).format == fmt
    assert opened("jpeg-with-second-picture-mpo").format == "MPO"
    assert getattr(opened("tiff-multi-page"), "n_frames", 1) == 2
    assert opened("tiff-cmyk").mode == "CMYK" and opened("tiff-cielab").mode == "LAB"
    assert opened("tiff-grey-16-bit").mode == "I;16" and opened("tiff-grey-32-bit-float").mode == "F"
    assert opened("tiff-grey-32-bit-int").mode == "I" and opened("tiff-rgb-16-bit").mode == "RGB"
    assert opened("tiff-header-30000x30000").size == (30_000, 30_000)
    assert opened("heic-item-10000x8000").size == (10_000, 8_000)
    assert opened("ico-png-largest-of-three").info["sizes"] == {(16, 16), (32, 32), (64, 64)}
    assert opened("psd").format == "PSD" and opened("qoi").format == "QOI"
    assert len(images.png_text_bomb()) < 100_000
    with pytest.raises(ValueError, match="MAX_TEXT_CHUNK"):
        opened("png-ztxt-bomb")


def embedding(decision: ModerationDecision) -> "np.ndarray[Any, np.dtype[np.float32]]":
    assert decision.embedding is not None
    return np.frombuffer(base64.b64decode(decision.embedding.values_base64), dtype="<f2").astype(np.float32)


async def test_the_same_photo_scores_alike_in_every_format(
    worker_settings: Settings, worker: subprocess.Popen[bytes]
) -> None:
    """Lossless carriers of the same pixels score as the PNG does; lossy ones (JPEG, HEIF,
    AVIF at quality 90) alike: the image embedding nearly the same (cosine >= 0.95) and every
    label within 0.05; an image stored on its side with an orientation like the upright one.
    Harmless photos score near 0 on every label, so the embedding is what tells them apart
    (measured: cosine >= 0.998 for lossy copies, <= 0.25 between photos, <= 0.87 sideways)."""
    photos = images.photos()[:4]  # astronaut, cat, coffee, camera (greyscale): 300 to 600 px
    files: dict[str, bytes] = {}
    for index, picture in enumerate(photos):
        icon = picture.resize((256, 256))
        exif = Image.Exif()
        exif[0x0112] = 6  # stored turned: rotate 90 degrees clockwise to show
        turned = picture.transpose(Image.Transpose.ROTATE_90)
        files |= {
            f"{index}/png": images.encode(picture, "PNG"),
            f"{index}/bmp": images.encode(picture, "BMP"),
            f"{index}/tiff": images.encode(picture, "TIFF", compression="tiff_lzw"),
            f"{index}/tiff-cmyk": images.encode(images.cmyk_with_black(picture), "TIFF"),
            f"{index}/tiff-first-page": images.multipage_tiff([picture, Image.new("RGB", (50, 50), "red")]),
            f"{index}/icon-png": images.encode(icon, "PNG"),
            f"{index}/icon-ico": images.encode(icon, "ICO", sizes=[(256, 256)]),
            f"{index}/jpeg": images.encode(picture, "JPEG", quality=95),
            f"{index}/mpo": images.mpo([picture, picture.resize((64, 64))]),
            f"{index}/heic": images.heif(picture, quality=90),
            f"{index}/heic-grid": images.heif(picture, grid_tile=256, quality=90),
            f"{index}/avif": images.encode(picture, "AVIF", quality=90),
            f"{index}/heic-turned": images.heif(turned, quality=90, exif=exif.tobytes()),
            f"{index}/avif-turned": images.encode(turned, "AVIF", quality=90, exif=exif.tobytes()),
            f"{index}/png-turned": images.encode(turned, "PNG"),
        }
    decided = await decide(worker_settings, files)
    assert set(decided) == set(files), f"no decision for {sorted(set(files) - set(decided))}"
    scores = {name: d.scores for name, d in decided.items()}
    assert all(sorted(s) == DECIDED_LABELS for s in scores.values()), {n: d.error for n, d in decided.items()}

    def gap(a: str, b: str) -> float:
        return max(abs(scores[a][label] - scores[b][label]) for label in DECIDED_LABELS)

    def alike(a: str, b: str) -> float:
        """Cosine similarity of the two images' embeddings."""
        x, y = (embedding(decided[name]) for name in (a, b))
        return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))

    for index in range(len(photos)):
        for lossless in ("bmp", "tiff", "tiff-cmyk", "tiff-first-page"):
            assert gap(f"{index}/{lossless}", f"{index}/png") < 1e-4, (index, lossless)
        assert gap(f"{index}/icon-ico", f"{index}/icon-png") < 1e-4, index
        assert gap(f"{index}/mpo", f"{index}/jpeg") < 1e-4, index  # the first picture is the JPEG
        for lossy, upright in [(k, "png") for k in ("jpeg", "heic", "heic-grid", "avif")] + [
            ("heic-turned", "heic"),
            ("avif-turned", "avif"),
        ]:
            pair = (f"{index}/{lossy}", f"{index}/{upright}")
            assert gap(*pair) < 0.05 and alike(*pair) >= 0.95, (pair, gap(*pair), alike(*pair))
    # The bounds can fail: other photos, or a photo left on its side, are further apart.
    others = max(alike(f"{a}/png", f"{b}/png") for a in range(len(photos)) for b in range(a))
    sideways = max(alike(f"{index}/png-turned", f"{index}/png") for index in range(len(photos)))
    assert others < 0.95 and sideways < 0.95, (others, sideways)
    same = min(alike(f"{i}/{k}", f"{i}/png") for i in range(len(photos)) for k in ("jpeg", "heic", "avif"))
    print(f"embedding cosine: lossy vs png >= {same:.3f}; other photos <= {others:.3f}; sideways <= {sideways:.3f}")


def test_a_turned_heic_is_stored_turned() -> None:
    """The orientation written above reaches the file as HEIF's own rotation (irot), which the
    decoder applies; the EXIF orientation left in it then says 1, so nothing turns twice."""
    import io

    picture = photo()
    exif = Image.Exif()
    exif[0x0112] = 6
    turned = images.heif(picture.transpose(Image.Transpose.ROTATE_90), quality=90, exif=exif.tobytes())
    with Image.open(io.BytesIO(turned)) as opened:
        assert opened.size == picture.size
        assert ImageOps.exif_transpose(opened).size == picture.size
