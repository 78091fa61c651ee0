"""The wheel a non-editable install (the container image) gets has every file the code reads."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from modstream.core.settings import PROJECT_ROOT


def test_the_wheel_carries_the_dashboard_pages_and_assets(tmp_path: Path) -> None:
    # Built from a copy: setuptools leaves a build/ folder where it runs.
    source = tmp_path / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(PROJECT_ROOT / "services", source / "services", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("modstream-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    package = PROJECT_ROOT / "services"
    needed = {
        str(path.relative_to(package))
        for path in (package / "modstream").rglob("*")
        if path.is_file() and path.suffix != ".pyc" and "__pycache__" not in path.parts
    }
    assert needed - packaged == set()
