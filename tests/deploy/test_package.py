"""The wheel a non-editable install (the container image) gets has every file the code reads."""

import zipfile
from pathlib import Path

from modstream.core.settings import PROJECT_ROOT

from tests.package import build_wheel


def test_the_wheel_carries_the_dashboard_pages_and_assets(tmp_path: Path) -> None:
    packaged = set(zipfile.ZipFile(build_wheel(tmp_path)).namelist())
    package = PROJECT_ROOT / "services"
    needed = {
        str(path.relative_to(package))
        for path in (package / "modstream").rglob("*")
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts
    }
    assert needed - packaged == set()
