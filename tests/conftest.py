"""Session fixtures: the real servers, each on a free loopback port, stopped by PID at the end."""

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from modstream.core.ports import free_port_block, free_ports
from modstream.core.settings import PROFILES, PROJECT_ROOT, Settings
from modstream.core.storage import ObjectStore
from modstream.models.weights import install_default_weights
from modstream.stack import start_stack, stop_stack
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

SHARED_CACHE = PROJECT_ROOT / ".modstream" / "cache"


_machine_lock: int | None = None
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")


def _one_stack_run_per_machine() -> None:
    """Several test runs starting Triton at once on a 2-core machine starve each other's
    servers into timeouts: a run that starts servers waits for the others (held until exit).
    A run spread over xdist's workers is one run: its controller holds the lock for them all
    (``pytest_configure``), so a worker never takes it."""
    global _machine_lock
    if _machine_lock is None and not os.environ.get("MODSTREAM_TEST_NO_LOCK") and not _XDIST_WORKER:
        _machine_lock = os.open("/tmp/modstream-test-stack.lock", os.O_CREAT | os.O_RDWR, 0o666)
        fcntl.flock(_machine_lock, fcntl.LOCK_EX)


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config.option, "numprocesses", None) and not _XDIST_WORKER:
        _one_stack_run_per_machine()  # before any worker starts a server


@contextmanager
def _installing() -> Iterator[None]:
    """One process at a time installs the weights into the project's repository (xdist's
    workers start their stacks together; the second finds them installed)."""
    SHARED_CACHE.mkdir(parents=True, exist_ok=True)
    with (SHARED_CACHE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def loopback_settings(state_dir: object, **overrides: object) -> Settings:
    """Settings for a private stack: its own state folder and free ports for everything."""
    _one_stack_run_per_machine()
    kafka, s3, redis, http, grpc, metrics, web, dashboard, dashboard_metrics, archive, statements = free_ports(11)
    values: dict[str, object] = {
        "kafka_bootstrap": f"127.0.0.1:{kafka}",
        "s3_endpoint": f"127.0.0.1:{s3}",
        "redis_url": f"redis://127.0.0.1:{redis}/0",
        "triton_http": f"127.0.0.1:{http}",
        "triton_grpc": f"127.0.0.1:{grpc}",
        "triton_metrics": f"127.0.0.1:{metrics}",
        "worker_web_port": web,
        "dashboard_port": dashboard,
        "dashboard_metrics_port": dashboard_metrics,
        "archive_web_port": archive,
        "statements_web_port": statements,
        "broker_store_endpoint": f"127.0.0.1:{free_port_block(12)}",
        "state_dir": state_dir,
        "broker_session_timeout": 2.0,
        # Memory storage: the local stack's default, s3, costs the broker 10-20 times its
        # record rate (docs/architecture.md) and would slow every test that streams; the tests
        # of durability (a broker restart, the chaos run) ask for s3.
        "broker_storage": "memory",
        "archive_flush_seconds": 2.0,  # tests wait for what the archiver writes
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


@contextmanager
def running_stack(settings: Settings) -> Iterator[Settings]:
    """The four servers of ``settings`` with the uploads bucket, stopped by PID afterwards."""
    _one_stack_run_per_machine()
    try:
        start_stack(settings, timeout=240)
        ObjectStore(settings).ensure_bucket(settings.uploads_bucket)
        yield settings
    finally:
        stop_stack(settings)


def policies_reviewing(folder: Path, queues: dict[str, str], version: str, profile: str = "full") -> Path:
    """The shipped policies in ``folder``, plus for each tenant one that sends every image no
    label blocks to review in its queue (sexual.any from 0): sample photos then take the
    human-review path for real, and (no double review) each leaves exactly one job."""
    shutil.copytree(PROJECT_ROOT / "config" / PROFILES[profile][1], folder, dirs_exist_ok=True)
    for tenant, queue in queues.items():
        (folder / "tenants" / f"{tenant}.yaml").write_text(
            f'version: "{version}"\ndouble_review_rate: 0.0\n'
            f"labels:\n  sexual.any: {{review_at: 0.0, block_at: 1.0, queue: {queue}}}\n"
        )
    return folder


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    """Every span this test process makes (a process has one tracer provider, set once)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture(scope="session")
def metric_reader() -> InMemoryMetricReader:
    """Every metric this test process records (a process has one meter provider, set once)."""
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """All four servers: Tansu, nanio, Valkey and Triton serving the project's model repository."""
    settings = loopback_settings(tmp_path_factory.mktemp("stack"))
    with _installing():
        install_default_weights(settings.model_repository, SHARED_CACHE)
    with running_stack(settings):
        yield settings


@pytest.fixture(scope="session")
def redis_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Valkey alone, for the tests of what lives only in Redis (review queues' order, exposure
    counters): no broker, object store or Triton to wait for."""
    settings = loopback_settings(tmp_path_factory.mktemp("redis-only"))
    try:
        start_stack(settings, only=["redis"], timeout=60)
        yield settings
    finally:
        stop_stack(settings, only=["redis"])
