"""`modstream` starts without loading what only some commands need: every CLI call (the test
suites run dozens as subprocesses) and --help would pay for numpy, the archive readers, the
event models and the clients at each start. The commands import those where they run.

Read from ``python -X importtime``, which names every module a fresh interpreter imports: what
loads is asserted, not how long it takes."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Loaded only by the commands that use them (numpy, the archive: pyarrow, pyiceberg, duckdb;
# the models: torch, onnx, PIL; the clients: httpx, redis, Kafka; settings and event models:
# pydantic).
HEAVY = (
    "numpy",
    "pyarrow",
    "pyiceberg",
    "duckdb",
    "torch",
    "onnx",
    "onnxruntime",
    "PIL",
    "tritonclient",
    "sklearn",
    "faiss",
    "httpx",
    "redis",
    "aiokafka",
    "faust",
    "minio",
    "pydantic",
    "pydantic_settings",
    "rich.progress",
)


def imported_modules(*args: str) -> set[str]:
    """The modules a fresh interpreter imports running ``python -X importtime *args``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # "import time: self [us] | cumulative | imported package", the name indented by depth
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in lines} - {"imported package"}


@pytest.mark.parametrize(
    "args",
    [("-c", "import modstream.cli"), ("-m", "modstream.cli", "--help")],
    ids=["import", "help"],
)
def test_the_cli_starts_without_the_heavy_modules(args: tuple[str, ...]) -> None:
    modules = imported_modules(*args)
    # The reading works: the CLI and every command group's module are in it.
    assert {"typer", "modstream.cli", "modstream.cli.model", "modstream.cli.bank"} <= modules, sorted(modules)
    loaded = [heavy for heavy in HEAVY if any(m == heavy or m.startswith(f"{heavy}.") for m in modules)]
    assert not loaded, f"imported at the CLI's start (import them in the command that needs them): {loaded}"
