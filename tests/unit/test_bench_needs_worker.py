"""``modstream bench --images N`` without a worker says so at once, instead of waiting out its
ten-minute timeout for decisions that never come."""

import time
from pathlib import Path

import pytest
from modstream.cli import app
from modstream.core.ports import free_port
from modstream.core.settings import get_settings
from typer.testing import CliRunner


def test_no_worker_is_a_clear_error_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODSTREAM_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("MODSTREAM_WORKER_WEB_PORT", str(free_port()))  # nothing listens there
    get_settings.cache_clear()
    started = time.monotonic()
    try:
        done = CliRunner().invoke(app, ["bench", "--images", "5"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 1, done.output
    assert "needs a running worker" in done.output and "modstream stack up --worker" in done.output
    assert time.monotonic() - started < 60
