"""``modstream stack …``: the local servers, started, stopped and watched."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modstream.cli.console import console, err, get_settings

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
    statements: Annotated[
        bool, typer.Option(help="also write statements of reasons (and submit them) in the background")
    ] = False,
) -> None:
    """Start Kafka (Tansu, on its store: SeaweedFS), S3 (nanio), Redis (Valkey) and Triton, then
    create topics and bucket."""
    from modstream.core.provision import provision
    from modstream.stack import StackError, full_broker_store, start_service, start_stack

    settings = get_settings()
    try:
        with console.status("starting the local stack…") as spinner:
            start_stack(settings, timeout=timeout, on_event=lambda server, msg: spinner.update(f"{server}: {msg}"))
            spinner.update("creating topics and buckets…")
            provision(settings)
            wanted_services = {"archive": archive, "worker": worker, "dashboard": dashboard, "statements": statements}
            for name, wanted in wanted_services.items():
                if wanted:
                    spinner.update(f"starting the {name}…")
                    start_service(settings, name, timeout)
    except StackError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    status()
    if (warning := full_broker_store(settings)) is not None:
        err.print(f"[yellow]{warning}[/yellow]")


@app.command("down")
def down() -> None:
    """Stop every server of the local stack (by PID) and clean Triton's shared memory."""
    from modstream.stack import stop_stack

    stopped = stop_stack(get_settings())
    console.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command("restart")
def restart(
    name: Annotated[str, typer.Argument(help="kafka, broker-store, s3, redis, triton, worker, dashboard or archive")],
    timeout: Annotated[float, typer.Option(help="seconds to wait for it to answer")] = 180.0,
) -> None:
    """Restart one server (or background service) alone: stop it by PID, start it, wait until it answers.

    The broker keeps its topics, records and committed offsets across a restart on S3
    storage (the default, in the broker-store server); on memory storage
    (MODSTREAM_BROKER_STORAGE=memory) it starts empty.
    """
    from modstream.stack import StackError, restart_server

    settings = get_settings()
    try:
        with console.status(f"restarting {name}…") as spinner:
            restarted = restart_server(
                settings, name, timeout, on_event=lambda server, msg: spinner.update(f"{server}: {msg}")
            )
    except StackError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"{restarted.name} answers on {restarted.address} (pid {restarted.pid})")


@app.command("bench")
def bench(
    records: Annotated[int, typer.Option(min=1, help="records produced (and consumed) per storage and mode")] = 2_000,
    size: Annotated[int, typer.Option(min=1, help="bytes per record (an upload event is about 400)")] = 512,
    in_flight: Annotated[int, typer.Option(min=1, help="unacknowledged records at most")] = 64,
    out: Annotated[Path | None, typer.Option(help="where to write the JSON report")] = None,
) -> None:
    """What the broker's durable (S3) storage costs against memory storage, on private brokers.

    One after the other, a private Tansu on memory storage and one on S3 storage (with its own
    local S3 server; free loopback ports, a temporary folder) get the same load: produce with
    acks=all (one record per batch as the local stack sends them, then batched), a consumer
    group reading and committing, then a SIGKILL and a restart. Your stack is not touched.
    """
    from modstream.bench.run import write_report
    from modstream.stack.broker_bench import run_broker_bench

    with console.status("measuring the broker…") as spinner:
        report = run_broker_bench(get_settings(), records, size, in_flight, on_stage=spinner.update)
    path = write_report(report, "broker-bench", out)
    console.print(_broker_table(report))
    console.print(f"report: {path}")


def _broker_table(report: dict[str, Any]) -> Table:
    memory, s3 = report["storages"]["memory"], report["storages"]["s3"]
    table = Table(f"{report['records']} records of {report['record_bytes']} B", "memory storage", "s3 storage")
    for mode, label in (
        ("produce_one_per_batch", "produce, one record a batch"),
        ("produce_batched", "produce, batched"),
    ):
        table.add_row(
            label,
            *(
                f"{run[mode]['records_per_second']:,.0f}/s; "
                f"p50 {run[mode]['latency_p50_ms']} ms, p99 {run[mode]['latency_p99_ms']} ms"
                for run in (memory, s3)
            ),
        )
    table.add_row(
        "consume + commit each fetch",
        *(
            f"{run['consume']['records_per_second']:,.0f}/s; commit p50 {run['consume'].get('commit_p50_ms')} ms"
            for run in (memory, s3)
        ),
    )
    table.add_row("group join", *(f"{run['consume']['group_join_seconds']} s" for run in (memory, s3)))
    table.add_row(
        "after SIGKILL + restart",
        *(
            f"{run['restart']['records_left']} of {run['restart']['records_produced']} records left; "
            f"answering in {run['restart']['seconds_until_answering']} s"
            for run in (memory, s3)
        ),
    )
    return table


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
