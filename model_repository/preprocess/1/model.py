"""Encoded image bytes -> 3x224x224 float32 RGB pixels (0-255), for the classifier.

Each request is checked and decoded on its own: a bad image fails its own request
with an error whose message carries a reason code as ``[modstream:<code>]``; the
other requests of the batch are answered normally.
"""

import io
import json
import warnings

import numpy as np
import torch
import triton_python_backend_utils as pb_utils
from PIL import Image
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as tvf

SIZE = 224
DECODABLE = {"JPEG", "PNG", "GIF", "WEBP"}
# Pillow is used only to read the header (format, width, height), never to decode:
# its own bomb guard is off because this model enforces its configured limit.
Image.MAX_IMAGE_PIXELS = None
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities")


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
        encoded = torch.frombuffer(bytearray(data), dtype=torch.uint8)
        image = decode_image(encoded, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    except RuntimeError as exc:
        # torchvision prefixes the decoder's reason with its source location: keep the reason.
        reason = str(exc).strip().rsplit(", ", 1)[-1][:200]
        raise ImageRejected("corrupt_image", f"decoding failed: {reason}") from exc
    if image.ndim == 4:  # animated GIF: the first frame stands for the image
        image = image[0]
    if image.dtype == torch.uint16:  # 16-bit PNG
        image = (image.to(torch.float32) / 257.0).round().to(torch.uint8)
    resized = tvf.resize(image, [SIZE, SIZE], antialias=True)
    return resized.to(torch.float32)


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
