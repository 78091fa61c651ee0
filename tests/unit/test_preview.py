"""What the dashboard sends a browser: stored bytes as they are, TIFF and HEIF as PNG, hostile files refused."""

import io

import pytest
from modstream.review.web.preview import NoPreview, for_browser
from PIL import Image

from tests import images

PHOTO = Image.radial_gradient("L").convert("RGB").resize((96, 64))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "ICO", "AVIF"])
def test_what_browsers_show_is_sent_as_stored(fmt: str) -> None:
    data = images.encode(PHOTO, fmt)
    sent, kind = for_browser(data)
    assert sent is data and kind.startswith("image/")


@pytest.mark.parametrize(
    ("data", "exact"),
    [
        (images.encode(PHOTO, "TIFF"), True),
        (images.multipage_tiff([PHOTO, Image.new("RGB", (96, 64), "red")]), True),
        (images.encode(images.cmyk_with_black(PHOTO), "TIFF"), False),
        (images.heif(PHOTO), False),
    ],
    ids=["tiff", "multipage-tiff", "cmyk-tiff", "heic"],
)
def test_tiff_and_heif_become_a_png_of_their_first_picture(data: bytes, exact: bool) -> None:
    sent, kind = for_browser(data)
    assert kind == "image/png"
    with Image.open(io.BytesIO(sent)) as shown:
        assert shown.format == "PNG" and shown.size == PHOTO.size
        difference = max(abs(a - b) for a, b in zip(shown.convert("RGB").tobytes(), PHOTO.tobytes(), strict=True))
    assert difference == 0 if exact else difference < 40


@pytest.mark.parametrize(("side", "says"), [(8_000, "8000x8000 is over"), (30_000, "decompression bomb")])
def test_a_header_claiming_too_many_pixels_is_refused_before_decoding(side: int, says: str) -> None:
    with pytest.raises(NoPreview, match=says):
        for_browser(images.tiff_claiming(side, side))


def test_bytes_that_do_not_decode_are_refused() -> None:
    with pytest.raises(NoPreview, match="does not decode"):
        for_browser(images.encode(PHOTO, "TIFF")[:200])
