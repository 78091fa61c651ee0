"""Start, watch and stop the local servers as plain processes, tracked by PID files.

Processes outlive the command that started them (their own session, output to a log
file). A PID file is trusted only while its process still runs the expected binary,
so a reused PID is never signalled.
"""

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from modstream.core.processes import wait_exited
from modstream.core.settings import Settings
from modstream.core.storage import ObjectMissing, ObjectStore, StorageUnavailable
from modstream.models.weights import install_default_weights
from modstream.stack.servers import (
    SERVERS,
    SERVICES,
    Layout,
    Server,
    broker_store_name,
    link_triton_backend,
    server_names,
)

Progress = Callable[[str, str], None]
SHM = Path("/dev/shm")


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServerStatus:
    name: str
    address: str
    pid: int | None
    running: bool
    answering: bool
    log_path: Path


def start_stack(
    settings: Settings,
    only: Sequence[str] | None = None,
    timeout: float = 180.0,
    on_event: Progress | None = None,
) -> list[ServerStatus]:
    """Start the servers not already running and wait until each answers.

    A broker on S3 storage needs its store: when nothing answers there, the store is started
    with it (and reported in the result) even if ``only`` leaves it out.
    """
    say = on_event or (lambda server, message: None)
    layout = Layout(settings.state_dir)
    names = _with_broker_store(settings, layout, list(only or server_names(settings)))
    if "triton" in names:
        say("triton", "checking the model weights")
        install_default_weights(settings.model_repository, layout.cache, ensemble=settings.triton_model)
        link_triton_backend(layout)
    servers = {name: SERVERS[name](settings, layout) for name in names}
    # Launch all first, then wait: Triton's ~10 s start overlaps the others'. A broker on S3
    # storage is launched last, once its store answers and holds the broker's bucket.
    store = broker_store_name(settings)
    broker_waits = "kafka" in servers and store is not None
    launched = {name: _launch(s, layout, say) for name, s in servers.items() if not (broker_waits and name == "kafka")}
    answering: set[str] = set()
    if broker_waits:
        if store in servers:
            _wait_until_answering(servers[store], launched[store], layout, timeout, say)
            answering.add(store)
        _ensure_broker_bucket(settings, timeout, say)
        launched["kafka"] = _launch(servers["kafka"], layout, say)
    for name, server in servers.items():
        if name not in answering:
            _wait_until_answering(server, launched[name], layout, timeout, say)
        if name == "triton":
            _remember_shm_regions(server, layout)
    return stack_status(settings, names)


def restart_server(
    settings: Settings, name: str, timeout: float = 180.0, on_event: Progress | None = None
) -> ServerStatus:
    """Stop one server or service (by PID; nothing to stop after a crash) and start it again,
    waiting until it answers; the others keep running. ``modstream stack restart NAME``."""
    if name not in SERVERS and name not in SERVICES:
        raise StackError(f"no server or service named {name!r}: one of {', '.join([*SERVERS, *SERVICES])}")
    say = on_event or (lambda server, message: None)
    if stop_stack(settings, only=[name]):
        say(name, "stopped")
    if name in SERVICES:
        return start_service(settings, name, timeout)
    statuses = start_stack(settings, only=[name], timeout=timeout, on_event=say)
    return next(status for status in statuses if status.name == name)


def _with_broker_store(settings: Settings, layout: Layout, names: list[str]) -> list[str]:
    """``names`` with the broker's store first when the broker keeps its data there and nothing
    answers at the store's address yet; without it when the broker is on memory storage."""
    store = broker_store_name(settings)
    names = [name for name in names if name != "broker-store" or store == "broker-store"]
    if "kafka" not in names or store is None or store in names:
        return names
    if SERVERS[store](settings, layout).answers():
        return names
    return [store, *names]


# Tansu keeps one object per record batch and reads slower as they pile up: a store of 378 MB
# decided 3.35 images/s where an empty one decided 10.59 (docs/settings.md).
FULL_BROKER_STORE_BYTES = 256 * 2**20


def full_broker_store(settings: Settings) -> str | None:
    """A warning when the local broker's own store has grown past the size where it slows."""
    if broker_store_name(settings) != "broker-store":
        return None
    folder = Layout(settings.state_dir).data_dir("broker-store")
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    if size < FULL_BROKER_STORE_BYTES:
        return None
    return (
        f"the broker's store holds {size / 2**20:.0f} MB and the broker slows as it fills "
        f"(docs/settings.md); to start it empty: modstream stack down, then delete {folder}"
    )


def _ensure_broker_bucket(settings: Settings, timeout: float, say: Progress) -> None:
    """The broker's bucket must exist before Tansu starts on it. A store that has just started
    may answer HTTP a moment before it serves buckets, so this retries until ``timeout``."""
    endpoint = settings.broker_store_endpoint
    say("kafka", f"checking its bucket {settings.broker_bucket} on {endpoint}")
    store = ObjectStore(settings.model_copy(update={"s3_endpoint": endpoint}), pool_size=1)
    deadline = time.monotonic() + timeout
    while True:
        try:
            store.ensure_bucket(settings.broker_bucket)
            return
        except (ObjectMissing, StorageUnavailable) as exc:
            if time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            raise StackError(
                f"kafka ({settings.kafka_bootstrap}) keeps its data in s3://{settings.broker_bucket} on "
                f"{endpoint}, which could not be created or checked: {exc} "
                "(or run it on memory storage: MODSTREAM_BROKER_STORAGE=memory)"
            ) from exc


