"""Text in the image: PP-OCRv4 detection on every image, recognition only of the regions found.

In: TEXT_IMAGE, the decoded image from the preprocess model brought down to at most
``text_side`` px on its longer side (uint8 RGB, [3, S, S], the image in the top-left corner) and
TEXT_SIZE, the width and height the image takes in it. Out, like every component: SCORES and
LABELS (one class, ``text``: how sure detection is that the image holds text the recogniser could
read; 0 when none) and MODEL_VERSION; and TEXT, the reading as JSON (``regions`` detected, the
``lines`` read in reading order with their ``confidence`` and ``box`` as fractions of the image's
width and height, ``truncated``), the shape of ``modstream.core.events.TextReading``.

Detection (DB, differentiable binarisation) runs at ``detect_side`` px on the longer side: its
probability map is thresholded, each connected region scored by its mean probability and grown
by DB's unclip distance (area x ratio / perimeter), as the detector was trained to shrink them.
Boxes are axis-aligned: rotated text is read inside its bounding box, and text upside down is
not turned (the wheel's orientation classifier is not used). Each region is cut from TEXT_IMAGE
at its own resolution, brought to the recogniser's 48 px height and read by greedy CTC over
the model's own alphabet (its ONNX metadata) with a space appended, as the model was trained.
An image where nothing is detected costs detection alone; the counters on Triton's metrics
port (``modstream_ocr_*``) say how many regions were read.
"""

import json
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils
from PIL import Image
from scipy import ndimage

MEAN = STD = 0.5  # both models: (x / 255 - 0.5) / 0.5
THRESH = 0.3  # a pixel is text where the probability map is above this
BOX_THRESH = 0.5  # a region is text where its mean probability is at least this
UNCLIP_RATIO = 1.6
MIN_SIDE = 3  # regions thinner than this, at detection's scale, are noise
READ_HEIGHT = 48
MAX_READ_WIDTH = 1600  # a region wider than this (33 x its height) is squeezed, not read in pieces
READ_BATCH = 8
SPACE_PROBABILITY = 0.02  # chosen on the bench's drawn text: 0.01 to 0.02 read best
MIN_CONFIDENCE = 0.5  # lines read with less are dropped: on photos they are texture, not text
MAX_LINES = 32  # core.events.TEXT_MAX_LINES
MAX_CHARS = 200  # core.events.TEXT_MAX_CHARS


def onnx_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see image_safety's model
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def normalised(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xHxW float32, BGR as the models were trained (PaddleOCR reads with OpenCV)."""
    bgr = rgb[:, :, ::-1].astype(np.float32)
    return ((bgr / 255.0 - MEAN) / STD).transpose(2, 0, 1)


def detection_input(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float, float]:
    """The image resized for detection (longer side ``side``, both sides multiples of 32) and the
    factors from its pixels back to ``rgb``'s."""
    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    h = max(32, round(height * scale / 32) * 32)
    w = max(32, round(width * scale / 32) * 32)
    resized = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.BILINEAR))
    return normalised(resized)[None], width / w, height / h


def regions(probability: np.ndarray) -> list[tuple[float, int, int, int, int]]:
    """DB's boxes from one probability map: (score, x0, y0, x1, y1) at the map's scale."""
    mask = probability > THRESH
    labelled, count = ndimage.label(mask)
    if count == 0:
        return []
    found = []
    means = ndimage.mean(probability, labelled, index=np.arange(1, count + 1))
    height, width = probability.shape
    for index, window in enumerate(ndimage.find_objects(labelled)):
        if window is None:
            continue
        ys, xs = window
        w, h = xs.stop - xs.start, ys.stop - ys.start
        score = float(means[index])
        if min(w, h) < MIN_SIDE or score < BOX_THRESH:
            continue
        grow = UNCLIP_RATIO * w * h / (2 * (w + h))
        found.append(
            (
                score,
                max(0, int(xs.start - grow)),
                max(0, int(ys.start - grow)),
                min(width, math.ceil(xs.stop + grow)),
                min(height, math.ceil(ys.stop + grow)),
            )
        )
    return found


