"""``modstream upload`` and ``modstream decisions``: images in, their decisions out."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live

from modstream.cli.console import console, err, get_settings, progress_bar

if TYPE_CHECKING:
    from modstream.core.events import ImageUploaded


def upload(
    paths: Annotated[list[Path], typer.Argument(help="image files or folders")],
    # No default: a tenant chooses the policy, and a silent one (the demo's) would apply
    # thresholds nobody picked for these images.
    tenant: Annotated[str, typer.Option(help="the platform tenant the images belong to (its policy applies)")],
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 8,
    subject: Annotated[
        str | None, typer.Option(help="the uploader's pseudonymous id, on every event (`modstream erase --subject`)")
    ] = None,
) -> None:
    """Upload images to the uploads bucket and publish one upload event per image."""
    import asyncio

    from modstream.ingest.files import image_files

    try:
        files = image_files(paths)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if not files:
        err.print("no image files found")
        raise typer.Exit(2)
    from modstream.core.events import NotAnId, check_ids

    try:
        check_ids(subject=subject)
    except NotAnId as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    events = asyncio.run(upload_with_progress(files, tenant, concurrency, subject))
    console.print(f"uploaded {len(events)} images; follow their decisions with: modstream decisions --follow")


async def upload_with_progress(
    files: list[Path], tenant: str, concurrency: int, subject: str | None = None
) -> "list[ImageUploaded]":
    from modstream.ingest.files import upload_files
    from modstream.ingest.sdk import UploadClient

    with progress_bar() as progress:
        task = progress.add_task("uploading", total=len(files))
        async with UploadClient(get_settings()) as client:
            return list(
                await upload_files(
                    client,
                    files,
                    tenant,
                    concurrency=concurrency,
                    subject=subject,
                    on_uploaded=lambda p, e: progress.advance(task),
                )
            )


def decisions(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep waiting for new decisions")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Print decisions from the decisions topic, oldest first."""
    import asyncio

    asyncio.run(_print_decisions(follow, as_json))


async def _print_decisions(follow: bool, as_json: bool) -> None:
    from modstream.decisions.follow import read_decisions
    from modstream.decisions.render import decision_cells, decision_json, decisions_table

    settings = get_settings()
    if as_json:
        async for decision in read_decisions(settings, follow=follow):
            print(decision_json(decision), flush=True)
        return
    table = decisions_table()
    with Live(table, console=console, auto_refresh=False) as live:
        async for decision in read_decisions(settings, follow=follow):
            table.add_row(*decision_cells(decision))
            live.refresh()
