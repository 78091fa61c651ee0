"""Encoded image bytes -> 3x224x224 float32 RGB pixels (0-255), for the classifiers, and the
image's PDQ hash with its quality, for hash banks: both from one decode.

Formats: JPEG (and MPO, a JPEG carrying more pictures: the first is the photo), PNG, GIF,
WebP, BMP, TIFF (first page), ICO (largest image), HEIF/HEIC (pillow-heif) and AVIF
(Pillow's own plugin). Every other format Pillow knows is refused as ``unsupported_format``.

The pixel limit is checked before anything is decoded: from the image's header, and for
containers from the header of the embedded image that would be decoded (an ICO entry's own
PNG or BMP header, every HEIF/AVIF item's ``ispe`` size). Pillow decodes (EXIF orientation
applied, first frame of an animation, 16/32-bit and float samples brought to 8 bits,
transparency on white); torch resizes. PDQ (Meta's perceptual hash, ``pdqhash``: the C++
reference) hashes the same decoded RGB image, brought down to at most 512 px on its longer side.
Each output is made only when the request (a client, or an ensemble step's output_map) asks for it.

Each request is checked and decoded on its own: a bad image fails its own request
with an error whose message carries a reason code as ``[modstream:<code>]``; the
other requests of the batch are answered normally.
"""

import io
import json
import struct
from collections.abc import Iterator

import numpy as np
import pdqhash
import pillow_heif
import torch
import triton_python_backend_utils as pb_utils
from PIL import BmpImagePlugin, IcoImagePlugin, Image, ImageOps, PngImagePlugin
from torchvision.transforms.v2 import functional as tvf

SIZE = 224
# TEXT_IMAGE: the image for the ocr model, at most this many px on its longer side (the
# ``text_side`` parameter), in the top-left corner of a square of this side.
# PDQ hashes a copy whose longer side is at most this: the hash barely moves (measured: 6 to 20
# of 256 bits against the full-size hash of 1000-4000 px photos) and costs a fixed few ms, not
# 26 ms at 1600x1004 or 350 ms at 12 MP.
PDQ_SIDE = 512
# Pillow's format names. MPO is how Pillow names a JPEG whose MP extension lists more than
# one picture (phones add previews, depth maps or HDR gain maps): the first is the photo.
DECODABLE = {"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF", "ICO", "HEIF", "AVIF"}
# Image formats Pillow cannot identify at all, named by their signature so that they are
# refused as unsupported rather than as "not an image".
FOREIGN_SIGNATURES = {
    b"\xff\x0a": "JPEG XL",
    b"\x00\x00\x00\x0cJXL \r\n\x87\n": "JPEG XL",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ICO_SIGNATURE = b"\x00\x00\x01\x00"
# Pillow's own bomb guard is off: this model enforces its configured limit from the
# header, before decoding, and answers with a reason instead of an exception.
Image.MAX_IMAGE_PIXELS = None
# Pillow's plugins are registered first, HEIF's after them: a file whose major brand is
# the generic ``mif1`` is then tried as AVIF first, and pillow-heif takes it when it is HEVC.
# (The other way round, pillow-heif fails on AV1 with an error Pillow does not move past.)
# Thumbnails off: ``draft`` would otherwise decode an embedded thumbnail instead of the image,
# and a crafted file's thumbnail can show another picture than the one viewers show.
Image.init()
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


class ImageRejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"[modstream:{reason}] {detail}")
        self.reason = reason


def is_text_bomb(exc: BaseException) -> bool:
    """Pillow refusing a PNG's compressed text (zTXt, iTXt) or ICC chunk that inflates past
    ``PngImagePlugin.MAX_TEXT_CHUNK`` (1 MB), or all text past ``MAX_TEXT_MEMORY`` (64 MB)."""
    return isinstance(exc, ValueError) and "MAX_TEXT_" in str(exc)


def text_bomb(exc: BaseException) -> ImageRejected:
    return ImageRejected("decompression_bomb", f"a compressed PNG chunk inflates past the safe limit ({exc})")


def check_pixels(width: int, height: int, max_pixels: int, what: str = "") -> None:
    if width * height > max_pixels:
        raise ImageRejected("too_many_pixels", f"{what}{width}x{height} is over the limit of {max_pixels} pixels")


