"""``modstream archive``: the decision archiver, in this process or in the background."""

from typing import TYPE_CHECKING, Annotated

import typer

from modstream.cli.console import console
from modstream.core.settings import Settings, get_settings

if TYPE_CHECKING:
    from modstream.archive.archiver import Observer


def archive(
    detach: Annotated[bool, typer.Option(help="run in the background, managed with the stack")] = False,
) -> None:
    """Archive decisions, verdicts and shadow scores as Parquet files on the object store."""
    settings = get_settings()
    if detach:
        from modstream.stack import start_service

        start_service(settings, "archive", timeout=60.0)
        console.print(f"archiver running in the background; log: {settings.state_dir / 'logs' / 'archive.log'}")
        return
    from modstream.archive.service import run_archiver

    run_archiver(settings, lambda: archive_observers(settings))


def archive_observers(settings: Settings) -> "list[Observer]":
    """What watches the archived stream: drift, with its audit-rate changes in the audit log."""
    import redis.asyncio as aioredis

    from modstream.quality.drift_monitor import DriftMonitor
    from modstream.review.audit import AuditLog

    client = aioredis.Redis.from_url(settings.redis_url)
    return [DriftMonitor(client, settings, AuditLog(client).append)]
