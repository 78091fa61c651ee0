import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore

WORKER_MAX_IMAGE_BYTES = 5 * 1024 * 1024


REVIEW_TENANT = "review-e2e"
REVIEW_QUEUE = "e2e-review"


@pytest.fixture(scope="session")
def worker_settings(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # The shipped policies, plus one tenant whose policy sends every safe-looking image
    # to review: the sample photos then take the human-review path for real.
    policies = tmp_path_factory.mktemp("policies")
    shutil.copytree(PROJECT_ROOT / "config" / "policies", policies, dirs_exist_ok=True)
    (policies / "tenants" / f"{REVIEW_TENANT}.yaml").write_text(
        f'version: "e2e-1"\nlabels:\n  sfw: {{review_at: 0.5, block_at: 1.0, queue: {REVIEW_QUEUE}}}\n'
    )
    settings = stack_settings.model_copy(
        update={
            "max_image_bytes": WORKER_MAX_IMAGE_BYTES,
            "consumer_group": "e2e-worker",
            "policies_dir": policies,
        }
    )
    ObjectStore(settings).ensure_bucket(settings.uploads_bucket)
    return settings


@pytest.fixture(scope="session")
def worker(worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process (``modstream worker``), stopped by PID at the end."""
    log_path = tmp_path_factory.mktemp("worker") / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "modstream.cli", "worker"],
            env={**os.environ, **worker_settings.as_env()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_worker(worker_settings.worker_web_port, process, log_path)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_worker(port: int, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"worker exited with {process.returncode}; log {log_path}:\n{log_path.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json().get("status") == "ok":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"worker not ready after {timeout}s; log {log_path}:\n{log_path.read_text()[-3000:]}")
