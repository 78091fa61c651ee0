"""``modstream``: one command for everything a person runs."""

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import psutil
import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modstream.core.events import ImageUploaded, ModerationDecision
from modstream.core.schemas import stale_schemas, write_schemas
from modstream.core.settings import Settings, get_settings
from modstream.models.commands import model_app

if TYPE_CHECKING:
    from modstream.demo.guide import Tally

app = typer.Typer(help="Streaming image moderation: Kafka, Faust, S3 and Triton.", no_args_is_help=True)
stack_app = typer.Typer(help="The local stack: real servers on 127.0.0.1, no Docker.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")

dashboard_app = typer.Typer(help="The reviewer dashboard and its users.")
app.add_typer(model_app, name="model")
app.add_typer(dashboard_app, name="dashboard")
console = Console()
err = Console(stderr=True)


@stack_app.callback()
def _stack_installed() -> None:
    from modstream.stack.servers import missing_stack_packages

    missing = missing_stack_packages()
    if missing:
        err.print(
            f"[red]the local stack is not installed (missing: {', '.join(missing)}); "
            "install the 'stack' extra: scripts/bootstrap stack, or pip install -e '.\\[stack]'[/red]"
        )
        raise typer.Exit(2)


@stack_app.command("up")
def stack_up(
    timeout: Annotated[float, typer.Option(help="seconds to wait for each server")] = 180.0,
    worker: Annotated[bool, typer.Option(help="also start a worker in the background")] = False,
    dashboard: Annotated[bool, typer.Option(help="also start the reviewer dashboard in the background")] = False,
) -> None:
    """Start Kafka (Tansu), S3 (nanio), Redis (Valkey) and Triton, then create topics and bucket."""
    from modstream.stack import StackError, start_service, start_stack

    settings = get_settings()
    try:
        with console.status("starting the local stack…") as status:
            start_stack(settings, timeout=timeout, on_event=lambda server, msg: status.update(f"{server}: {msg}"))
            status.update("creating topics and the uploads bucket…")
            _prepare_stack(settings)
            for name, wanted in (("worker", worker), ("dashboard", dashboard)):
                if wanted:
                    status.update(f"starting the {name}…")
                    start_service(settings, name, timeout)
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
    if not all(s.answering for s in statuses if s.name not in ("worker", "dashboard")):
        raise typer.Exit(1)


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Faust's own log level")] = "warning",
    detach: Annotated[bool, typer.Option(help="run in the background, managed with the stack")] = False,
) -> None:
    """Run the stream worker: upload events in, decisions out."""
    settings = get_settings()
    if detach:
        from modstream.stack import start_service

        start_service(settings, "worker", timeout=60.0)
        console.print(f"worker running in the background; log: {settings.state_dir / 'logs' / 'worker.log'}")
        return
    from modstream.core.topics import ensure_topics
    from modstream.worker.app import run_worker

    _check_uploads_bucket(settings)
    asyncio.run(ensure_topics(settings))
    run_worker(settings, loglevel)


