"""``modstream archive``: the decision archiver, in this process or in the background."""

from typing import Annotated

import typer

from modstream.cli.console import console
from modstream.core.settings import get_settings


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

    run_archiver(settings)
