"""``modstream bench``: the served pipeline against the raw model, or a soak that watches memory."""

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from modstream.cli.console import console, err, progress_bar
from modstream.core.settings import Settings, get_settings


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
    with progress_bar() as progress:
        task = progress.add_task("decisions", total=images)
        try:
            report = run_bench(
                settings,
                pool,
                images,
                rate=rate,
                on_decided=lambda d: progress.advance(task),
                on_stage=lambda stage: progress.console.print(stage),
            )
        except NoServedModel as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    path = write_report(report, "bench", out)
    console.print(_bench_table(report))
    console.print(f"report: {path}")


def _bench_table(report: dict[str, Any]) -> Table:
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
    return table


def _soak(settings: Settings, pool: list[bytes], events: int, out: Path | None) -> None:
    from modstream.bench.run import write_report
    from modstream.bench.soak import NothingToWatch, run_soak, watched_processes
    from modstream.stack import stack_status

    running = {s.name: s.pid for s in stack_status(settings) if s.running and s.pid}
    try:
        worker, triton = watched_processes(running)
    except NothingToWatch as exc:
        err.print("[red]the soak needs a running worker and Triton: modstream stack up --worker[/red]")
        raise typer.Exit(1) from exc
    with progress_bar() as progress:
        task = progress.add_task("decisions", total=events)
        soaking = run_soak(settings, pool, events, worker, triton, on_decided=lambda d: progress.advance(task))
        report = asyncio.run(soaking)
    path = write_report(report, "soak", out)
    console.print(_soak_table(report))
    console.print(f"report: {path}")
    if report["lost"]:
        raise typer.Exit(1)


def _soak_table(report: dict[str, Any]) -> Table:
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
    return table
