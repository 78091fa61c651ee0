"""The PDQ outputs without Triton: the configs that declare them (the shadow ensemble's copy
too), the preprocess model's hash against ThreatExchange's own test vector, the downscale, and
that each output is made only when asked for. tests/integration/test_pdq.py runs them served."""

import base64
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf import text_format
from modstream.core.settings import PROJECT_ROOT, SHADOW_SUFFIX
from modstream.models.shadow_run import _write_ensemble
from PIL import Image
from tritonclient.grpc import model_config_pb2

from tests import images, preprocess_model

REPOSITORY = PROJECT_ROOT / "model_repository"
PDQ_OUTPUTS = {"PDQ": ("TYPE_UINT8", [32]), "PDQ_QUALITY": ("TYPE_INT32", [1])}
# ThreatExchange's own PDQ test vector (facebook/ThreatExchange, BSD licence:
# python-threatexchange/threatexchange/tests/hashing/test_pdq_hasher.py, RANDOM_IMAGE_BASE64 and
# RANDOM_IMAGE_PDQ): a 26x28 opaque RGBA PNG and the hex its pdq_hasher gives for it.
THREATEXCHANGE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAABoAAAAcCAYAAAB/E6/TAAABQGlDQ1BJQ0MgUHJvZmlsZQAAKJFj"
    "YGASSCwoyGFhYGDIzSspCnJ3UoiIjFJgf8rAzMDDwMGgziCUmFxc4BgQ4ANUwgCjUcG3awyMIPqy"
    "LsisbUEsbr4sN5Y9iTOwFjbIZsFUjwK4UlKLk4H0HyBOTC4oKmFgYEwAspXLSwpA7BYgW6QI6Cgg"
    "ewaInQ5hrwGxkyDsA2A1IUHOQPYVIFsgOSMxBch+AmTrJCGJpyOxofaCAHuokbmlgRMBl5IBSlIr"
    "SkC0c35BZVFmekaJgiMwhFIVPPOS9XQUjAyMDBkYQOENUf1ZDByOjGKnEGIF/gwMlmUMDEyJCLE4"
    "FwaG7coMDPyFCDENoL/40xgYDkYXJBYlwh3A+I2lOM3YCMLmKWJgYP3x//9nWaCXdzEw/C36///3"
    "3P///y5hYGC+ycBwoBAAJoJZwzimB1MAAACKZVhJZk1NACoAAAAIAAQBGgAFAAAAAQAAAD4BGwAF"
    "AAAAAQAAAEYBKAADAAAAAQACAACHaQAEAAAAAQAAAE4AAAAAAAAAkAAAAAEAAACQAAAAAQADkoYA"
    "BwAAABIAAAB4oAIABAAAAAEAAAAaoAMABAAAAAEAAAAcAAAAAEFTQ0lJAAAAU2NyZWVuc2hvdB0L"
    "cNQAAAAJcEhZcwAAFiUAABYlAUlSJPAAAAHUaVRYdFhNTDpjb20uYWRvYmUueG1wAAAAAAA8eDp4"
    "bXBtZXRhIHhtbG5zOng9ImFkb2JlOm5zOm1ldGEvIiB4OnhtcHRrPSJYTVAgQ29yZSA1LjQuMCI+"
    "CiAgIDxyZGY6UkRGIHhtbG5zOnJkZj0iaHR0cDovL3d3dy53My5vcmcvMTk5OS8wMi8yMi1yZGYt"
    "c3ludGF4LW5zIyI+CiAgICAgIDxyZGY6RGVzY3JpcHRpb24gcmRmOmFib3V0PSIiCiAgICAgICAg"
    "ICAgIHhtbG5zOmV4aWY9Imh0dHA6Ly9ucy5hZG9iZS5jb20vZXhpZi8xLjAvIj4KICAgICAgICAg"
    "PGV4aWY6UGl4ZWxYRGltZW5zaW9uPjI2PC9leGlmOlBpeGVsWERpbWVuc2lvbj4KICAgICAgICAg"
    "PGV4aWY6VXNlckNvbW1lbnQ+U2NyZWVuc2hvdDwvZXhpZjpVc2VyQ29tbWVudD4KICAgICAgICAg"
    "PGV4aWY6UGl4ZWxZRGltZW5zaW9uPjI4PC9leGlmOlBpeGVsWURpbWVuc2lvbj4KICAgICAgPC9y"
    "ZGY6RGVzY3JpcHRpb24+CiAgIDwvcmRmOlJERj4KPC94OnhtcG1ldGE+ChyymmEAAAAcaURPVAAA"
    "AAIAAAAAAAAADgAAACgAAAAOAAAADgAAAmByXymqAAACLElEQVRIDYRTO2wTQRB949zZvoS4MIYk"
    "pgpIIJQGEYlUKIgCaFIh0UQoLS2RKKChixCIgAiIlCAEHULQQZMCmhQgUSIEdIkcG+zYJHeHnVtm"
    "72Pvntcwxc3O7Mx789mjSqUiYJAOCO9/WXhXs/FlZwgVP4NNLxNGTuQDjOUCHBvZw7lSG6eLHVgw"
    "wnSRKU1U+5PBne95vNzModVJJQu2iQCpFRm1CBcnfFw74qOUDZSb3rFL1BaE5W85rP7IYncvDpB4"
    "jNstNiGR2iDDQ8CVSR+LTGiTXkxIVOWxLHxy8LHOkf+SAR11U+JCposBnp50cYDHmwitfa2J+XUH"
    "G66pyr6WOC/x8VGuTGJFq+ud2Vd2BF7MuDheiMZD5We/xcZO3CZxhuAoqU2S3EktJR2fui+PEN7O"
    "ujjInREet3rD7BtNsqC4W+a/ccLG/FEbhwuEDLt32wINH9hyA8y88rSG5aOZ3g+8nvWY6GFzMJGy"
    "/PE88PyCg7OHrKgbw5cetdirjDaOWZySP8uD7R5ROjnJYf1mzsHcpJ2O0GxaaWp2+BtwscNcG+Fe"
    "QyFSkMOUaHRnyhbWLu3TQQwW3d9mb4IhA5KzYKK7dYXIkM2uJ+cdLEzlzJeKl5YbiqUfCbd/SrpI"
    "0o8h3tH65QJOjetjW/3s4eYHD1vh350A6OAhbtwU4Vbtvx01rxYxmtXBxlbqTBI/8xS+ySQsVQcT"
    "xdWI66W+XFqqsi/aYaT7QrTrvwAAAP//WDKhWgAAAcFJREFUjVLPSwJBFH5P65B08JKSZUh56dy9"
    "U39Fh6AQpF/0wygIScSICCKKIIKi6NApomtg0Dno0jkVs6ws0qAfdLDXzO66M+606sDuvvne9973"
    "vtlBSBQI6iyKtikMXH5RsFoAQvxZCPEI2VNBjJhiHqUHxguCy3l8Wet1VHsjxJ7IbGwkKO6VKI2F"
    "qWIZgpuvQoyXScII0XxlfpbRLVCivbHuEusi/QMDB28SwsIqocUH1dGKr7qggd3+9ReETkuiuaUG"
    "YeFecqRnabXDQqu/XUq+QyL5YUtEmMuRdmIShdY6pV1j4fBJEQ6vPhlZvk2iFiHChEgxpTOQFbEc"
    "rftFhRFhJCd62t06ox7YF2E6y1TsmHpX2uhShWbuFKwWgDCZsbEjymgrIDZGhFNZzS2f1vZEDK6r"
    "mTsaT0uOrP34DAi0HbAmACcyCmaKcnG++C9h8Wx/E+symlKut85ib2Na2uk2oUqAY0zIaGQ64v31"
    "2XQai/v8TjgbcQH65jOUL5Ur9f9+abdHwTGcMgfRBuIMi7DP7YTzcAt4WtnRXd480uDRN+RLvwrR"
    "dLQXVIVCt/xUqx1ILJ/bAcdDLuj1OjT0DwULeQovxm67AAAAAElFTkSuQmCC"
)
THREATEXCHANGE_PDQ = "ad64cd9875e131a177b1f2a0d6b38ae1de9ea80421e4c51dde1b0363deba3466"


