"""Triton's own ``perf_analyzer``, fetched from package registries and pointed at our ensemble.

PyPI's ``perf-analyzer`` is an empty placeholder at the version the registry holds, and
current ``tritonclient`` wheels no longer carry the binary; ``tritonclient`` 2.49.0's
manylinux wheel does. It links two libraries the machine may lack: libb64 (Debian's
``libb64-0d``, taken with ``apt-get download``, so no root is needed once the package
lists exist) and the CUDA 12 runtime (PyPI's ``nvidia-cuda-runtime-cu12``; only loaded,
the CPU is enough). Everything lands in one tools folder under the state folder.
"""

import base64
import json
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

from modstream.core.packages import PackageError, fetch_wheel, read_member

WHEEL = ("tritonclient", "2.49.0")
CUDA_RUNTIME = ("nvidia-cuda-runtime-cu12", "12.9.79")
LIBB64 = "libb64-0d"


class ToolMissing(RuntimeError):
    pass


def installed(tools: Path, cache_dir: Path) -> Path:
    """The perf_analyzer binary in ``tools``, installed first if missing (wheels via ``cache_dir``)."""
    binary = tools / "perf_analyzer"
    if binary.is_file():
        return binary
    (tools / "lib").mkdir(parents=True, exist_ok=True)
    try:
        client = fetch_wheel(*WHEEL, cache_dir)
        cuda = fetch_wheel(*CUDA_RUNTIME, cache_dir)
        (tools / "lib" / "libcudart.so.12").write_bytes(read_member(cuda, "nvidia/cuda_runtime/lib/libcudart.so.12"))
        with tempfile.TemporaryDirectory() as scratch:
            _debian_library(LIBB64, Path(scratch), tools / "lib")
        # Written last: its presence means the whole tool is in place.
        binary.write_bytes(read_member(client, f"tritonclient-{WHEEL[1]}.data/data/bin/perf_analyzer"))
    except PackageError as exc:
        raise ToolMissing(str(exc)) from exc
    binary.chmod(0o755)
    return binary


def input_data(images: list[bytes]) -> dict[str, object]:
    """perf_analyzer's --input-data for the ensemble: one request per image.

    ``b64`` holds the tensor as Triton lays it out, so each BYTES element carries its
    4-byte little-endian length first.
    """
    return {
        "data": [
            {"IMAGE": {"b64": base64.b64encode(struct.pack("<I", len(image)) + image).decode(), "shape": [1]}}
            for image in images
        ]
    }


def command(binary: Path, grpc: str, model: str, data_file: Path, report: Path, extra: list[str]) -> list[str]:
    return [
        str(binary),
        "-m",
        model,
        "-u",
        grpc,
        "-i",
        "grpc",
        "--input-data",
        str(data_file),
        "-f",
        str(report),
        *extra,
    ]


def environment(binary: Path) -> dict[str, str]:
    return {"LD_LIBRARY_PATH": str(binary.parent / "lib")}


def _debian_library(package: str, work: Path, lib: Path) -> None:
    if subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True).returncode != 0:
        _run(["apt-get", "update", "-qq"])  # empty package lists on a new machine; needs root
        _run(["apt-get", "download", package], cwd=work)
    (deb,) = work.glob(f"{package}_*.deb")
    unpacked = work / "deb"
    _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    for library in unpacked.glob("usr/lib/*/libb64.so*"):
        shutil.copy(library, lib / library.name)


def _run(args: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ToolMissing(f"{' '.join(args[:4])}… failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def write_input(images: list[bytes], path: Path) -> Path:
    path.write_text(json.dumps(input_data(images)))
    return path