def probe(data: bytes, max_pixels: int) -> str:
    """Reject what must not reach the decoder, from headers alone; returns the format."""
    if not data:
        raise ImageRejected("empty_file", "the image has 0 bytes")
    # Containers first: Pillow decodes an ICO's largest image while opening it.
    for what, (width, height) in embedded_sizes(data):
        check_pixels(width, height, max_pixels, what)
    fmt, (width, height) = identify(data)
    if fmt not in DECODABLE:
        raise ImageRejected("unsupported_format", f"{fmt} is not one of {sorted(DECODABLE)}")
    check_pixels(width, height, max_pixels)
    return fmt


def identify(data: bytes) -> tuple[str, tuple[int, int]]:
    """Pillow's format name and the size its header declares, or the honest reason why not."""
    try:
        with Image.open(io.BytesIO(data)) as header:
            return header.format or "", header.size
    except Exception as exc:
        if is_text_bomb(exc):
            raise text_bomb(exc) from exc
        opening_error = exc
    for signature, name in FOREIGN_SIGNATURES.items():
        if data.startswith(signature):
            raise ImageRejected("unsupported_format", f"{name} is not one of {sorted(DECODABLE)}")
    fmt = recognised_format(data)
    if fmt is None:
        raise ImageRejected("not_an_image", f"no known image header ({type(opening_error).__name__})")
    # The bytes start like a format we decode: ask that plugin alone why it cannot open them.
    try:
        Image.OPEN[fmt][0](io.BytesIO(data), "").close()
        why = f"{type(opening_error).__name__}: {opening_error}"
    except Exception as exc:
        if is_text_bomb(exc):
            raise text_bomb(exc) from exc
        why = f"{type(exc).__name__}: {exc}"
    if "unsupported" in why.lower() or "unknown pixel mode" in why.lower():
        # A variant the decoder does not implement, e.g. RGB float TIFF samples.
        raise ImageRejected("unsupported_format", f"a {fmt} variant that cannot be decoded ({why[:200]})")
    raise ImageRejected("corrupt_image", f"{fmt} header unreadable ({why[:200]})")


def recognised_format(data: bytes) -> str | None:
    """The decodable format whose signature ``data`` starts with (Pillow's own checks)."""
    prefix = data[:16]
    for fmt in sorted(DECODABLE):
        if fmt in Image.OPEN:
            accept = Image.OPEN[fmt][1]
            if accept is not None and accept(prefix) is True:
                return fmt
    return None


def embedded_sizes(data: bytes) -> Iterator[tuple[str, tuple[int, int]]]:
    """Sizes declared inside containers for the images that would be decoded."""
    if data.startswith(ICO_SIGNATURE):
        size = ico_image_size(data)
        if size is not None:
            yield "the ICO's largest image, ", size
    if data[4:8] == b"ftyp":
        for size in isobmff_image_sizes(data):
            yield "an image item of ", size


def ico_image_size(data: bytes) -> tuple[int, int] | None:
    """The size of the image Pillow decodes from an ICO (the largest in its directory), read
    from that image's own PNG or BMP header: the directory says at most 256x256, and can lie."""
    buffer = io.BytesIO(data)
    try:
        entry = IcoImagePlugin.IcoFile(buffer).entry[0]
        buffer.seek(entry.offset)
        if data[entry.offset : entry.offset + 8] == PNG_SIGNATURE:
            with PngImagePlugin.PngImageFile(buffer) as png:
                return png.size
        with BmpImagePlugin.DibImageFile(buffer) as dib:
            return dib.size[0], dib.size[1] // 2  # the height counts the AND mask too
    except Exception as exc:
        if is_text_bomb(exc):
            raise text_bomb(exc) from exc
        return None  # a broken directory: opening the ICO names the problem