def config(path: Path) -> Any:
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def pdq_outputs(parsed: Any) -> dict[str, tuple[str, list[int]]]:
    return {
        o.name: (model_config_pb2.DataType.Name(o.data_type), list(o.dims)) for o in parsed.output if "PDQ" in o.name
    }


@pytest.fixture(scope="module")
def model() -> Any:
    return preprocess_model.load()


@pytest.mark.parametrize("ensemble", ["moderation", "moderation_light"])
def test_both_ensembles_answer_the_preprocess_steps_pdq(ensemble: str) -> None:
    assert pdq_outputs(config(REPOSITORY / "preprocess" / "config.pbtxt")) == PDQ_OUTPUTS
    parsed = config(REPOSITORY / ensemble / "config.pbtxt")
    assert pdq_outputs(parsed) == PDQ_OUTPUTS
    (preprocess,) = (step for step in parsed.ensemble_scheduling.step if step.model_name == "preprocess")
    assert {k: v for k, v in preprocess.output_map.items() if "PDQ" in k} == {
        "PDQ": "PDQ",
        "PDQ_QUALITY": "PDQ_QUALITY",
    }


def test_a_shadow_ensemble_keeps_the_pdq_outputs(tmp_path: Path) -> None:
    shutil.copytree(REPOSITORY / "moderation", tmp_path / "moderation")
    _write_ensemble(tmp_path, "moderation", "image_safety")
    shadow = config(tmp_path / f"moderation{SHADOW_SUFFIX}" / "config.pbtxt")
    assert shadow.name == f"moderation{SHADOW_SUFFIX}"
    assert pdq_outputs(shadow) == PDQ_OUTPUTS
    assert dict(shadow.ensemble_scheduling.step[0].output_map)["PDQ"] == "PDQ"


