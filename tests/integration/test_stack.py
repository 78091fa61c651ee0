"""The local stack supervisor against real processes: start, status, stop by PID, failures."""

import os
import signal
import socket
from pathlib import Path

import psutil
import pytest
from modstream.core.settings import Settings
from modstream.stack import StackError, stack_status, start_stack, stop_stack

from tests.conftest import loopback_settings

pytestmark = pytest.mark.integration


def test_status_shows_every_server_answering(stack_settings: Settings) -> None:
    statuses = {s.name: s for s in stack_status(stack_settings)}
    assert set(statuses) == {"kafka", "s3", "redis", "triton", "worker", "dashboard", "archive"}
    for name in ("kafka", "s3", "redis", "triton"):
        status = statuses[name]
        assert status.running and status.answering and status.pid, name
        assert status.log_path.is_file() and status.log_path.is_relative_to(stack_settings.state_dir)
    assert not any(statuses[name].running for name in ("worker", "dashboard", "archive"))


def test_start_is_idempotent(stack_settings: Settings) -> None:
    before = {s.name: s.pid for s in stack_status(stack_settings)}
    events: list[tuple[str, str]] = []
    start_stack(stack_settings, only=["kafka", "redis"], on_event=lambda s, m: events.append((s, m)))
    assert ("kafka", "already running") in events and ("redis", "already running") in events
    assert {s.name: s.pid for s in stack_status(stack_settings)} == before


def test_stop_by_pid_then_status_shows_down(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path)
    start_stack(settings, only=["redis", "kafka"], timeout=60)
    pids = {s.name: s.pid for s in stack_status(settings, ["redis", "kafka"])}
    assert all(pids.values())
    assert sorted(stop_stack(settings, only=["redis", "kafka"])) == ["kafka", "redis"]
    for status in stack_status(settings, ["redis", "kafka"]):
        assert not status.running and not status.answering and status.pid is None
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids.values() if pid)
    assert not (tmp_path / "pids" / "redis.pid").exists()
    assert stop_stack(settings, only=["redis", "kafka"]) == []


def test_a_stale_pid_file_is_never_signalled(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path)
    (tmp_path / "pids").mkdir()
    (tmp_path / "pids" / "redis.pid").write_text("1")  # PID 1 runs something else entirely
    assert stop_stack(settings, only=["redis"]) == []
    assert psutil.pid_exists(1)


def test_port_taken_by_someone_else_is_a_clear_error(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path)
    port = int(settings.redis_url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(StackError) as caught:
            start_stack(settings, only=["redis"], timeout=20)
    message = str(caught.value)
    assert message.startswith("redis (127.0.0.1:") and "exited with code" in message
    assert str(tmp_path / "logs" / "redis.log") in message


def test_triton_that_cannot_load_its_models_names_itself_and_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "repository" / "moderation"
    (broken / "1").mkdir(parents=True)
    (broken / "config.pbtxt").write_text('name: "moderation"\nplatform: "no_such_platform"\n')
    settings: Settings = loopback_settings(tmp_path / "state", model_repository=tmp_path / "repository")
    try:
        with pytest.raises(StackError) as caught:
            start_stack(settings, only=["triton"], timeout=60)
    finally:
        stop_stack(settings, only=["triton"])
    message = str(caught.value)
    assert message.startswith("triton (127.0.0.1:")
    assert str(tmp_path / "state" / "logs" / "triton.log") in message


def test_regions_left_by_a_killed_triton_are_removed_by_down(tmp_path: Path) -> None:
    settings = loopback_settings(tmp_path)
    start_stack(settings, only=["triton"], timeout=120)
    (triton,) = stack_status(settings, ["triton"])
    assert triton.pid is not None
    stubs = psutil.Process(triton.pid).children(recursive=True)
    regions = [a for stub in stubs for a in stub.cmdline() if a.startswith("triton_python_backend_shm_region_")]
    assert regions, "the Python backend stubs name their regions"
    os.killpg(triton.pid, signal.SIGKILL)  # a crash: nobody cleans up
    psutil.wait_procs([psutil.Process(triton.pid), *stubs], timeout=10)
    assert all((Path("/dev/shm") / r).exists() for r in regions)

    assert stop_stack(settings, only=["triton"]) == []  # nothing left running to stop
    assert not any((Path("/dev/shm") / r).exists() for r in regions)
