"""``modstream``: one command for everything a person runs."""

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modstream.core.schemas import stale_schemas, write_schemas
from modstream.core.settings import get_settings

app = typer.Typer(help="Streaming image moderation: Kafka, Faust, S3 and Triton.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack: real servers on 127.0.0.1, no Docker.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
console = Console()
err = Console(stderr=True)


@stack_app.command("up")
def stack_up(
    timeout: Annotated[float, typer.Option(help="seconds to wait for each server")] = 180.0,
    worker: Annotated[bool, typer.Option(help="also start a worker in the background")] = False,
) -> None:
    """Start Kafka (Tansu), S3 (nanio), Redis (Valkey) and Triton, then create topics and bucket."""
    from modstream.stack import StackError, start_stack

    settings = get_settings()
    try:
        with console.status("starting the local stack…") as status:
            start_stack(settings, timeout=timeout, on_event=lambda server, msg: status.update(f"{server}: {msg}"))
            status.update("creating topics and the uploads bucket…")
            _prepare_stack(settings)
            if worker:
                status.update("starting a worker…")
                _start_worker(settings, timeout)
    except StackError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    stack_status()


@stack_app.command("down")
def stack_down() -> None:
    """Stop every server of the local stack (by PID) and clean Triton's shared memory."""
    from modstream.stack import stop_stack

    stopped = stop_stack(get_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@stack_app.command("status")
def stack_status() -> None:
    """Each server, its address, its PID and whether it answers."""
    from modstream.stack import stack_status as read_status

    table = Table("server", "address", "pid", "answers", "log")
    statuses = read_status(get_settings())
    for s in statuses:
        answers = "[green]yes[/green]" if s.answering else ("[yellow]no[/yellow]" if s.running else "[red]down[/red]")
        table.add_row(s.name, s.address, str(s.pid or "-"), answers, str(s.log_path))
    console.print(table)
    if not all(s.answering for s in statuses if s.name != "worker"):
        raise typer.Exit(1)


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Faust's own log level")] = "warning",
    detach: Annotated[bool, typer.Option(help="run in the background, managed with the stack")] = False,
) -> None:
    """Run the stream worker: upload events in, decisions out."""
    settings = get_settings()
    if detach:
        _start_worker(settings, timeout=60.0)
        console.print(f"worker running in the background; log: {settings.state_dir / 'logs' / 'worker.log'}")
        return
    from modstream.core.topics import ensure_topics
    from modstream.worker.app import run_worker

    asyncio.run(ensure_topics(settings))
    run_worker(settings, loglevel)


@app.command()
def upload(
    paths: Annotated[list[Path], typer.Argument(help="image files or folders")],
    tenant: Annotated[str, typer.Option(help="the platform tenant the images belong to")] = "demo",
    concurrency: Annotated[int, typer.Option(min=1, max=256)] = 8,
) -> None:
    """Upload images to the uploads bucket and publish one upload event per image."""
    from modstream.ingest.files import image_files

    try:
        files = image_files(paths)
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if not files:
        err.print("no image files found")
        raise typer.Exit(2)
    events = asyncio.run(_upload_with_progress(files, tenant, concurrency))
    console.print(f"uploaded {len(events)} images; follow their decisions with: modstream decisions --follow")


async def _upload_with_progress(files: list[Path], tenant: str, concurrency: int) -> list[object]:
    from modstream.ingest.files import upload_files
    from modstream.ingest.sdk import UploadClient

    columns = (TextColumn("uploading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("upload", total=len(files))
        async with UploadClient(get_settings()) as client:
            return list(
                await upload_files(
                    client, files, tenant, concurrency=concurrency, on_uploaded=lambda p, e: progress.advance(task)
                )
            )


@app.command()
def decisions(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep waiting for new decisions")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Print decisions from the decisions topic, oldest first."""
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


@app.command()
def schemas(check: Annotated[bool, typer.Option(help="fail if a schema file is out of date")] = False) -> None:
    """Write the JSON Schema of every record type to schemas/ (from the event models)."""
    if check:
        stale = stale_schemas()
        if stale:
            err.print(f"[red]out of date: {', '.join(stale)}[/red] (run: modstream schemas)")
            raise typer.Exit(1)
        console.print("schemas are up to date")
        return
    for path in write_schemas():
        console.print(f"wrote {path}")


def _prepare_stack(settings: object) -> None:
    from modstream.core.settings import Settings
    from modstream.core.storage import ObjectStore
    from modstream.core.topics import ensure_topics

    assert isinstance(settings, Settings)
    asyncio.run(ensure_topics(settings))
    ObjectStore(settings).ensure_bucket(settings.uploads_bucket)


def _start_worker(settings: object, timeout: float) -> None:
    raise NotImplementedError


if __name__ == "__main__":
    app()
