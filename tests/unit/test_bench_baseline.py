"""The bench's in-process baseline runs the classifier version that served the pipeline."""

from collections import Counter
from pathlib import Path

import pytest
from modstream.bench.run import NoServedModel, baseline_model
from modstream.core.events import ModelRef

ONE = ModelRef(name="image_safety", version="1")
TWO = ModelRef(name="image_safety", version="2")


def repository_with_versions(root: Path, *versions: str) -> Path:
    for version in versions:
        folder = root / "image_safety" / version
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"onnx " + version.encode())
    return root


def test_the_version_that_decided_the_images_is_the_baseline_not_version_1(tmp_path: Path) -> None:
    repository = repository_with_versions(tmp_path, "1", "2")
    assert baseline_model(Counter({TWO: 3}), repository) == (TWO, repository / "image_safety" / "2" / "model.onnx")
    # A deploy or rollback during the run: the version that decided most of the images.
    assert baseline_model(Counter({ONE: 2, TWO: 9}), repository)[0] == TWO
    assert baseline_model(Counter({ONE: 9, TWO: 2}), repository)[0] == ONE


def test_no_baseline_without_a_served_version_or_its_file(tmp_path: Path) -> None:
    repository = repository_with_versions(tmp_path, "1")
    with pytest.raises(NoServedModel, match="no decision named a model"):
        baseline_model(Counter(), repository)
    with pytest.raises(NoServedModel, match=r"image_safety:2 decided the images, but .* is not there"):
        baseline_model(Counter({TWO: 4}), repository)
