"""The container image's layout without Docker: the wheel installed on its own (no checkout
around it), configured only by the Dockerfile's ENV, runs init, the dashboard and a worker."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from modstream.core.ports import free_port
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.stack.probes import http_answers

from tests.conftest import SHARED_CACHE
from tests.package import build_wheel, image_environment
from tests.workers import stop_worker, wait_for_worker

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
TOPICS = ("UPLOADS", "DECISIONS", "REVIEW_REQUESTS", "DEAD_LETTER", "REVIEW_VERDICTS", "SHADOW")


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_installed_wheel_with_the_image_environment_runs_every_service(
    stack_settings: Settings, tmp_path: Path
) -> None:
    site = tmp_path / "site-packages"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(build_wheel(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr

    # The image's folders, here under tmp_path: what the Dockerfile copies, nothing else.
    root = tmp_path / "image"
    shutil.copytree(PROJECT_ROOT / "config", root / "app" / "config")
    shutil.copytree(PROJECT_ROOT / "model_repository", root / "app" / "model_repository")
    (root / "var" / "lib" / "modstream" / "users").mkdir(parents=True)
    shutil.copytree(SHARED_CACHE, root / "var" / "lib" / "modstream" / "cache")  # wheels, not re-downloaded
    image = {
        name: value.replace("/app", str(root / "app")).replace("/var/lib", str(root / "var" / "lib"))
        for name, value in image_environment().items()
        if name.startswith("MODSTREAM_")
    }
    assert image.pop("MODSTREAM_BIND_HOST") == "0.0.0.0"  # here: loopback only
    web, metrics = free_port(), free_port()
    servers = {
        k: v
        for k, v in stack_settings.as_env().items()
        if k.split("_")[1] in {"KAFKA", "S3", "REDIS", "TRITON"} or k == "MODSTREAM_PRODUCER_MAX_BATCH_SIZE"
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODSTREAM_")},
        **servers,
        **image,
        "MODSTREAM_UPLOADS_BUCKET": "image-layout",
        "MODSTREAM_CONSUMER_GROUP": "image-layout",
        "MODSTREAM_WORKER_WEB_PORT": str(free_port()),
        **{f"MODSTREAM_TOPIC_{t}": f"image-layout.{t.lower()}" for t in TOPICS},
        "MODSTREAM_DASHBOARD_PORT": str(web),
        "MODSTREAM_DASHBOARD_METRICS_PORT": str(metrics),
        "PYTHONPATH": str(site),
    }
    workdir = tmp_path / "cwd"  # not the checkout: nothing may be found relative to it
    workdir.mkdir()

    where = run(env, workdir, "-c", "import modstream; print(modstream.__file__)")
    assert where.stdout.strip() == str(site / "modstream" / "__init__.py"), where.stderr

    init = run(env, workdir, "-m", "modstream.cli", "init")
    assert init.returncode == 0, init.stdout + init.stderr
    user = run({**env, "MODSTREAM_NEW_USER_PASSWORD": "image-admin-pw"}, workdir, "-m", "modstream.cli",
               "dashboard", "add-user", "admin", "--role", "admin")  # fmt: skip
    assert user.returncode == 0, user.stderr
    assert (root / "var" / "lib" / "modstream" / "users" / "dashboard-users.toml").is_file()

    log = (tmp_path / "dashboard.log").open("wb")
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "modstream.cli", "dashboard"], env=env, cwd=workdir, stdout=log, stderr=log
    )
    try:
        login = f"http://127.0.0.1:{web}/login"
        for _ in range(120):
            if http_answers(login, want_ok=True):
                break
            assert dashboard.poll() is None, (tmp_path / "dashboard.log").read_text()
            time.sleep(0.5)
        page = httpx.get(login, timeout=5)
        assert page.status_code == 200, (tmp_path / "dashboard.log").read_text()
        assert '<form method="post" action="/login"' in page.text
        assert httpx.get(f"http://127.0.0.1:{web}/static/dashboard.css", timeout=5).status_code == 200
        # Our meter provider answers there (queue gauges appear once a queue has jobs).
        assert 'service_name="modstream-dashboard"' in httpx.get(f"http://127.0.0.1:{metrics}/metrics", timeout=5).text
    finally:
        dashboard.terminate()
        dashboard.wait(15)
        log.close()

    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "modstream.cli", "worker"], env=env, cwd=workdir, stdout=log, stderr=log
        )
    try:
        wait_for_worker(int(env["MODSTREAM_WORKER_WEB_PORT"]), worker, worker_log, timeout=120)
    finally:
        stop_worker(worker)
    assert (root / "var" / "lib" / "modstream" / "faust").is_dir()
    assert not list(workdir.iterdir()), "the services wrote into their working directory"