def reading_order(boxes: list[tuple[float, int, int, int, int]]) -> list[tuple[float, int, int, int, int]]:
    """Rows top to bottom (a box joins the row above when its middle lies within that row's first
    box), each row left to right."""
    rows: list[list[tuple[float, int, int, int, int]]] = []
    for box in sorted(boxes, key=lambda b: b[2]):
        middle = (box[2] + box[4]) / 2
        if rows and rows[-1][0][2] <= middle <= rows[-1][0][4]:
            rows[-1].append(box)
        else:
            rows.append([box])
    return [box for row in rows for box in sorted(row, key=lambda b: b[1])]


def crop_for_reading(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """One region at the recogniser's height (HxWx3 uint8); a tall region is turned to read as a line."""
    x0, y0, x1, y1 = box
    patch = Image.fromarray(rgb[y0:y1, x0:x1])
    if patch.height >= 1.5 * patch.width:
        patch = patch.transpose(Image.Transpose.ROTATE_90)
    width = min(MAX_READ_WIDTH, max(1, math.ceil(READ_HEIGHT * patch.width / patch.height)))
    return np.asarray(patch.resize((width, READ_HEIGHT), Image.Resampling.BILINEAR))


def batches_by_width(crops: list[np.ndarray]) -> list[list[int]]:
    """Crop indexes in groups of similar width, so that little of a batch is padding."""
    order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1])
    return [order[i : i + READ_BATCH] for i in range(0, len(order), READ_BATCH)]


def padded(crops: list[np.ndarray]) -> np.ndarray:
    width = max(crop.shape[1] for crop in crops)
    batch = np.zeros((len(crops), 3, READ_HEIGHT, width), dtype=np.float32)
    for i, crop in enumerate(crops):
        batch[i, :, :, : crop.shape[1]] = normalised(crop)
    return batch


def ctc_greedy(probabilities: np.ndarray, alphabet: list[str]) -> tuple[str, float]:
    """One line's text and confidence from the recogniser's [T, classes] softmax: the best class
    at each step, repeats merged, blanks (class 0) dropped; confidence is the mean probability of
    the characters kept.

    The recogniser (trained mostly on Chinese, which has no spaces) often lets a space lose to
    the blank between two words; a space is kept wherever its own probability reaches
    ``SPACE_PROBABILITY`` between two characters (the bench's CER: 5.7 % -> 4.1 %)."""
    best = probabilities.argmax(axis=1)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    keep &= best != 0
    if not keep.any():
        return "", 0.0
    steps = np.flatnonzero(keep)
    chars = [alphabet[i - 1] for i in best[keep]]
    space = probabilities[:, len(alphabet)]  # the last class: the appended space
    text = [chars[0]]
    for before, after, previous, char in zip(steps, steps[1:], chars, chars[1:], strict=False):
        if " " not in (previous, char) and after - before > 1 and space[before + 1 : after].max() >= SPACE_PROBABILITY:
            text.append(" ")
        text.append(char)
    return "".join(text), float(probabilities[keep, best[keep]].mean())


def kept_confidence(confidence: float) -> float:
    """Four decimals, never rounded up: a line is never read with a certain 1.0, so a text
    label's ``block_at: 1.0`` (review only) holds whatever the recogniser says."""
    return math.floor(confidence * 10_000) / 10_000