def start_service(settings: Settings, name: str, timeout: float = 90.0) -> ServerStatus:
    """The worker or the dashboard in the background, managed like the servers."""
    layout = Layout(settings.state_dir)
    server = SERVICES[name](settings, layout)
    _wait_until_answering(server, _launch(server, layout, lambda s, m: None), layout, timeout, lambda s, m: None)
    return _status(server, layout)


def stop_stack(settings: Settings, only: Sequence[str] | None = None, timeout: float = 15.0) -> list[str]:
    """Stop (by PID) what runs; returns the names stopped. Our services go first."""
    layout = Layout(settings.state_dir)
    names = list(only or [*SERVICES, *SERVERS])
    stopped = []
    for name in names:
        server = (SERVICES | SERVERS)[name](settings, layout)
        process = _running(server, layout)
        if process is not None:
            _terminate(process, timeout)
            stopped.append(name)
        if name == "triton":
            _remove_shm_regions(layout)
        layout.pid_file(name).unlink(missing_ok=True)
    return stopped


def stack_status(settings: Settings, only: Sequence[str] | None = None) -> list[ServerStatus]:
    layout = Layout(settings.state_dir)
    servers = [SERVERS[name](settings, layout) for name in (only or server_names(settings))]
    if only is None:
        servers += [make(settings, layout) for make in SERVICES.values()]
    return [_status(server, layout) for server in servers]


def _status(server: Server, layout: Layout) -> ServerStatus:
    process = _running(server, layout)
    return ServerStatus(
        name=server.name,
        address=server.address,
        pid=process.pid if process else None,
        running=process is not None,
        answering=server.answers(),
        log_path=layout.log_file(server.name),
    )


def _launch(server: Server, layout: Layout, say: Progress) -> subprocess.Popen[bytes] | None:
    """Start the server unless ours already runs; None when it was already running."""
    if _running(server, layout) is not None:
        say(server.name, "already running")
        return None
    if server.answers():
        raise StackError(
            f"{server.name}: something else already answers on {server.address}; "
            f"stop it or choose another address (settings: MODSTREAM_*)"
        )
    for folder in (layout.pid_file(server.name).parent, layout.log_file(server.name).parent):
        folder.mkdir(parents=True, exist_ok=True)
    data = layout.data_dir(server.name)
    data.mkdir(parents=True, exist_ok=True)
    if removed := server.clear_leftovers():
        say(server.name, f"removed {removed} half-done writes a killed run left")
    say(server.name, f"starting on {server.address}")
    with layout.log_file(server.name).open("ab") as log:
        log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(server.argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            server.argv,
            cwd=data,
            env={**os.environ, **server.env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    layout.pid_file(server.name).write_text(str(process.pid))
    return process


def _wait_until_answering(
    server: Server, process: subprocess.Popen[bytes] | None, layout: Layout, timeout: float, say: Progress
) -> None:
    deadline = time.monotonic() + timeout
    say(server.name, f"waiting for it to answer on {server.address}")
    while time.monotonic() < deadline:
        if server.answers():
            say(server.name, "ready")
            return
        if process is not None and process.poll() is not None:
            layout.pid_file(server.name).unlink(missing_ok=True)
            raise StackError(_failure(server, layout, f"exited with code {process.returncode}"))
        time.sleep(0.3)
    raise StackError(_failure(server, layout, f"did not answer within {timeout:.0f} s"))


def _failure(server: Server, layout: Layout, what: str) -> str:
    log = layout.log_file(server.name)
    lines = log.read_text(errors="replace").splitlines()[-20:] if log.is_file() else []
    tail = "\n".join(f"    {line}" for line in lines)
    return f"{server.name} ({server.address}) {what}. Its log: {log}\n{tail}"


def _running(server: Server, layout: Layout) -> psutil.Process | None:
    pid_file = layout.pid_file(server.name)
    try:
        process = psutil.Process(int(pid_file.read_text().strip()))
        alive = process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        ours = alive and server.executable in " ".join(process.cmdline())
    except (FileNotFoundError, ValueError, psutil.Error):
        return None
    return process if ours else None


def _terminate(process: psutil.Process, timeout: float) -> None:
    """SIGTERM the server's whole process group (Triton's backend stubs too), then SIGKILL."""
    group = os.getpgid(process.pid)
    members = [process, *process.children(recursive=True)]
    os.killpg(group, signal.SIGTERM)
    alive = wait_exited(members, timeout)
    if alive:
        os.killpg(group, signal.SIGKILL)
        wait_exited(alive, 5)


def _remember_shm_regions(server: Server, layout: Layout) -> None:
    """Note the shared-memory regions of our Triton's Python stubs (named in their arguments).

    A killed Triton leaves them in /dev/shm; written down now, ``down`` can remove
    exactly ours later, even when the server is already gone.
    """
    process = _running(server, layout)
    if process is None:
        return
    regions: set[str] = set()
    for child in process.children(recursive=True):
        try:
            regions.update(arg for arg in child.cmdline() if arg.startswith("triton_python_backend_shm_region_"))
        except psutil.Error:
            continue
    record = layout.shm_record
    known = set(record.read_text().split()) if record.is_file() else set()
    record.write_text("\n".join(sorted(known | regions)) + "\n")


def _remove_shm_regions(layout: Layout) -> None:
    record = layout.shm_record
    if not record.is_file():
        return
    for region in record.read_text().split():
        if region.startswith("triton_python_backend_shm_region_"):
            (SHM / region).unlink(missing_ok=True)
    record.unlink()
