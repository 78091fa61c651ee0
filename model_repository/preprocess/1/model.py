"""Encoded image bytes -> 3x224x224 float32 RGB pixels (0-255), for the classifier.

Pillow decodes (EXIF orientation applied, first frame of an animation, 16-bit scaled
to 8, transparency on white); torch resizes.

Each request is checked and decoded on its own: a bad image fails its own request
with an error whose message carries a reason code as ``[modstream:<code>]``; the
other requests of the batch are answered normally.
"""

import io
import json

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from PIL import Image, ImageOps
from torchvision.transforms.v2 import functional as tvf

SIZE = 224
DECODABLE = {"JPEG", "PNG", "GIF", "WEBP"}
# Pillow's own bomb guard is off: this model enforces its configured limit from the
# header, before decoding, and answers with a reason instead of an exception.
Image.MAX_IMAGE_PIXELS = None


class ImageRejected(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"[modstream:{reason}] {detail}")


def probe(data: bytes, max_pixels: int) -> None:
    """Reject what must not reach the decoder, from the header alone."""
    if not data:
        raise ImageRejected("empty_file", "the image has 0 bytes")
    try:
        with Image.open(io.BytesIO(data)) as header:
            fmt, (width, height) = header.format or "", header.size
    except Exception as exc:
        raise ImageRejected("not_an_image", f"no known image header ({type(exc).__name__})") from exc
    if fmt not in DECODABLE:
        raise ImageRejected("unsupported_format", f"{fmt} is not one of {sorted(DECODABLE)}")
    if width * height > max_pixels:
        raise ImageRejected(
            "too_many_pixels", f"{width}x{height} is over the limit of {max_pixels} pixels"
        )


def to_pixels(data: bytes, max_pixels: int) -> torch.Tensor:
    probe(data, max_pixels)
    try:
        rgb = decode_rgb(data)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageRejected("corrupt_image", f"decoding failed: {str(exc)[:200]}") from exc
    pixels = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)
    return tvf.resize(pixels, [SIZE, SIZE], antialias=True).to(torch.float32)


def decode_rgb(data: bytes) -> Image.Image:
    """Decode with Pillow, which raises on bad input.

    torchvision's decoders were the first choice, but libpng errors inside them
    (e.g. an IDAT CRC mismatch) crash the whole process, taking the model down for
    every request after one hostile file.
    """
    with Image.open(io.BytesIO(data)) as image:
        # JPEG only: decode at a reduced DCT scale, still at least twice the target size.
        image.draft("RGB", (2 * SIZE, 2 * SIZE))
        image.load()
        oriented = ImageOps.exif_transpose(image)
    if oriented.mode in ("I", "I;16", "I;16B", "I;16L"):
        # 16-bit grayscale: keep the top 8 bits.
        wide = np.asarray(oriented).astype(np.uint32)
        oriented = Image.fromarray((wide >> 8).clip(0, 255).astype(np.uint8))
    if oriented.mode in ("RGBA", "LA", "PA") or "transparency" in oriented.info:
        # Transparent pixels are shown on white, as a viewer would show them.
        rgba = oriented.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return oriented.convert("RGB")


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = json.loads(args["model_config"]).get("parameters", {})
        self.max_pixels = int(params["max_pixels"]["string_value"])
        torch.set_num_threads(int(params["torch_threads"]["string_value"]))

    def execute(self, requests: list) -> list:
        return [self._answer(request) for request in requests]

    def _answer(self, request) -> "pb_utils.InferenceResponse":
        images = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
        try:
            pixels = torch.stack([to_pixels(bytes(item[0]), self.max_pixels) for item in images])
        except ImageRejected as exc:
            return pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)))
        output = pb_utils.Tensor("PIXELS", np.ascontiguousarray(pixels.numpy()))
        return pb_utils.InferenceResponse(output_tensors=[output])
