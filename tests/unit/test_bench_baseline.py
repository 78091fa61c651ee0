"""The bench's in-process baseline runs the component versions that served the pipeline."""

from collections import Counter
from pathlib import Path

import pytest
from modstream.bench.run import NoServedModel, baseline_components
from modstream.core.inference import model_ref

ONE = model_ref("moderation", ["image_safety:1", "nsfwjs:1", "taxonomy:abc"])
TWO = model_ref("moderation", ["image_safety:1", "nsfwjs:2", "taxonomy:abc"])


def repository_with(root: Path, *versions: str) -> Path:
    for version in versions:
        folder = root / version.replace(":", "/")
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"onnx " + version.encode())
    return root


def test_the_versions_that_decided_the_images_are_the_baseline_not_version_1(tmp_path: Path) -> None:
    repository = repository_with(tmp_path, "image_safety:1", "nsfwjs:1", "nsfwjs:2")
    model, files = baseline_components(Counter({TWO: 3}), repository)
    assert model == TWO
    assert files == {
        "image_safety:1": repository / "image_safety" / "1" / "model.onnx",
        "nsfwjs:2": repository / "nsfwjs" / "2" / "model.onnx",
    }  # the taxonomy step has no ONNX file
    # A deploy or rollback during the run: the ensemble that decided most of the images.
    assert baseline_components(Counter({ONE: 2, TWO: 9}), repository)[0] == TWO
    assert baseline_components(Counter({ONE: 9, TWO: 2}), repository)[0] == ONE


def test_no_baseline_without_a_served_version_or_its_file(tmp_path: Path) -> None:
    repository = repository_with(tmp_path, "image_safety:1", "nsfwjs:1")
    with pytest.raises(NoServedModel, match="no decision named a model"):
        baseline_components(Counter(), repository)
    with pytest.raises(NoServedModel, match=r"nsfwjs:2 served the images, but .* is not there"):
        baseline_components(Counter({TWO: 4}), repository)


def test_an_ensembles_identity_names_every_component_in_order() -> None:
    assert TWO.version == "image_safety:1+nsfwjs:2+taxonomy:abc"
    assert TWO.components == {"image_safety": "1", "nsfwjs": "2", "taxonomy": "abc"}


def test_the_ocr_step_is_left_out_of_the_baseline_it_is_priced_on_its_own(tmp_path: Path) -> None:
    import shutil

    from modstream.core.settings import PROJECT_ROOT

    repository = repository_with(tmp_path, "image_safety:1", "ocr:1")
    for name in ("image_safety", "ocr"):  # the real configs: the ocr step reads TEXT_IMAGE
        shutil.copy(PROJECT_ROOT / "model_repository" / name / "config.pbtxt", repository / name)
    served = model_ref("moderation", ["image_safety:1", "ocr:1", "taxonomy:abc"])
    assert list(baseline_components(Counter({served: 1}), repository)[1]) == ["image_safety:1"]
