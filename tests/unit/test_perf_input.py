"""perf_analyzer's input file lays BYTES tensors out as Triton does: length, then bytes."""

import base64
import struct

from modstream.bench.perf_analyzer import input_data


def test_each_image_is_one_length_prefixed_element() -> None:
    images = [b"\x89PNG first", b"\xff\xd8 second image"]
    data = input_data(images)["data"]
    assert isinstance(data, list) and len(data) == 2
    for entry, image in zip(data, images, strict=True):
        raw = base64.b64decode(entry["IMAGE"]["b64"])
        (length,) = struct.unpack("<I", raw[:4])
        assert (length, raw[4:], entry["IMAGE"]["shape"]) == (len(image), image, [1])
