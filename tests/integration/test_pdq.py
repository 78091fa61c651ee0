"""PDQ hashes as the served models make them, against pdqhash run here on the same decode.

The reference side imports the preprocess model's own decode (model_repository/preprocess/1/
model.py, as tests/unit/test_preprocess_formats.py does), brings the image down the way the
model is meant to (longer side at most 512 px, box filter: written out here, not imported),
hashes it with pdqhash and writes the hex with ThreatExchange's rule. The served side is the
real Triton of the session's stack: the ensembles' PDQ outputs and ``TritonScorer.pdq``.
"""

import asyncio
import io
from collections.abc import AsyncIterator, Iterable
from typing import Any

import numpy as np
import pdqhash
import pytest
from modstream.bench.triton_metrics import mean_batch_sizes, read
from modstream.core.events import ErrorReason, PdqHash
from modstream.core.inference import ImageRejected, TritonScorer
from modstream.core.settings import Settings
from modstream.demo.samples import source_photos, variants
from modstream.models.control import TritonControl
from PIL import Image

from tests import images, preprocess_model
from tests.conftest import SHARED_CACHE

pytestmark = pytest.mark.integration
# PDQ's match threshold (ThreatExchange's PDQ_CONFIDENT_MATCH_THRESHOLD): at most 31 bits apart.
MATCH = 31
# Photographs for the distance test. Left out: brick.png, a fine repeating texture whose hash
# is all fine detail (halving it moves 58 bits), and the 14x25 animated GIF.
TEXTURE_OR_TINY = {"brick.png", "no_time_for_that_tiny.gif"}


