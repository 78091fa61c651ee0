"""Worker processes for tests that need to start, signal or kill them one by one."""

import os
import subprocess
import sys
import time
from pathlib import Path

from modstream.core.settings import Settings
from modstream.stack.probes import worker_answers


def spawn_worker(
    settings: Settings, log_path: Path, timeout: float = 90.0, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A real ``modstream worker`` process, returned once it has partitions to work on."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modstream.cli", "worker"],
            env={**os.environ, **settings.as_env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_worker(settings.worker_web_port, process, log_path, timeout)
    return process


def wait_for_worker(port: int, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"worker exited with {process.returncode}; log {log_path}:\n{log_path.read_text()[-3000:]}"
            )
        if worker_answers(port):
            return
        time.sleep(0.5)
    raise RuntimeError(f"worker not ready after {timeout}s; log {log_path}:\n{log_path.read_text()[-3000:]}")


def stop_worker(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