def _progress() -> Progress:
    """A bar per task: its description, done of total, time so far."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def _check_uploads_bucket(settings: Settings) -> None:
    """Refuse to start on a configuration mistake; an object store that is down is waited for later."""
    from modstream.core.storage import ObjectMissing, ObjectStore, StorageDenied, StorageUnavailable

    try:
        ObjectStore(settings, pool_size=1).check_bucket(settings.uploads_bucket)
    except StorageDenied as exc:
        err.print(
            f"[red]the object store at {settings.s3_endpoint} refused the credentials "
            f"(MODSTREAM_S3_ACCESS_KEY / MODSTREAM_S3_SECRET_KEY): {exc}[/red]"
        )
        raise typer.Exit(2) from exc
    except ObjectMissing as exc:
        err.print(f"[red]{exc}: create it, or set MODSTREAM_UPLOADS_BUCKET[/red]")
        raise typer.Exit(2) from exc
    except StorageUnavailable as exc:
        err.print(f"[yellow]the object store does not answer yet ({exc}); the worker will wait for it[/yellow]")


@app.command()
def init() -> None:
    """Prepare the servers for a first run: topics, the uploads bucket, the default model's weights.

    Safe to run again: what exists is left as it is. The container stack runs it once at start.
    """
    from modstream.models.weights import install_default_weights

    settings = get_settings()
    weights = install_default_weights(settings.model_repository, settings.state_dir / "cache")
    console.print(f"default model weights: {weights}")
    _prepare_stack(settings)
    console.print(f"topics on {settings.kafka_bootstrap} and bucket s3://{settings.uploads_bucket}: ready")


@app.command()
def upload(
    paths: Annotated[list[Path], typer.Argument(help="image files or folders")],
    # No default: a tenant chooses the policy, and a silent one (the demo's) would apply
    # thresholds nobody picked for these images.
    tenant: Annotated[str, typer.Option(help="the platform tenant the images belong to (its policy applies)")],
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


async def _upload_with_progress(files: list[Path], tenant: str, concurrency: int) -> list[ImageUploaded]:
    from modstream.ingest.files import upload_files
    from modstream.ingest.sdk import UploadClient

    with _progress() as progress:
        task = progress.add_task("uploading", total=len(files))
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


@dashboard_app.callback(invoke_without_command=True)
def dashboard(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(help="port (default MODSTREAM_DASHBOARD_PORT)")] = None,
) -> None:
    """Serve the reviewer dashboard on MODSTREAM_BIND_HOST (and feed review requests into the queues)."""
    if ctx.invoked_subcommand is not None:
        return
    from modstream.review.web.server import run_dashboard, users_file

    settings = get_settings()
    if not users_file(settings).is_file():
        err.print("no dashboard users yet: add one with `modstream dashboard add-user NAME --role admin`")
        raise typer.Exit(2)
    console.print(f"dashboard on http://{settings.bind_host}:{port or settings.dashboard_port}/")
    run_dashboard(settings, port=port)


@dashboard_app.command("add-user")
def dashboard_add_user(
    name: str,
    role: Annotated[str, typer.Option(help="reviewer or admin")] = "reviewer",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="MODSTREAM_NEW_USER_PASSWORD",
            help="asked for when not given (or taken from MODSTREAM_NEW_USER_PASSWORD, for scripts)",
        ),
    ] = "",
) -> None:
    """Add a dashboard user (or set their role and password); the password is stored hashed."""
    from modstream.review.web.server import users_file
    from modstream.review.web.users import add_user

    if role not in ("reviewer", "admin"):
        err.print("role must be reviewer or admin")
        raise typer.Exit(2)
    if len(password) < 8:
        err.print("use a password of 8 characters or more")
        raise typer.Exit(2)
    path = users_file(get_settings())
    add_user(path, name, role, password)  # type: ignore[arg-type]
    console.print(f"{name} ({role}) saved in {path}")


@dashboard_app.command("token")
def dashboard_token(name: str) -> None:
    """Mint an API token for a dashboard user (shown once; the previous one stops working)."""
    from modstream.review.web.server import users_file
    from modstream.review.web.users import mint_token

    try:
        print(mint_token(users_file(get_settings()), name))
    except KeyError as exc:
        err.print(str(exc))
        raise typer.Exit(2) from exc


@model_app.command("perf", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def model_perf(
    context: typer.Context,
    model: Annotated[
        str | None, typer.Option(help="the Triton model to measure (default: the serving ensemble)")
    ] = None,
    images: Annotated[int, typer.Option(help="how many sample photos to send, in turn")] = 16,
) -> None:
    """Measure a model on the running stack with Triton's perf_analyzer (installed on first use).

    Extra options go to perf_analyzer as they are, e.g. --concurrency-range 1:16:2.
    """
    import subprocess

    from modstream.bench import perf_analyzer
    from modstream.demo.samples import sample_images

    settings = get_settings()
    tools = settings.state_dir / "tools" / "perf_analyzer"
    console.print(f"perf_analyzer in {tools} (installed on first use: two wheels from PyPI, libb64 from Debian)")
    try:
        binary = perf_analyzer.installed(tools, settings.state_dir / "cache")
    except perf_analyzer.ToolMissing as exc:
        err.print(f"[red]could not install perf_analyzer: {exc}[/red]")
        raise typer.Exit(1) from exc
    photos = sample_images(settings.state_dir / "cache")[:images]
    data_file = perf_analyzer.write_input(photos, tools / "input.json")
    report = Path("artifacts") / "perf-analyzer.csv"
    report.parent.mkdir(exist_ok=True)
    extra = context.args or ["--concurrency-range", "1:8:2", "--measurement-interval", "5000"]
    args = perf_analyzer.command(binary, settings.triton_grpc, model or settings.triton_model, data_file, report, extra)
    console.print(" ".join(args))
    done = subprocess.run(args, env={**perf_analyzer.environment(binary)}, check=False)
    if done.returncode == 0:
        console.print(f"numbers also written to {report}")
    raise typer.Exit(done.returncode)


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


@app.command()
def demo(
    images: Annotated[int, typer.Option(min=1, help="how many sample images to upload")] = 24,
    timeout: Annotated[float, typer.Option(help="seconds to wait for all decisions")] = 300.0,
) -> None:
    """The guided first run: stack, worker, sample uploads, their decisions as they arrive, the review queue."""
    from modstream.demo import guide
    from modstream.review.web.server import users_file
    from modstream.review.web.users import add_user

    settings = get_settings()
    users = users_file(settings)
    password = guide.first_admin(users, lambda name, password: add_user(users, name, "admin", password))
    stack_up(timeout=300.0, worker=True, dashboard=True)
    samples = guide.sample_files(settings.state_dir, images)
    console.rule("uploading sample images")
    events = asyncio.run(_upload_with_progress(samples, guide.TENANT, concurrency=8))
    console.rule("decisions, as the worker publishes them")
    names = {e.event_id: e.metadata.get("filename", e.key) for e in events}
    tally = asyncio.run(_show_decisions_for(settings, names, timeout))
    missing, waiting = asyncio.run(_review_queues(settings, set(tally.in_review), timeout=60.0))
    dashboard_url = f"http://127.0.0.1:{settings.dashboard_port}/"
    for line in guide.closing_lines(tally, waiting, len(missing), dashboard_url, password):
        console.print(line)
    if not tally.complete:
        err.print(f"[red]only {len(tally.seen)} of {len(events)} decisions within {timeout:.0f}s[/red]")
        raise typer.Exit(1)


async def _show_decisions_for(settings: Settings, names: dict[str, str], timeout: float) -> "Tally":
    """Show each event's decision as it arrives; ``names`` maps event ids to image names."""
    from modstream.decisions.follow import read_decisions
    from modstream.decisions.render import decision_cells, decisions_table
    from modstream.demo.guide import follow_decisions

    table = decisions_table()

    def show(decision: ModerationDecision) -> None:
        table.add_row(*decision_cells(decision, names[decision.event_id]))
        live.refresh()

    with Live(table, console=console, auto_refresh=False) as live:
        decisions = read_decisions(settings, follow=True, event_ids=names)
        return await follow_decisions(decisions, len(names), show, timeout)