def threatexchange_hex(bits: Iterable[int]) -> str:
    """ThreatExchange's formatting (threatexchange 1.2.17, signal_type/pdq/pdq_hasher.py,
    ``_pdq_from_numpy_array``): pdqhash's 256 bits in its order, read as one binary number,
    written as 64 lowercase hex digits (HMA stores the same string). threatexchange itself is
    not in this environment, so its rule is written out."""
    binary = "".join(str(int(bit)) for bit in bits)
    return ("%0*X" % ((len(binary) + 3) // 4, int(binary, 2))).lower()  # noqa: UP031 (their expression)


def in_process(data: bytes) -> PdqHash:
    """pdqhash on the preprocess model's decode of ``data`` (EXIF orientation applied, RGB),
    downscaled so the longer side is at most 512 px with a box filter."""
    model = preprocess_model.load()
    model.probe(data, preprocess_model.MAX_PIXELS)
    rgb = model.decode_rgb(data, preprocess_model.MAX_PIXELS)
    if max(rgb.size) > 512:
        scale = 512 / max(rgb.size)
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.BOX)
    bits, quality = pdqhash.compute(np.asarray(rgb))
    return PdqHash(hex=threatexchange_hex(bits), quality=quality)


def distance(a: PdqHash, b: PdqHash) -> int:
    return (int(a.hex, 16) ^ int(b.hex, 16)).bit_count()


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return source_photos(SHARED_CACHE)


@pytest.fixture
async def scorer(stack_settings: Settings) -> AsyncIterator[TritonScorer]:
    scorer = TritonScorer(stack_settings.triton_grpc, stack_settings.triton_model, 60)
    yield scorer
    await scorer.close()


async def test_the_ensembles_pdq_is_pdqhash_of_the_same_decode(scorer: TritonScorer, photos: dict[str, bytes]) -> None:
    """Every sample photo in every upload variant (JPEG, PNG, WebP, GIF, grey, RGBA on white,
    2x JPEGs decoded at a reduced DCT scale then brought down to 512), and one turned by EXIF."""
    cases = [case for name, data in photos.items() for case in variants(name, data)]
    upright = encode(images.photos()[0], "JPEG", quality=95)
    cases += [("upright.jpg", upright), ("exif-rotated.jpg", images.exif_rotated_jpeg(images.photos()[0]))]
    served = {}
    for name, data in cases:
        served[name] = (await scorer.score(data)).pdq
        assert served[name] == in_process(data), name
    # Turned upright before hashing: the stored (sideways) pixels would hash ~128 bits away.
    rotated, upright_hash = served["exif-rotated.jpg"], served["upright.jpg"]
    assert rotated is not None and upright_hash is not None and distance(rotated, upright_hash) <= 4
    print(f"{len(cases)} images: served PDQ == pdqhash here; EXIF-turned vs upright: {distance(rotated, upright_hash)}")


async def test_the_hex_is_threatexchanges_for_the_same_pixels(scorer: TritonScorer, photos: dict[str, bytes]) -> None:
    """One photo by hand: pdqhash's bits of the model's own 512 px copy, ThreatExchange's rule."""
    model = preprocess_model.load()
    data = photos["hubble_deep_field.jpg"]  # 1000x872: hashed from a 512x446 copy
    pixels = model.for_pdq(model.decode(data, preprocess_model.MAX_PIXELS))
    assert pixels.size == (512, 446)
    bits, quality = pdqhash.compute(np.asarray(pixels))
    served = (await scorer.score(data)).pdq
    assert served == PdqHash(hex=threatexchange_hex(bits), quality=quality)
    assert served.hex == bytes(np.packbits(bits.astype(np.uint8))).hex()


async def test_a_resized_and_a_recompressed_copy_stay_within_the_match_distance(
    scorer: TritonScorer, photos: dict[str, bytes]
) -> None:
    worst = {"half size": 0, "JPEG q50": 0}
    for name, data in photos.items():
        if name in TEXTURE_OR_TINY:
            continue
        with Image.open(io.BytesIO(data)) as opened:
            rgb = opened.convert("RGB")
        original = (await scorer.score(data)).pdq
        assert original is not None
        for kind, copy in [
            ("half size", encode(rgb.resize((rgb.width // 2, rgb.height // 2), Image.Resampling.LANCZOS), "PNG")),
            ("JPEG q50", encode(rgb, "JPEG", quality=50)),
        ]:
            hashed = await scorer.pdq(copy)
            assert distance(original, hashed) <= MATCH, (name, kind, distance(original, hashed))
            worst[kind] = max(worst[kind], distance(original, hashed))
    print(f"largest distance to the original over {len(photos) - len(TEXTURE_OR_TINY)} photos: {worst}")


async def test_pdq_alone_is_what_the_ensemble_answers(
    scorer: TritonScorer, photos: dict[str, bytes], stack_settings: Settings
) -> None:
    for name, data in photos.items():
        assert await scorer.pdq(data) == (await scorer.score(data)).pdq, name
    with pytest.raises(ImageRejected) as rejected:
        await scorer.pdq(images.corrupt_jpeg())
    assert rejected.value.reason is ErrorReason.CORRUPT_IMAGE
    with pytest.raises(ImageRejected) as rejected:
        await scorer.pdq(images.text_named_jpg())
    assert rejected.value.reason is ErrorReason.NOT_AN_IMAGE
    # The light ensemble (loaded here on demand) answers the same hash.
    control = TritonControl(stack_settings.triton_http)
    control.load("moderation_light")
    light = TritonScorer(stack_settings.triton_grpc, "moderation_light", 60)
    try:
        for data in list(photos.values())[:3]:
            assert (await light.score(data)).pdq == await scorer.pdq(data)
    finally:
        await light.close()
        control.unload("moderation_light")
        control.close()


async def test_a_corrupt_image_in_the_same_batch_fails_alone(
    scorer: TritonScorer, photos: dict[str, bytes], stack_settings: Settings
) -> None:
    """Ensemble requests and direct PDQ requests in flight together: preprocess batches them
    (each request asks for its own outputs), and only the corrupt ones fail."""

    async def ask(how: str, data: bytes) -> PdqHash | None:
        return (await scorer.score(data)).pdq if how == "ensemble" else await scorer.pdq(data)

    good = [data for name, data in photos.items() if name not in TEXTURE_OR_TINY]
    requests = [("ensemble" if i % 2 else "alone", data) for i, data in enumerate(good + good)]
    requests[5:5] = [("ensemble", images.corrupt_jpeg()), ("alone", images.truncated_png())]
    before = read(stack_settings.triton_metrics)
    results = await asyncio.gather(*(ask(how, data) for how, data in requests), return_exceptions=True)
    after = read(stack_settings.triton_metrics)
    for (how, data), result in zip(requests, results, strict=True):
        if data in good:
            assert result == in_process(data), (how, result)
        else:
            assert isinstance(result, ImageRejected) and result.reason is ErrorReason.CORRUPT_IMAGE, (how, result)
    batch = mean_batch_sizes(before, after)["preprocess"]
    assert batch > 1.5
    print(f"{len(requests)} requests in flight, preprocess's mean batch: {batch}")
