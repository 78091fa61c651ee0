"""The project as a non-editable install sees it: the wheel, and the container image's settings."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

from modstream.core.settings import PROJECT_ROOT


def build_wheel(folder: Path) -> Path:
    """The modstream wheel, built from a copy (setuptools leaves a build/ folder where it runs)."""
    source = folder / "source"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(PROJECT_ROOT / "services", source / "services", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(folder), "."],
        cwd=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = folder.glob("modstream-*.whl")
    return wheel


def image_environment() -> dict[str, str]:
    """The ENV of the Dockerfile's final stage, as the container's processes see it."""
    final_stage = (PROJECT_ROOT / "Dockerfile").read_text().rpartition("\nFROM ")[2]
    env: dict[str, str] = {}
    for block in re.findall(r"^ENV (.*?)(?<!\\)$", final_stage, flags=re.MULTILINE | re.DOTALL):
        for name, value in re.findall(r"([A-Z_]+)=(\S+)", block.replace("\\\n", " ")):
            env[name] = value
    return env
