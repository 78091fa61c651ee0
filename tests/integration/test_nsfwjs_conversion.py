"""nsfwjs's MobileNetV2 converted to ONNX agrees with the original run by TensorFlow.js.

The same 224x224 pixels of real photos go to both: 0-255 NCHW to the ONNX model in
onnxruntime, 0-1 NHWC to ``tests/tfjs/predict.mjs``, which loads the model from the npm
tarball's JS files as nsfwjs does and runs it on TensorFlow.js's CPU backend. Its locked
npm packages are installed once in the shared cache, never in the repository.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from modstream.core.packages import fetch_npm_tarball, read_tar_member
from modstream.core.settings import PROJECT_ROOT
from modstream.demo.samples import source_photos
from modstream.models.candidate import check_candidate, read_label_file
from modstream.models.weights import nsfwjs
from PIL import Image

from tests.conftest import SHARED_CACHE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TFJS = PROJECT_ROOT / "tests" / "tfjs"
LABELS = PROJECT_ROOT / "model_repository" / "nsfwjs" / "labels.txt"
SIZE = 224
AGREEMENT = 5e-5  # four decimals

Pixels = npt.NDArray[np.uint8]
Scores = npt.NDArray[np.float32]


@pytest.fixture(scope="module")
def converted() -> bytes:
    return nsfwjs.COMPONENT.build(SHARED_CACHE).onnx


@pytest.fixture(scope="module")
def photos() -> dict[str, Pixels]:
    """Each sample photo as 224x224 RGB, the whole image resized with antialiasing (Pillow's
    bilinear filter widens with the scale), like the preprocess model's output."""
    resized = {}
    for name, data in source_photos(SHARED_CACHE).items():
        with Image.open(io.BytesIO(data)) as image:
            rgb = image.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        resized[name] = np.asarray(rgb, dtype=np.uint8)
    return resized


def onnx_scores(model: bytes, batch: Pixels) -> Scores:
    """Scores of NHWC uint8 ``batch``, given to the model as the ensemble does: NCHW 0-255."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    pixels = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
    scores: Scores = session.run(["scores"], {"pixels": pixels})[0]
    return scores


def tfjs_installed() -> Path:
    """A folder with tests/tfjs's locked packages installed and predict.mjs beside them: one
    per lock file, in the shared cache."""
    lock = (TFJS / "package-lock.json").read_bytes()
    folder = SHARED_CACHE / f"tfjs-{hashlib.sha256(lock).hexdigest()[:16]}"
    if not (folder / "node_modules" / "@tensorflow" / "tfjs" / "package.json").is_file():
        SHARED_CACHE.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=".tfjs-", dir=SHARED_CACHE))
        for name in ("package.json", "package-lock.json"):
            shutil.copy(TFJS / name, partial / name)
        # --ignore-scripts: nothing needs building; core-js's postinstall only prints an advert
        command = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        done = subprocess.run(command, cwd=partial, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, f"npm ci failed: {done.stderr[-2000:]}"
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)
    shutil.copy(TFJS / "predict.mjs", folder / "predict.mjs")
    return folder


def tfjs_scores(batch: Pixels, work: Path) -> Scores:
    """Scores of NHWC uint8 ``batch`` from the original model in TensorFlow.js, given 0-1 as
    nsfwjs gives it (float32 division by 255, exactly as the ONNX graph's Div)."""
    tarball = fetch_npm_tarball(*nsfwjs.PACKAGE, nsfwjs.SHA256, SHARED_CACHE)
    model_js, weights_js, pixels = work / "model.min.js", work / "group1-shard1of1.min.js", work / "pixels.f32"
    model_js.write_bytes(read_tar_member(tarball, nsfwjs.TOPOLOGY))
    weights_js.write_bytes(read_tar_member(tarball, nsfwjs.WEIGHTS))
    (batch.astype(np.float32) / np.float32(255)).astype("<f4").tofile(pixels)
    folder = tfjs_installed()
    command = ["node", str(folder / "predict.mjs"), str(model_js), str(weights_js), str(pixels)]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"predict.mjs failed: {done.stderr[-2000:]}"
    answer = json.loads(done.stdout)
    assert answer["backend"] == "cpu"
    return np.array(answer["scores"], dtype=np.float32)


def test_the_converted_model_agrees_with_tensorflow_js(
    converted: bytes, photos: dict[str, Pixels], tmp_path: Path
) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are needed to run the original model in TensorFlow.js")
    batch = np.stack(list(photos.values()))
    ours, theirs = onnx_scores(converted, batch), tfjs_scores(batch, tmp_path)
    assert ours.shape == theirs.shape == (len(photos), len(nsfwjs.LABELS))
    differences = np.abs(ours - theirs).max(axis=1)
    for name, difference, scores in zip(photos, differences, ours, strict=True):
        print(f"{name}: max |onnx - tfjs| = {difference:.2e}, top {nsfwjs.LABELS[int(scores.argmax())]}")
    print(f"max |onnx - tfjs| over {len(photos)} photos: {differences.max():.2e}")
    assert differences.max() < AGREEMENT


def test_the_scores_are_a_softmax_and_the_batch_size_does_not_change_them(
    converted: bytes, photos: dict[str, Pixels]
) -> None:
    batch = np.stack(list(photos.values())[:8])
    together = onnx_scores(converted, batch)
    alone = np.concatenate([onnx_scores(converted, batch[i : i + 1]) for i in range(len(batch))])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-5)
    assert (together >= 0).all()


def test_the_candidate_check_accepts_it(converted: bytes, tmp_path: Path) -> None:
    labels = read_label_file(LABELS)
    assert labels == list(nsfwjs.LABELS)
    model = tmp_path / "model.onnx"
    model.write_bytes(converted)
    check_candidate(model, labels)


def test_building_again_gives_the_same_bytes(converted: bytes) -> None:
    again = nsfwjs.COMPONENT.build(SHARED_CACHE)
    assert again.onnx == converted
    assert again.license.startswith("MIT License") and "Infinite Red" in again.license
