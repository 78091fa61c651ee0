"""The multi-label vector's scores are independent: labels of different components can be
high together. tests/composite.py's two-half image runs through the four installed ONNX
components in onnxruntime (one thread), decoded as the preprocess decodes it, and the
taxonomy turns their class scores into labels, as the ensemble's taxonomy step does."""

import io
from collections.abc import Iterator
from functools import cache

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from modstream.models.taxonomy import read_taxonomy
from modstream.models.weights import install_default_weights
from PIL import Image

from tests.composite import LABELS, REPOSITORY, SIZE, half_image, two_label_image

HIGH = 0.5  # each label the image drives (measured: about 0.94 and 0.96 on the composite)
LOW = 0.1  # the other half's label on a half alone (measured: 0.012 and 0.0001)
TAXONOMY = read_taxonomy(REPOSITORY)
# The labels made from the classifiers' pixels (the ocr step reads text from a larger image).
CLASSIFIED = {label: rule for label, rule in TAXONOMY.labels.items() if rule.component != "ocr"}
COMPONENTS = sorted({rule.component for rule in CLASSIFIED.values()})
# The components' weights come from their registry packages (installed here if missing).
pytestmark = pytest.mark.integration


@cache
def session(component: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    path = REPOSITORY / component / "1" / "model.onnx"
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module", autouse=True)
def sessions() -> Iterator[None]:
    from tests.conftest import SHARED_CACHE

    install_default_weights(REPOSITORY, SHARED_CACHE)
    yield
    session.cache_clear()


def pixels(png: bytes) -> npt.NDArray[np.float32]:
    """``[1, 3, 224, 224]`` float32 RGB 0-255, as the preprocess model hands them on."""
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.size == (SIZE, SIZE)  # nothing to resize
        rgb = np.asarray(image.convert("RGB"), np.float32)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def label_scores(png: bytes) -> dict[str, float]:
    """Every label of the taxonomy: its component's class probabilities, combined by its rule."""
    x = pixels(png)
    probabilities = {}
    for component in COMPONENTS:
        model = session(component)
        scores = model.run(None, {model.get_inputs()[0].name: x})[0][0]
        classes = (REPOSITORY / component / "labels.txt").read_text().split()
        assert len(scores) == len(classes)
        probabilities[component] = dict(zip(classes, (float(s) for s in scores), strict=True))
    labels = {}
    for label, rule in CLASSIFIED.items():
        chosen = [probabilities[rule.component][name] for name in rule.classes]
        labels[label] = max(chosen) if rule.combine == "max" else sum(chosen)  # "one": its single class
    return labels


def test_the_two_labels_come_from_different_components() -> None:
    first, second = (TAXONOMY.labels[label] for label in LABELS)
    assert first.component != second.component


def test_the_composite_is_a_deterministic_224px_png() -> None:
    png, labels = two_label_image()
    assert labels == LABELS
    assert png == two_label_image()[0]
    assert pixels(png).shape == (1, 3, SIZE, SIZE)


def test_the_composite_scores_high_on_both_labels_at_once() -> None:
    png, (first, second) = two_label_image()
    scores = label_scores(png)
    assert scores[first] >= HIGH and scores[second] >= HIGH, {first: scores[first], second: scores[second]}


@pytest.mark.parametrize("label", LABELS)
def test_each_half_alone_scores_high_on_its_own_label_only(label: str) -> None:
    (other,) = (name for name in LABELS if name != label)
    scores = label_scores(half_image(label))
    assert scores[label] >= HIGH and scores[other] < LOW, {label: scores[label], other: scores[other]}