def isobmff_image_sizes(data: bytes) -> list[tuple[int, int]]:
    """Every ``ispe`` (image spatial extent) property of a HEIF/AVIF file: the coded size of
    each image item (the primary image, grid tiles, thumbnails), before crop or rotation.

    libavif refuses to parse files over its own limit (16384x16384) and libheif reports
    the size after its clean-aperture crop, so the limit is checked on these as well.
    """
    sizes = []
    for meta in _children(data, (0, len(data)), b"meta"):
        # meta is a full box: 4 bytes of version and flags before its children
        for iprp in _children(data, (meta[0] + 4, meta[1]), b"iprp"):
            for ipco in _children(data, iprp, b"ipco"):
                for start, end in _children(data, ipco, b"ispe"):
                    if end - start >= 12:  # version and flags, then width and height
                        width, height = struct.unpack_from(">II", data, start + 4)
                        sizes.append((width, height))
    return sizes


def _children(data: bytes, span: tuple[int, int], kind: bytes) -> Iterator[tuple[int, int]]:
    return ((start, end) for found, start, end in _boxes(data, *span) if found == kind)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """ISO base media file format boxes between ``start`` and ``end``: type, content start, end."""
    position = start
    while position + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, position)
        header = 8
        if size == 1 and position + 16 <= end:
            (size,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        elif size == 0:
            size = end - position
        if size < header or position + size > end:
            return
        yield kind, position + header, position + size
        position += size


def to_pixels(data: bytes, max_pixels: int) -> torch.Tensor:
    return pixels_of(decode(data, max_pixels))


def decode(data: bytes, max_pixels: int) -> Image.Image:
    """The image as 8-bit RGB, checked first; whatever goes wrong is this image's ImageRejected."""
    probe(data, max_pixels)
    try:
        return decode_rgb(data, max_pixels)
    except ImageRejected:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # a decoder's own error, whatever its type: this image only
        if is_text_bomb(exc):
            raise text_bomb(exc) from exc
        raise ImageRejected("corrupt_image", f"decoding failed: {type(exc).__name__}: {str(exc)[:200]}") from exc


def pixels_of(rgb: Image.Image) -> torch.Tensor:
    pixels = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)
    return tvf.resize(pixels, [SIZE, SIZE], antialias=True).to(torch.float32)


def pdq_of(rgb: Image.Image) -> tuple[np.ndarray, int]:
    """PDQ's 256 bits as 32 bytes, the first bit the high bit of the first byte: the bytes of the
    hex string ThreatExchange, HMA and the C++ reference write (``bytes(pdq).hex()``); and its
    quality (0-100)."""
    bits, quality = pdqhash.compute(np.asarray(for_pdq(rgb)))
    return np.packbits(bits.astype(np.uint8)), int(quality)


def for_pdq(rgb: Image.Image) -> Image.Image:
    """The image with its longer side at most ``PDQ_SIDE``, aspect ratio kept.

    Box filter (each output pixel the mean of the source pixels it covers): PDQ's own first step
    is a box-filter (Jarosz) downsampling to 64x64, so this is the same kind of low-pass, with no
    aliasing (unlike nearest) and no ringing (unlike Lanczos); it is Pillow's cheapest
    antialiased filter (4.5 ms at 1600x1004 against 7 bilinear, 18 Lanczos), and the hashes
    came out as close to the full-size ones as Lanczos's (mean 9 bits on 11 photos).
    """
    scale = PDQ_SIDE / max(rgb.size)
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, Image.Resampling.BOX)