def test_the_hash_is_threatexchanges_for_its_own_test_image(model: Any) -> None:
    packed, quality = model.pdq_of(model.decode(THREATEXCHANGE_PNG, preprocess_model.MAX_PIXELS))
    assert packed.dtype == np.uint8 and packed.shape == (32,)
    assert bytes(packed).hex() == THREATEXCHANGE_PDQ
    assert quality == 100


@pytest.mark.parametrize(
    ("size", "hashed"),
    [((1600, 1004), (512, 321)), ((1004, 1600), (321, 512)), ((512, 300), (512, 300)), ((3000, 2), (512, 1))],
)
def test_the_hashed_copy_has_its_longer_side_at_most_512(
    model: Any, size: tuple[int, int], hashed: tuple[int, int]
) -> None:
    rgb = Image.new("RGB", size)
    assert model.for_pdq(rgb).size == hashed
    if hashed == size:
        assert model.for_pdq(rgb) is rgb  # smaller images are hashed as decoded


def test_each_output_is_made_only_when_asked_for(model: Any) -> None:
    rgb = model.decode(images.encode(images.photos()[0], "PNG"), preprocess_model.MAX_PIXELS)
    assert set(model.outputs(rgb, {"PDQ"})) == {"PDQ"}
    assert set(model.outputs(rgb, {"PIXELS"})) == {"PIXELS"}
    made = model.outputs(rgb, {"PIXELS", "PDQ", "PDQ_QUALITY"})
    assert made["PIXELS"].shape == (3, 224, 224) and made["PIXELS"].dtype == np.float32
    assert made["PDQ"].shape == (32,) and made["PDQ"].dtype == np.uint8
    assert made["PDQ_QUALITY"].shape == (1,) and made["PDQ_QUALITY"].dtype == np.int32
    packed, quality = model.pdq_of(rgb)
    assert bytes(made["PDQ"]) == bytes(packed) and made["PDQ_QUALITY"][0] == quality
    assert np.array_equal(made["PIXELS"], model.to_pixels(images.encode(images.photos()[0], "PNG"), 10**8).numpy())
