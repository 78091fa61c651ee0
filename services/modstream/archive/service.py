"""``modstream archive`` as a process: the archiver, and its /healthz, /livez and /metrics."""

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modstream.archive.archiver import Archiver, Observer
from modstream.archive.maintenance import every, maintain_logged
from modstream.archive.retention import Rules, enforce
from modstream.core import metrics
from modstream.core.logs import configure_logging
from modstream.core.settings import Settings

# A flush failing for longer than this (the store down, the bucket refused) is "degraded".
FAILING_SECONDS = 60.0


def health_app(archiver: Archiver) -> Starlette:
    async def healthz(request: Request) -> Response:
        failing = archiver.failing_since is not None and time.monotonic() - archiver.failing_since > FAILING_SECONDS
        body = {
            "status": "degraded" if failing else "ok",
            "pending_records": archiver.pending.count,
            "last_durable": archiver.last_durable.isoformat() if archiver.last_durable else None,
        }
        return JSONResponse(body, status_code=503 if failing else 200, headers={"cache-control": "no-store"})

    async def livez(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), headers={"content-type": metrics.CONTENT_TYPE})

    return Starlette(routes=[Route("/healthz", healthz), Route("/livez", livez), Route("/metrics", prometheus)])


async def serve(
    settings: Settings, stop: asyncio.Event, observers: Sequence[Observer] = (), retention: Rules | None = None
) -> None:
    """Archive until ``stop`` is set, then write what was read and return; meanwhile maintain
    the tables and (given the tenants' ``retention``) enforce it."""
    archiver = Archiver(settings, observers)
    web: uvicorn.Server | None = None
    tasks = [
        asyncio.create_task(
            every(settings.archive_maintain_seconds, stop, partial(maintain_logged, settings), "maintenance")
        )
    ]
    if retention is not None:
        enforcing = partial(enforce, settings, retention)
        tasks.append(asyncio.create_task(every(settings.archive_retention_seconds, stop, enforcing, "retention")))
    if settings.archive_web_port:
        config = uvicorn.Config(
            health_app(archiver),
            host=settings.bind_host,
            port=settings.archive_web_port,
            log_level="warning",
            access_log=False,
            log_config=None,
        )
        web = _Server(config)
        tasks.append(asyncio.create_task(web.serve()))
    try:
        await archiver.run(stop)
    finally:
        if web is not None:
            web.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)


class _Server(uvicorn.Server):
    """uvicorn beside the archiver: SIGTERM is the archiver's (write, then exit), not uvicorn's."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run_archiver(
    settings: Settings, observers: Callable[[], Sequence[Observer]] = tuple, retention: Rules | None = None
) -> None:
    """Run the archiver in this process until SIGINT/SIGTERM; ``observers`` are made in its
    event loop (their clients bind to it)."""
    configure_logging(root=True)
    metrics.configure_metrics("modstream-archive")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop, observers(), retention)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