def for_text(rgb: Image.Image, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The image for the ocr model: its longer side brought down to ``side`` at most (never up:
    the recogniser reads each region at its own resolution), in the top-left corner of a black
    ``side`` x ``side`` square so that a batch is one tensor; and the width and height it takes.

    JPEGs are decoded at a reduced scale (``decode_rgb``: both sides still at least 448 px), so a
    large photo's text is read from at least that. Bilinear, antialiased: text edges stay sharp
    enough to read at a fraction of Lanczos's cost."""
    scale = side / max(rgb.size)
    if scale < 1:
        rgb = rgb.resize(
            (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BILINEAR
        )
    canvas = np.zeros((3, side, side), dtype=np.uint8)
    canvas[:, : rgb.height, : rgb.width] = np.asarray(rgb).transpose(2, 0, 1)
    return canvas, np.array([rgb.width, rgb.height], dtype=np.int32)


def decode_rgb(data: bytes, max_pixels: int = 0) -> Image.Image:
    """Decode with Pillow, which raises on bad input.

    torchvision's decoders were the first choice, but libpng errors inside them
    (e.g. an IDAT CRC mismatch) crash the whole process, taking the model down for
    every request after one hostile file.
    """
    with Image.open(io.BytesIO(data)) as image:
        # JPEG: decode at a reduced DCT scale, still at least twice the target size. Others
        # ignore it (HEIF would take an embedded thumbnail: they are not read, see above).
        image.draft("RGB", (2 * SIZE, 2 * SIZE))
        image.load()
        if max_pixels:
            check_pixels(*image.size, max_pixels)  # HEIF learns its final size while decoding
        bits, unsigned = sample_layout(image)
        oriented = ImageOps.exif_transpose(image)
    return to_rgb(oriented, bits, unsigned)


def sample_layout(image: Image.Image) -> tuple[int, bool]:
    """Bits per sample and whether they are unsigned, from TIFF tags (16, True elsewhere)."""
    tags = getattr(image, "tag_v2", None)
    if tags is None:
        return 16, True
    return _first(tags.get(258, 16)), _first(tags.get(339, 1)) != 2  # BitsPerSample, SampleFormat


def _first(value: object) -> int:
    return int(value[0] if isinstance(value, tuple) else value)  # type: ignore[call-overload]


def to_rgb(image: Image.Image, bits: int = 16, unsigned: bool = True) -> Image.Image:
    """8-bit RGB as a viewer shows the image: wide integer samples scaled by their bit depth,
    float samples 0.0-1.0 as black to white (outside that range clipped), transparency on white."""
    if image.mode == "F":
        samples = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        image = Image.fromarray((samples.clip(0.0, 1.0) * 255.0).round().astype(np.uint8))
    elif image.mode.startswith("I"):
        samples = np.asarray(image)
        if image.mode == "I" and bits == 32 and unsigned:
            samples = samples.view(np.uint32)  # Pillow holds unsigned 32-bit samples as signed
        depth = 16 if image.mode.startswith("I;16") else bits
        wide = samples.astype(np.int64) >> max(depth - 8, 0)
        image = Image.fromarray(wide.clip(0, 255).astype(np.uint8))
    try:
        if image.has_transparency_data:
            # Transparent pixels are shown on white, as a viewer would show them.
            rgba = image.convert("RGBA")
            return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageRejected("unsupported_format", f"{image.mode} pixels cannot be shown as RGB ({exc})") from exc


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = json.loads(args["model_config"]).get("parameters", {})
        self.max_pixels = int(params["max_pixels"]["string_value"])
        self.text_side = int(params.get("text_side", {}).get("string_value", "640"))
        torch.set_num_threads(int(params["torch_threads"]["string_value"]))

    def execute(self, requests: list) -> list:
        return [self._answer(request) for request in requests]

    def _answer(self, request) -> "pb_utils.InferenceResponse":
        images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
        wanted = set(request.requested_output_names())
        try:
            # One image at a time: each decoded image is let go once its outputs are made.
            made = [outputs(decode(bytes(item[0]), self.max_pixels), wanted, self.text_side) for item in images]
        except ImageRejected as exc:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)))
        tensors = [pb_utils.Tensor(name, np.stack([one[name] for one in made])) for name in made[0]]
        return pb_utils.InferenceResponse(output_tensors=tensors)


def outputs(rgb: Image.Image, wanted: set[str], text_side: int = 640) -> dict[str, np.ndarray]:
    """One image's outputs, each made only when asked for (Triton asks for every output when a
    client names none): PIXELS [3, 224, 224] float32, PDQ [32] uint8, PDQ_QUALITY [1] int32,
    TEXT_IMAGE [3, text_side, text_side] uint8 and TEXT_SIZE [2] int32."""
    made = {}
    if "PIXELS" in wanted:
        made["PIXELS"] = pixels_of(rgb).numpy()
    if wanted & {"TEXT_IMAGE", "TEXT_SIZE"}:
        made["TEXT_IMAGE"], made["TEXT_SIZE"] = for_text(rgb, text_side)
    if wanted & {"PDQ", "PDQ_QUALITY"}:
        made["PDQ"], quality = pdq_of(rgb)
        made["PDQ_QUALITY"] = np.array([quality], dtype=np.int32)
    return {name: value for name, value in made.items() if name in wanted}
