"""Worker processes for tests that need to start, signal or kill them one by one."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from modstream.core.settings import Settings
from modstream.stack.probes import worker_answers


def spawn_worker(
    settings: Settings, log_path: Path, timeout: float = 90.0, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """A real ``modstream worker`` process, returned once it has partitions to work on."""
    process = start_worker(settings, log_path, env)
    wait_for_worker(settings.worker_web_port, process, log_path, timeout)
    return process


def start_worker(settings: Settings, log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A real ``modstream worker`` process, returned at once (it may never get a partition)."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "modstream.cli", "worker"],
            env={**os.environ, **settings.as_env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


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


def log_size(log_path: Path) -> int:
    """Where the log ends now: pass it to ``log_line`` to look only at what comes next."""
    return log_path.stat().st_size


async def log_line(
    log_path: Path, wanted: Callable[[dict[str, Any]], bool], after: int = 0, timeout: float = 60.0
) -> dict[str, Any]:
    """The first JSON line the worker logged past byte ``after`` for which ``wanted`` is true:
    the positive signal that it did something that leaves no record on a topic."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (found := _first_line(log_path, wanted, after)) is not None:
            return found
        await asyncio.sleep(0.25)
    raise AssertionError(f"no such line in {log_path} after {timeout} s:\n{_tail(log_path)}")


def _first_line(log_path: Path, wanted: Callable[[dict[str, Any]], bool], after: int) -> dict[str, Any] | None:
    with log_path.open("rb") as log:
        log.seek(after)
        for raw in log:
            try:
                line = json.loads(raw)
            except ValueError:
                continue  # Faust's own lines are plain text
            if isinstance(line, dict) and wanted(line):
                return line
    return None


def _tail(log_path: Path) -> str:
    return log_path.read_bytes()[-3000:].decode(errors="replace")


def assigned(settings: Settings) -> list[str]:
    """The uploads partitions the worker on ``settings.worker_web_port`` holds, as it reports them."""
    answer = httpx.get(f"http://127.0.0.1:{settings.worker_web_port}/healthz", timeout=5).json()
    return [tp for tp in answer["assigned"] if tp.startswith(f"{settings.topic_uploads}:")]