async def _review_queues(settings: Settings, job_ids: set[str], timeout: float) -> tuple[set[str], dict[str, int]]:
    """Once the dashboard has made a review job of each id (or at ``timeout``): the ids still
    missing, and each queue's pending jobs, read as the dashboard reads them."""
    from modstream.demo.guide import wait_for_jobs
    from modstream.review.service import ReviewService

    review = ReviewService(settings)

    async def has_job(job_id: str) -> bool:
        return await review.job(job_id) is not None

    try:
        missing = await wait_for_jobs(job_ids, has_job, timeout)
        return missing, {queue.name: queue.pending for queue in await review.queue_stats()}
    finally:
        await review.stop()


@app.command()
def bench(
    images: Annotated[int, typer.Option(min=1, help="how many images to push through the pipeline")] = 500,
    rate: Annotated[float, typer.Option(help="events per second; 0 publishes all at once")] = 0.0,
    out: Annotated[Path | None, typer.Option(help="where to write the JSON report")] = None,
    soak: Annotated[
        int, typer.Option(help="instead: this many events at once (e.g. 20000); lost, duplicates, memory")
    ] = 0,
) -> None:
    """Throughput and latency of the served pipeline vs the raw model in-process, same images."""
    from modstream.bench.run import NoServedModel, run_bench, write_report
    from modstream.demo.samples import sample_images

    settings = get_settings()
    pool = sample_images(settings.state_dir / "cache")
    if soak:
        _soak(settings, pool, soak, out)
        return
    chosen = [pool[i % len(pool)] for i in range(images)]
    with _progress() as progress:
        task = progress.add_task("decisions", total=images)
        try:
            report = run_bench(
                settings,
                chosen,
                rate=rate,
                on_decided=lambda d: progress.advance(task),
                on_stage=lambda stage: progress.console.print(stage),
            )
        except NoServedModel as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    path = write_report(report, out or Path("artifacts") / f"bench-{report['measured_at'].replace(':', '')}.json")
    pipeline, raw = report["pipeline"], report["raw_model"]["best"]
    table = Table("measure", "value")
    table.add_row("images decided", f"{pipeline['decided']} / {pipeline['images']}")
    table.add_row("pipeline throughput", f"{pipeline['images_per_second']} images/s")
    table.add_row(
        "latency p50 / p95 / p99",
        f"{pipeline['latency_ms_p50']} / {pipeline['latency_ms_p95']} / {pipeline['latency_ms_p99']} ms",
    )
    table.add_row("Triton mean batch size", ", ".join(f"{m} {b}" for m, b in report["triton_mean_batch_size"].items()))
    best = f"{raw['images_per_second']} images/s at batch {raw['batch_size']} ({report['raw_model']['model']})"
    table.add_row("raw model in-process (best)", best)
    table.add_row("pipeline / raw", f"{report['pipeline_vs_raw']}")
    console.print(table)
    console.print(f"report: {path}")


