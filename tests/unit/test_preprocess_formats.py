"""The preprocess model's decoding, pixel by pixel, without Triton: what each format and sample
layout becomes, and which check refuses what (tests/e2e/test_formats.py runs the same files
through the real pipeline)."""

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from tests import images, preprocess_model
from tests.preprocess_model import MAX_PIXELS


@pytest.fixture(scope="module")
def model() -> Any:
    """model.py as Triton loads it (tests/preprocess_model.py)."""
    return preprocess_model.load()


@pytest.fixture(autouse=True)
def as_in_triton(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    yield


def rgb_of(model: Any, data: bytes) -> npt.NDArray[Any]:
    model.probe(data, MAX_PIXELS)
    return np.asarray(model.decode_rgb(data, MAX_PIXELS)).astype(int)


def reason(model: Any, data: bytes) -> str:
    with pytest.raises(model.ImageRejected) as caught:
        model.to_pixels(data, MAX_PIXELS)
    return str(caught.value.reason)


def strip(colours: Sequence[tuple[int, ...]], mode: str) -> Image.Image:
    image = Image.new(mode, (len(colours), 1))
    for x, colour in enumerate(colours):
        image.putpixel((x, 0), colour)
    return image


def test_cmyk_tiff_inks_become_the_colours_they_print(model: Any) -> None:
    inks = [(255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0), (0, 0, 0, 255), (0, 0, 0, 128), (255, 255, 0, 0)]
    rgb = rgb_of(model, images.encode(strip(inks, "CMYK"), "TIFF"))[0]
    expected = [(0, 255, 255), (255, 0, 255), (255, 255, 0), (0, 0, 0), (127, 127, 127), (0, 0, 255)]
    assert np.abs(rgb - np.array(expected)).max() <= 1


def test_a_photo_separated_with_black_ink_comes_back(model: Any) -> None:
    photo = images.photos()[1]
    back = rgb_of(model, images.encode(images.cmyk_with_black(photo), "TIFF", compression="tiff_lzw"))
    assert np.abs(back - np.asarray(photo)).max() <= 2


def test_cielab_tiff_is_converted_colorimetrically(model: Any) -> None:
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128), (20, 200, 120)]
    rgb = rgb_of(model, images.encode(strip(colours, "RGB").convert("LAB"), "TIFF"))[0]
    assert np.abs(rgb - np.array(colours)).max() <= 25  # an 8-bit Lab round trip, not a channel shuffle
    assert (rgb.argmax(axis=1)[:3] == [0, 1, 2]).all()


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        (np.array([[0, 257 * 100, 65535]], dtype=np.uint16), [0, 100, 255]),  # I;16: top 8 bits
        (np.array([[0.0, 0.5, 1.0, 2.0, -1.0, np.nan]], dtype=np.float32), [0, 128, 255, 255, 0, 0]),  # F: 0-1
    ],
    ids=["grey-16-bit", "grey-float"],
)
def test_wide_grey_tiff_samples_are_shown_as_a_viewer_shows_them(
    model: Any, samples: npt.NDArray[Any], expected: list[int]
) -> None:
    rgb = rgb_of(model, images.encode(Image.fromarray(samples), "TIFF"))[0]
    assert rgb[:, 0].tolist() == expected and (rgb[:, 0] == rgb[:, 2]).all()


def test_32_bit_unsigned_tiff_samples_keep_their_top_bits(model: Any) -> None:
    samples = np.array([[0, 2**31, 2**32 - 1, 2**24 * 7]], dtype="<u4")
    rgb = rgb_of(model, images.raw_tiff(4, 1, samples.tobytes(), bits=32))[0]
    assert rgb[:, 0].tolist() == [0, 128, 255, 7]


def test_16_bit_rgb_tiff(model: Any) -> None:
    samples = np.array([[[65535, 0, 257 * 40]]], dtype="<u2")
    rgb = rgb_of(model, images.raw_tiff(1, 1, samples.tobytes(), channels=3, bits=16, photometric=2))
    assert rgb[0, 0].tolist() == [255, 0, 40]


def test_multi_page_tiff_is_its_first_page(model: Any) -> None:
    pages = [Image.new("RGB", (40, 30), "red"), Image.new("RGB", (80, 60), "blue")]
    rgb = rgb_of(model, images.multipage_tiff(pages))
    assert rgb.shape == (30, 40, 3) and rgb[0, 0].tolist() == [255, 0, 0]


