"""A loopback TCP proxy in front of a real server: counts what the server sends to its
clients and, given a TLS context, speaks TLS to them (the server itself stays plain)."""

import asyncio
import contextlib
import ssl
from types import TracebackType
from typing import Self


class CountingProxy:
    def __init__(self, upstream: str, tls: ssl.SSLContext | None = None) -> None:
        self._upstream_host, _, port = upstream.rpartition(":")
        self._upstream_port = int(port)
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.bytes_to_clients = 0

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def connections_closed(self, timeout: float = 30) -> None:
        """Return once every connection so far has ended on both sides."""
        async with asyncio.timeout(timeout):
            while self._open:
                await asyncio.gather(*self._open, return_exceptions=True)

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._open.add(task)
        try:
            server_in, server_out = await asyncio.open_connection(self._upstream_host, self._upstream_port)
            self._writers |= {client_out, server_out}
            await asyncio.gather(
                self._pump(client_in, server_out, counted=False),
                self._pump(server_in, client_out, counted=True),
            )
        finally:
            self._open.discard(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, counted: bool) -> None:
        try:
            while chunk := await source.read(65536):
                if counted:
                    self.bytes_to_clients += len(chunk)
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, ssl.SSLError):
            pass  # one side went away: close the other
        finally:
            self._writers.discard(sink)
            sink.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await sink.wait_closed()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._tls)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        # Dropping each socket ends its pumps (the clients' pooled keep-alive connections too);
        # a TLS close would wait for the idle client's answer.
        for writer in list(self._writers):
            writer.transport.abort()
        await self.connections_closed()