def _soak(settings: Settings, pool: list[bytes], events: int, out: Path | None) -> None:
    from modstream.bench.run import write_report
    from modstream.bench.soak import run_soak
    from modstream.stack import stack_status

    running = {s.name: s.pid for s in stack_status(settings) if s.running and s.pid}
    if not {"worker", "triton"} <= running.keys():
        err.print("[red]the soak needs a running worker and Triton: modstream stack up --worker[/red]")
        raise typer.Exit(1)
    worker, triton = psutil.Process(running["worker"]), psutil.Process(running["triton"])
    with _progress() as progress:
        task = progress.add_task("decisions", total=events)
        soaking = run_soak(settings, pool, events, worker, triton, on_decided=lambda d: progress.advance(task))
        report = asyncio.run(soaking)
    path = write_report(report, out or Path("artifacts") / f"soak-{report['measured_at'].replace(':', '')}.json")
    table = Table("measure", "value")
    counts = f"{report['decided']} / {report['lost']} / {report['duplicates']}"
    table.add_row("events decided / lost / decided twice", counts)
    table.add_row("throughput", f"{report['images_per_second']} images/s over {report['seconds']} s")
    for name in ("worker", "triton"):
        rss = report[f"{name}_rss_mb"]
        table.add_row(
            f"{name} RSS (MB)",
            f"start {rss['start']}, end {rss['end']}, peak {rss['peak']}; "
            f"mean 1st half {rss['mean_first_half']}, 2nd half {rss['mean_second_half']}",
        )
    console.print(table)
    console.print(f"report: {path}")
    if report["lost"]:
        raise typer.Exit(1)


def _prepare_stack(settings: Settings) -> None:
    from modstream.core.storage import ObjectStore
    from modstream.core.topics import ensure_topics

    asyncio.run(ensure_topics(settings))
    ObjectStore(settings).ensure_bucket(settings.uploads_bucket)


if __name__ == "__main__":
    app()