class Reader:
    """Detection and recognition, without Triton (tests run it in-process)."""

    def __init__(self, detector: Path, recogniser: Path, detect_side: int, threads: int) -> None:
        self.detect_side = detect_side
        self.detector = onnx_session(detector, threads)
        self.recogniser = onnx_session(recogniser, threads)
        characters = self.recogniser.get_modelmeta().custom_metadata_map["character"].splitlines()
        self.alphabet = [*characters, " "]
        self.regions_read = 0

    def read(self, rgb: np.ndarray) -> tuple[float, dict]:
        """The text score and the reading (TextReading's JSON shape) of one HxWx3 uint8 image."""
        height, width = rgb.shape[:2]
        given, fx, fy = detection_input(rgb, self.detect_side)
        probability = self.detector.run(None, {"x": given})[0][0, 0]
        boxes = [
            (
                score,
                int(x0 * fx),
                int(y0 * fy),
                min(width, math.ceil(x1 * fx)),
                min(height, math.ceil(y1 * fy)),
            )
            for score, x0, y0, x1, y1 in reading_order(regions(probability))
        ]
        lines, present = [], 0.0
        if boxes:
            for (score, *box), (text, confidence) in zip(boxes, self.recognise(rgb, boxes), strict=True):
                text = text.strip()
                if not text or confidence < MIN_CONFIDENCE:
                    continue
                present = max(present, score)
                x0, y0, x1, y1 = box
                lines.append(
                    {
                        "text": text[:MAX_CHARS],
                        "confidence": kept_confidence(confidence),
                        "box": [
                            round(x0 / width, 4),
                            round(y0 / height, 4),
                            round(x1 / width, 4),
                            round(y1 / height, 4),
                        ],
                    }
                )
        reading = {"regions": len(boxes), "lines": lines[:MAX_LINES], "truncated": len(lines) > MAX_LINES}
        return round(present, 4), reading

    def recognise(self, rgb: np.ndarray, boxes: list) -> list[tuple[str, float]]:
        crops = [crop_for_reading(rgb, tuple(box[1:])) for box in boxes]
        read: list[tuple[str, float]] = [("", 0.0)] * len(crops)
        for group in batches_by_width(crops):
            out = self.recogniser.run(None, {"x": padded([crops[i] for i in group])})[0]
            for i, probabilities in zip(group, out, strict=True):
                read[i] = ctc_greedy(probabilities, self.alphabet)
        self.regions_read += len(crops)
        return read


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        params = json.loads(args["model_config"]).get("parameters", {})
        folder = Path(args["model_repository"]) / args["model_version"]
        self.reader = Reader(
            folder / params["detector_file"]["string_value"],
            folder / params["recogniser_file"]["string_value"],
            int(params["detect_side"]["string_value"]),
            int(params["intra_op_threads"]["string_value"]),
        )
        self.version = f"{args['model_name']}:{args['model_version']}"
        self.images = pb_utils.MetricFamily(
            name="modstream_ocr_images_total",
            description="images the ocr model looked at, by whether it found text regions",
            kind=pb_utils.MetricFamily.COUNTER,
        )
        # Each family is kept as long as its metrics: Triton deletes a family's metrics with it.
        self.regions = pb_utils.MetricFamily(
            name="modstream_ocr_regions_read_total",
            description="text regions the recogniser read (none for an image where nothing was detected)",
            kind=pb_utils.MetricFamily.COUNTER,
        )
        self.read_counter = self.regions.Metric(labels={"model": self.version})
        self.with_text = self.images.Metric(labels={"model": self.version, "regions": "some"})
        self.without_text = self.images.Metric(labels={"model": self.version, "regions": "none"})

    def execute(self, requests: list) -> list:
        return [self._answer(request) for request in requests]

    def _answer(self, request) -> "pb_utils.InferenceResponse":
        images = pb_utils.get_input_tensor_by_name(request, "TEXT_IMAGE").as_numpy()
        sizes = pb_utils.get_input_tensor_by_name(request, "TEXT_SIZE").as_numpy()
        scores, readings = [], []
        for image, (width, height) in zip(images, sizes, strict=True):
            before = self.reader.regions_read
            present, reading = self.reader.read(np.ascontiguousarray(image[:, :height, :width].transpose(1, 2, 0)))
            self.read_counter.increment(self.reader.regions_read - before)
            (self.with_text if reading["regions"] else self.without_text).increment(1)
            scores.append([present])
            readings.append([json.dumps(reading, ensure_ascii=False).encode()])
        n = len(images)
        return pb_utils.InferenceResponse(
            output_tensors=[
                pb_utils.Tensor("SCORES", np.array(scores, dtype=np.float32)),
                pb_utils.Tensor("LABELS", np.array([[b"text"]] * n, dtype=np.object_)),
                pb_utils.Tensor("MODEL_VERSION", np.array([[self.version.encode()]] * n, dtype=np.object_)),
                pb_utils.Tensor("TEXT", np.array(readings, dtype=np.object_)),
            ]
        )