def test_ico_is_its_largest_picture(model: Any) -> None:
    rgb = rgb_of(model, images.ico_of_three_sizes(images.photos()[1]))  # 16x16 blue, 64x64 photo, 32x32 red
    assert rgb.shape == (64, 64, 3)
    assert rgb[..., 2].mean() < 200 and rgb[..., 0].mean() < 200  # neither all blue nor all red


def test_transparent_pixels_are_shown_on_white_in_the_new_formats(model: Any) -> None:
    # (Not BMP: Pillow writes a 32-bit BMP whose fourth byte the format calls reserved, so it shows opaque.)
    clear = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    for data in (
        images.encode(clear, "TIFF"),
        images.encode(clear, "ICO", sizes=[(64, 64)]),
        images.encode(clear, "AVIF"),
        images.heif(clear),
    ):
        assert rgb_of(model, data).min() >= 250, data[:12]


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_a_phone_photo_stored_turned_is_shown_upright(model: Any, fmt: str) -> None:
    upright = Image.new("RGB", (200, 100), "red")
    upright.paste((0, 0, 255), (100, 0, 200, 100))  # red left, blue right
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to show
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    data = (
        images.heif(stored, exif=exif.tobytes()) if fmt == "HEIF" else images.encode(stored, fmt, exif=exif.tobytes())
    )
    rgb = rgb_of(model, data)
    assert rgb.shape == (100, 200, 3)
    assert rgb[50, 20].tolist()[0] > 200 and rgb[50, 180].tolist()[2] > 200


def test_generic_mif1_brand_files_go_to_the_right_decoder(model: Any) -> None:
    photo = images.photos()[1].resize((150, 100))
    for data in (images.encode(photo, "AVIF"), images.heif(photo)):
        assert rgb_of(model, images.with_major_brand(data, b"mif1")).shape == (100, 150, 3)


def test_a_phone_jpeg_with_a_second_picture_is_its_first(model: Any) -> None:
    data = images.mpo([Image.new("RGB", (64, 48), "red"), Image.new("RGB", (32, 32), "blue")])
    assert model.probe(data, MAX_PIXELS) == "MPO"
    rgb = rgb_of(model, data)
    assert rgb.shape == (48, 64, 3) and rgb[..., 0].min() > 240


