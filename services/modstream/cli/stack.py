"""``modstream stack …``: the local servers, started, stopped and watched."""

from typing import Annotated

import typer
from rich.table import Table

from modstream.cli.console import console, err
from modstream.core.settings import get_settings

app = typer.Typer(help="The local stack: real servers on 127.0.0.1, no Docker.", no_args_is_help=True)


@app.callback()
def _stack_installed() -> None:
    from modstream.stack.servers import missing_stack_packages

    missing = missing_stack_packages()
    if missing:
        err.print(
            f"[red]the local stack is not installed (missing: {', '.join(missing)}); "
            "install the 'stack' extra: scripts/bootstrap stack, or pip install -e '.\\[stack]'[/red]"
        )
        raise typer.Exit(2)


@app.command("up")
def up(
    timeout: Annotated[float, typer.Option(help="seconds to wait for each server")] = 180.0,
    worker: Annotated[bool, typer.Option(help="also start a worker in the background")] = False,
    dashboard: Annotated[bool, typer.Option(help="also start the reviewer dashboard in the background")] = False,
    archive: Annotated[bool, typer.Option(help="start the decision archiver in the background")] = True,
) -> None:
    """Start Kafka (Tansu), S3 (nanio), Redis (Valkey) and Triton, then create topics and bucket."""
    from modstream.core.provision import provision
    from modstream.stack import StackError, start_service, start_stack

    settings = get_settings()
    try:
        with console.status("starting the local stack…") as spinner:
            start_stack(settings, timeout=timeout, on_event=lambda server, msg: spinner.update(f"{server}: {msg}"))
            spinner.update("creating topics and buckets…")
            provision(settings)
            for name, wanted in (("archive", archive), ("worker", worker), ("dashboard", dashboard)):
                if wanted:
                    spinner.update(f"starting the {name}…")
                    start_service(settings, name, timeout)
    except StackError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    status()


@app.command("down")
def down() -> None:
    """Stop every server of the local stack (by PID) and clean Triton's shared memory."""
    from modstream.stack import stop_stack

    stopped = stop_stack(get_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command("status")
def status() -> None:
    """Each server, its address, its PID and whether it answers."""
    from modstream.stack import stack_status
    from modstream.stack.servers import SERVICES

    table = Table("server", "address", "pid", "answers", "log")
    statuses = stack_status(get_settings())
    for s in statuses:
        answers = "[green]yes[/green]" if s.answering else ("[yellow]no[/yellow]" if s.running else "[red]down[/red]")
        table.add_row(s.name, s.address, str(s.pid or "-"), answers, str(s.log_path))
    console.print(table)
    if not all(s.answering for s in statuses if s.name not in SERVICES):
        raise typer.Exit(1)