def test_a_heic_is_decoded_from_its_image_never_its_thumbnail(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A thumbnail is only what the file says is a scaled copy: a crafted one can show another
    picture. The reduced decode JPEGs get (at least 448 px) must not pick one in a HEIC."""
    import pillow_heif

    data = images.heif(Image.new("RGB", (1200, 900), "grey"), thumbnails=[600])
    assert rgb_of(model, data).shape == (900, 1200, 3)
    monkeypatch.setattr(pillow_heif.options, "THUMBNAILS", True)  # as pillow-heif reads by default
    assert rgb_of(model, data).shape == (450, 600, 3)  # the thumbnail: this test can fail


def test_heif_item_sizes_are_read_from_the_container(model: Any) -> None:
    grid = images.heif(Image.new("RGB", (300, 200), "grey"), grid_tile=128)
    sizes = model.isobmff_image_sizes(grid)
    assert (300, 200) in sizes and (128, 128) in sizes  # the whole image and its tiles
    assert model.isobmff_image_sizes(b"\x00\x00\x00\x10ftypheic" + bytes(4)) == []
    assert model.isobmff_image_sizes(b"\xff\xff\xff\xffftypheic") == []  # a box longer than the file


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: images.tiff_claiming(30_000, 30_000), "too_many_pixels"),
        (lambda: images.claiming_item_size(images.heif(Image.new("RGB", (64, 64))), 10_000, 8_000), "too_many_pixels"),
        (
            lambda: images.claiming_item_size(images.encode(Image.new("RGB", (64, 64)), "AVIF"), 8_000, 8_000),
            "too_many_pixels",
        ),
        (
            lambda: images.claiming_item_size(images.encode(Image.new("RGB", (64, 64)), "AVIF"), 20_000, 20_000),
            "too_many_pixels",
        ),
        (lambda: images.ico_holding(images.decompression_bomb(side=10_000)), "too_many_pixels"),
        (lambda: images.png_text_bomb(), "decompression_bomb"),
        (lambda: images.png_text_bomb(chunk=b"iTXt"), "decompression_bomb"),
        (lambda: images.png_text_bomb(before_pixels=False), "decompression_bomb"),
        (lambda: images.ico_holding(images.png_text_bomb(), directory_size=64), "decompression_bomb"),
        (
            lambda: images.raw_tiff(2, 2, bytes(48), channels=3, bits=32, sample_format=3, photometric=2),
            "unsupported_format",
        ),
        (lambda: images.psd(Image.new("RGB", (8, 8))), "unsupported_format"),
        (lambda: images.encode(Image.new("RGB", (8, 8)), "TGA"), "unsupported_format"),
        (lambda: b"\x00\x00\x00\x0cJXL \r\n\x87\n" + bytes(64), "unsupported_format"),
        (lambda: images.encode(Image.new("RGB", (64, 64)), "JPEG")[:10], "corrupt_image"),
        (lambda: images.heif(Image.new("RGB", (64, 64)))[:300], "corrupt_image"),
        (lambda: images.encode(Image.new("RGB", (64, 64)), "BMP")[:2000], "corrupt_image"),
        (lambda: images.html_named_jpg(), "not_an_image"),
        (lambda: b"", "empty_file"),
    ],
    ids=[
        "tiff-header-30000x30000",
        "heif-item-10000x8000",
        "avif-item-8000x8000",
        "avif-item-over-libavif-limit",
        "ico-entry-holding-10000x10000-png",
        "png-ztxt-before-pixels",
        "png-itxt",
        "png-ztxt-after-pixels",
        "ico-entry-holding-text-bomb",
        "tiff-rgb-float",
        "psd",
        "tga",
        "jpeg-xl-container",
        "jpeg-cut-in-its-header",
        "heif-truncated",
        "bmp-truncated",
        "html",
        "empty",
    ],
)
def test_refusals_name_their_reason(model: Any, make: Any, expected: str) -> None:
    assert reason(model, make()) == expected


def test_the_pixel_limit_is_checked_before_decoding(model: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(model, "decode_rgb", no_decoding)
    for data in (
        images.tiff_claiming(10_000, 10_000),
        images.ico_holding(images.decompression_bomb(side=10_000)),
        images.claiming_item_size(images.heif(Image.new("RGB", (64, 64))), 10_000, 8_000),
    ):
        assert reason(model, data) == "too_many_pixels"


def test_decoded_images_are_224_square_rgb(model: Any) -> None:
    pixels = model.to_pixels(images.encode(images.photos()[1], "BMP"), MAX_PIXELS)
    assert tuple(pixels.shape) == (3, 224, 224) and float(pixels.max()) <= 255.0


def cursor() -> bytes:
    """A Windows cursor: an ICO holding a BMP, its type field saying 2."""
    ico = bytearray(images.encode(Image.new("RGB", (32, 32), "green"), "ICO", bitmap_format="bmp"))
    ico[2] = 2
    return bytes(ico)


@pytest.mark.parametrize(
    ("fmt", "make"),
    [
        ("PSD", lambda: images.psd(Image.new("RGB", (32, 32), "green"))),
        ("JPEG2000", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "JPEG2000")),
        ("TGA", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "TGA")),
        ("PPM", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "PPM")),
        ("PPM", lambda: images.encode(Image.new("L", (32, 32), 90), "PPM")),  # PGM
        ("QOI", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "QOI")),
        ("PCX", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "PCX")),
        ("DDS", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "DDS")),
        ("ICNS", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "ICNS")),
        ("EPS", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "EPS")),
        ("SGI", lambda: images.encode(Image.new("RGB", (32, 32), "green"), "SGI")),
        ("CUR", cursor),
    ],
    ids=["psd", "jpeg-2000", "tga", "ppm", "pgm", "qoi", "pcx", "dds", "icns", "eps", "sgi", "cur"],
)
def test_other_formats_pillow_reads_stay_unsupported(model: Any, fmt: str, make: Any) -> None:
    data = make()
    with pytest.raises(model.ImageRejected, match=f"{fmt} is not one of") as caught:
        model.to_pixels(data, MAX_PIXELS)
    assert caught.value.reason == "unsupported_format"
