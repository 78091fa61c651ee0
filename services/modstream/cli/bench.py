"""``modstream bench``: the served pipeline against the raw model, a soak that watches memory, or chaos."""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from modstream.cli.console import console, err, get_settings, progress_bar

if TYPE_CHECKING:
    from modstream.bench.chaos import StackControls
    from modstream.core.settings import Settings


def bench(
    images: Annotated[int, typer.Option(min=1, help="how many images to push through the pipeline")] = 500,
    rate: Annotated[
        float,
        typer.Option(help="events per second; 0 publishes all at once (with --chaos: half the measured capacity)"),
    ] = 0.0,
    duplicates: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=0.95,
            help="also run with this share of exact re-uploads (e.g. 0.3): the duplicate cache's gain",
        ),
    ] = 0.0,
    out: Annotated[Path | None, typer.Option(help="where to write the JSON report")] = None,
    seconds: Annotated[
        float | None,
        typer.Option(
            min=0.01,
            help="length of each measurement after the pipeline: the served ensemble, its preprocess, the "
            "in-process ensemble at each batch size and mode, each component alone half of it "
            "(default 10 s served, 4 s in-process); with --text, each throughput window (default 3 s)",
        ),
    ] = None,
    soak: Annotated[
        int, typer.Option(help="instead: this many events at once (e.g. 20000); lost, duplicates, memory")
    ] = 0,
    soak_quiet: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="for --soak: decisions are read on until none came for this long (a late duplicate counts)",
        ),
    ] = 20.0,
    archive: Annotated[
        int, typer.Option(help="instead: the archiver drains this many decisions (e.g. 100000), then a quality report")
    ] = 0,
    bank: Annotated[
        list[str] | None,
        typer.Option(
            metavar="N",
            help="instead: the PDQ bank index at N hashes, no stack needed (repeat it or give a comma list)",
        ),
    ] = None,
    bank_queries: Annotated[
        int, typer.Option(min=1, help="lookups per size for --bank; recall against the exact scan uses 2,000 of them")
    ] = 10_000,
    chaos: Annotated[
        float,
        typer.Option(
            metavar="MINUTES",
            min=0.0,
            help="instead: steady uploads for MINUTES while a worker, Triton, S3, Redis or the broker is "
            "SIGKILLed every 30 s and restarted; lost, twice, two ways, review jobs, archive rows, recovery times",
        ),
    ] = 0.0,
    seed: Annotated[
        int,
        typer.Option(help="for --chaos: the order of the faults, the images and tenants; for --text: the images"),
    ] = 20,
    statements: Annotated[
        int,
        typer.Option(
            min=0,
            help="instead: statements of reasons built, checked and sent through the submitter to a local "
            "endpoint (e.g. 20000), against bare posts of the same bodies; no stack needed",
        ),
    ] = 0,
    erasure: Annotated[
        int,
        typer.Option(
            min=0,
            help="instead: erasures of single uploads and of a subject's, against an archive of this many "
            "decisions (e.g. 1000000), with finding one upload as the baseline",
        ),
    ] = 0,
    text: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=0,
            help="instead: OCR on against OCR off on the stack's Triton, N photos without text and the same "
            "with text drawn (e.g. 30): images/s, CPU per image, the character error rate of what was read",
        ),
    ] = 0,
    saliency: Annotated[
        int,
        typer.Option(
            metavar="N",
            min=0,
            help="instead: seconds per occlusion map on the stack's Triton, full and light profile, N sample "
            "photos (e.g. 6), each mapped 3 times; and what a map of every block costs in uploads",
        ),
    ] = 0,
    saliency_on_block: Annotated[
        float,
        typer.Option(
            metavar="SHARE",
            min=0.0,
            max=1.0,
            help="instead: what maps of every block cost the pipeline: --images uploads (e.g. 300) through a "
            "worker of the bench's own whose policy blocks this share of them (e.g. 0.1), with the policy's "
            "saliency_on_block off and on, alternating, medians of 3 each: images/s, p50/p95 latency",
        ),
    ] = 0.0,
    learning: Annotated[
        str | None,
        typer.Option(
            metavar="N,N,…",
            help="instead: held-out and test precision/recall of learned heads on N labelled examples "
            "of a synthetic concept (e.g. 24,48,96,128; needs the stack's Triton)",
        ),
    ] = None,
) -> None:
    """Throughput and latency of the served pipeline vs the raw model in-process, same images."""
    from modstream.bench.raw_model import Unwired
    from modstream.bench.run import NoServedModel, run_bench, write_report
    from modstream.demo.samples import sample_images

    if bank:
        _bank(bank, bank_queries, out)
        return
    if statements:
        _statements(statements, out)
        return
    settings = get_settings()
    if learning:
        _learning(settings, learning, out)
        return
    if saliency:
        _saliency(settings, saliency, out)
        return
    if text:
        _text(settings, text, seed, seconds, out)
        return
    if archive:
        _archive(settings, archive, out)
        return
    if erasure:
        _erasure(settings, erasure, out)
        return
    pool = sample_images(settings.state_dir / "cache")
    if saliency_on_block:
        _saliency_on_block(settings, pool, images, saliency_on_block, out)
        return
    if chaos:
        _chaos(settings, pool, chaos, seed, rate, out)
        return
    if soak:
        _soak(settings, pool, soak, soak_quiet, out)
        return
    from modstream.stack.probes import worker_answers

    if not worker_answers(settings.worker_web_port):
        # Else the run waits out its whole timeout for decisions that never come.
        err.print(
            f"[red]the pipeline bench needs a running worker (none answers on port {settings.worker_web_port}): "
            "modstream stack up --worker[/red]"
        )
        raise typer.Exit(1)
    with progress_bar() as progress:
        task = progress.add_task("decisions", total=images * (2 if duplicates else 1))
        try:
            report = run_bench(
                settings,
                pool,
                images,
                rate=rate,
                duplicate_rate=duplicates,
                seconds=seconds,
                on_decided=lambda d: progress.advance(task),
                on_stage=lambda stage: progress.console.print(stage),
            )
        except (NoServedModel, Unwired) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    path = write_report(report, "bench", out)
    console.print(_bench_table(report))
    console.print(f"report: {path}")


def _bench_table(report: dict[str, Any]) -> Table:
    pipeline, raw = report["pipeline"], report["raw_ensemble"]
    best = raw["best"]
    table = Table("measure", "value")
    table.add_row("profile", report["profile"])
    table.add_row("images decided", f"{pipeline['decided']} / {pipeline['images']}")
    table.add_row("pipeline throughput", f"{pipeline['images_per_second']} images/s")
    table.add_row(
        "latency p50 / p95 / p99",
        f"{pipeline['latency_ms_p50']} / {pipeline['latency_ms_p95']} / {pipeline['latency_ms_p99']} ms",
    )
    table.add_row("Triton mean batch size", ", ".join(f"{m} {b}" for m, b in report["triton_mean_batch_size"].items()))
    served = report["served"]
    table.add_row("served ensemble alone (gRPC, no Kafka)", f"{served['ensemble_images_per_second']} images/s")
    table.add_row("served preprocess alone", f"{served['preprocess_images_per_second']} images/s")
    table.add_row("served classifiers + taxonomy", f"{served['classifiers_ms_per_image']} ms/image (decode excluded)")
    for component, ms in raw["components_ms_per_image"].items():
        fed = raw["inputs"][component]
        table.add_row(f"raw {component} in-process", f"{ms} ms/image" + ("" if fed == "pixels" else f" (on {fed})"))
    table.add_row("raw components, sum", f"{raw['sum_ms_per_image']} ms/image")
    table.add_row("served components / raw sum", f"{report['served_vs_raw_cost']}")
    for mode, found in report["raw_ensemble"]["best_by_mode"].items():
        table.add_row(
            f"raw ensemble in-process, {mode}", f"{found['images_per_second']} images/s at batch {found['batch_size']}"
        )
    table.add_row(f"pipeline / raw ensemble (best: {best['mode']})", f"{report['pipeline_vs_raw']}")
    table.add_row("pipeline / raw ensemble, sequential", f"{report['pipeline_vs_raw_sequential']}")
    if (repeated := report["duplicates"]) is not None:
        again = repeated["pipeline"]
        table.add_row(
            f"pipeline with {repeated['repeated_uploads']} exact re-uploads ({repeated['rate']:.0%})",
            f"{again['images_per_second']} images/s, p50 {again['latency_ms_p50']} ms: {repeated['gain']}x",
        )
    return table


def _bank(given: list[str], queries: int, out: Path | None) -> None:
    from modstream.bench.bank import bank_table, run_bank_bench
    from modstream.bench.run import write_report

    try:
        sizes = [int(size) for text in given for size in text.split(",") if size.strip()]
    except ValueError as exc:
        raise typer.BadParameter(
            f"numbers of hashes, e.g. --bank 1000000,10000000 ({exc})", param_hint="--bank"
        ) from exc
    if min(sizes, default=0) < 1:
        raise typer.BadParameter("numbers of hashes, at least 1 each", param_hint="--bank")
    report = run_bank_bench(sizes, queries, on_stage=console.print)
    path = write_report(report, "bank-bench", out)
    console.print(bank_table(report))
    console.print(f"report: {path}")


def _statements(count: int, out: Path | None) -> None:
    from modstream.bench.run import write_report
    from modstream.bench.statements import run_statements_bench

    report = run_statements_bench(count, on_stage=console.print)
    path = write_report(report, "statements-bench", out)
    table = Table("measure", "value")
    table.add_row("built and checked", f"{report['built_per_second']:,} statements/s")
    table.add_row(
        f"through the submitter, calls of {report['batch']}", f"{report['submitted_per_second']:,} statements/s"
    )
    table.add_row("bare posts of the same bodies", f"{report['bare_post_per_second']:,} statements/s")
    table.add_row("submitter / bare", str(report["submitter_vs_bare"]))
    console.print(table)
    console.print(f"medians of {report['runs']} runs of {report['statements']:,}; report: {path}")


def _erasure(settings: "Settings", decisions: int, out: Path | None) -> None:
    from modstream.bench.run import write_report
    from modstream.erasure.bench import SINGLE, run_erasure_bench

    report = run_erasure_bench(settings, decisions, on_stage=console.print)
    path = write_report(report, "erasure-bench", out)
    table = Table("measure", "value")
    for name in ("decisions", "verdicts"):
        size = report["archive"][name]
        table.add_row(f"archive: {name}", f"{size['rows']:,} rows, {size['files']} files, {size['megabytes']} MB")
    table.add_row("finding one upload (baseline)", f"{report['lookup_seconds_median']} s")
    table.add_row("erasing one upload, everywhere", f"{report['erase_one_seconds_median']} s")
    table.add_row("erasure / finding", str(report["erase_vs_lookup"]))
    table.add_row("files deleted per erasure", str(report["files_deleted_per_erasure_median"]))
    subject = report["subject"]
    table.add_row(f"a subject's {subject['uploads']} uploads at once", f"{subject['seconds']} s")
    console.print(table)
    console.print(f"medians of {SINGLE} erasures; report: {path}")


def _saliency(settings: "Settings", count: int, out: Path | None) -> None:
    from modstream.bench.run import write_report
    from modstream.bench.saliency import run_saliency_bench
    from modstream.demo.samples import source_photos

    photos = list(source_photos(settings.state_dir / "cache").values())
    report = run_saliency_bench(settings, (photos * count)[:count], 3, on_stage=console.print)
    path = write_report(report, "saliency-bench", out)
    table = Table(title=f"occlusion maps ({report['masking']}), {report['images']} photos x {report['repetitions']}")
    for column in ("profile", "labels mapped", "s per map: median (min-max)", "uploads/s", "uploads per map"):
        table.add_column(column)
    for row in report["profiles"]:
        met = "meets" if row["goal_met"] else "misses"
        spread = f"{row['seconds_median']} ({row['seconds_min']}-{row['seconds_max']})"
        table.add_row(
            f"{row['profile']} ({row['ensemble']})",
            str(len(row["labels_mapped"])),
            f"{spread}: {met} the {report['goal_seconds']} s goal",
            str(row["uploads_per_second"]),
            str(row["uploads_per_map"]),
        )
    console.print(table)
    console.print(f"report: {path}")


def _saliency_on_block(settings: "Settings", pool: list[bytes], count: int, share: float, out: Path | None) -> None:
    """The bench's own worker (the stack room starts and stops it) over the stack's servers."""
    import tempfile

    from modstream.bench.run import write_report
    from modstream.bench.saliency_cost import private_settings, run_saliency_cost_bench
    from modstream.stack import StackError, start_service, stop_stack

    with tempfile.TemporaryDirectory(prefix="modstream-bench-") as folder:
        private = private_settings(settings, Path(folder))
        console.print(f"starting a worker of the bench's own (policies and topics in {folder})")
        try:
            start_service(private, "worker", timeout=120)
        except StackError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        try:
            report = run_saliency_cost_bench(private, pool, count, share, on_stage=console.print)
        finally:
            stop_stack(private, only=["worker"])
    path = write_report(report, "saliency-pipeline-bench", out)
    medians = report["medians"]
    table = Table(
        "maps of blocks",
        "images/s",
        "latency p50 (ms)",
        "latency p95 (ms)",
        "blocks / with maps",
        "s per map",
        title=f"{report['uploads_per_run']} uploads per run, {report['blocked_per_run']} blocked "
        f"({report['blocked_share']:.0%}), medians of {report['repetitions']}, {report['ensemble']}",
    )
    for name in ("off", "on"):
        row = medians[name]
        table.add_row(
            name,
            str(row["images_per_second"]),
            str(row["latency_ms_p50"]),
            str(row["latency_ms_p95"]),
            f"{row['blocks']} / {row['blocks_with_maps']}",
            "-" if row["seconds_per_map_median"] is None else str(row["seconds_per_map_median"]),
        )
    ratio = report["on_vs_off"]
    table.add_row(
        "on / off", str(ratio["images_per_second"]), str(ratio["latency_ms_p50"]), str(ratio["latency_ms_p95"]), "", ""
    )
    console.print(table)
    console.print(f"report: {path}")


def _learning(settings: "Settings", given: str, out: Path | None) -> None:
    from modstream.bench.learning import DRAWS, TEST_IMAGES, learning_curve
    from modstream.bench.run import write_report

    try:
        sizes = [int(size) for size in given.split(",") if size.strip()]
        with progress_bar() as progress:
            task = progress.add_task("embedded", total=max(sizes) * DRAWS + TEST_IMAGES)
            report = learning_curve(
                settings,
                sizes,
                settings.state_dir / "cache",
                on_stage=progress.console.print,
                on_embedded=lambda: progress.advance(task),
            )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--learning") from exc
    path = write_report(report, "learning-bench", out)
    table = Table(
        "examples",
        "held-out P",
        "held-out R",
        "test P",
        "test R",
        "test FPR",
        "fit s",
        title=f"learned heads, medians of {report['draws']} draws; test set {report['test_images']} images",
    )
    for row in report["rows"]:
        table.add_row(
            str(row["examples"]),
            *(
                "-" if row[key] is None else f"{row[key]:.2f}"
                for key in ("held_out_precision", "held_out_recall", "test_precision", "test_recall")
            ),
            f"{row['test_false_positive_rate']:.3f}",
            f"{row['fit_seconds']:.1f}",
        )
    console.print(table)
    console.print(f"report: {path}")


def _text(settings: "Settings", count: int, seed: int, seconds: float | None, out: Path | None) -> None:
    """The OCR bench on the local stack's Triton: its process tree's CPU time is the cost, so it
    must run here; the models room's model control loads and unloads the OCR-off copy."""
    import psutil

    from modstream.bench.ocr import SECONDS, NoOcrStep, run_text_bench
    from modstream.bench.run import write_report
    from modstream.models.control import TritonControl, TritonControlError
    from modstream.stack import stack_status

    running = [s.pid for s in stack_status(settings, only=["triton"]) if s.running and s.pid]
    if not running:
        err.print("[red]--text measures the CPU time of the local stack's Triton: modstream stack up[/red]")
        raise typer.Exit(1)
    control = TritonControl(settings.triton_http)
    try:
        report = run_text_bench(
            settings,
            psutil.Process(running[0]),
            control,
            count,
            seed,
            seconds=seconds or SECONDS,
            on_stage=console.print,
        )
    except (NoOcrStep, TritonControlError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        control.close()
    path = write_report(report, "text-bench", out)
    console.print(_text_table(report))
    console.print(_goals_table(report))
    console.print(f"report: {path}")


def _text_table(report: dict[str, Any]) -> Table:
    cost, versus, found = report["cost"], report["ocr_on_vs_off"], report["accuracy"]
    table = Table(
        "measure",
        "OCR off",
        "OCR on",
        "on / off",
        title=f"{report['ensemble']} against {report['ocr_off_copy']}: {report['images']} photos without "
        f"text and with it, medians of {report['repetitions']}",
    )
    for name in ("without_text", "with_text"):
        off, on, ratio = cost["ocr_off"][name], cost["ocr_on"][name], versus[name]
        what = name.replace("_", " ")
        table.add_row(
            f"CPU per image, one at a time, {what} (ms)",
            str(off["cpu_ms_per_image"]),
            str(on["cpu_ms_per_image"]),
            f"{ratio['cpu_cost']} (+{ratio['extra_cpu_ms_per_image']} ms)",
        )
        table.add_row(
            f"images/s one at a time, {what}",
            str(off["sequential_images_per_second"]),
            str(on["sequential_images_per_second"]),
            str(round(on["sequential_images_per_second"] / off["sequential_images_per_second"], 3)),
        )
        table.add_row(
            f"images/s, {report['concurrency']} in flight, {what}",
            str(off["concurrent_images_per_second"]),
            str(on["concurrent_images_per_second"]),
            str(ratio["concurrent_throughput"]),
        )
        table.add_row(
            f"CPU per image, {report['concurrency']} in flight, {what} (ms)",
            str(off["concurrent_cpu_ms_per_image"]),
            str(on["concurrent_cpu_ms_per_image"]),
            str(ratio["concurrent_cpu_cost"]),
        )
    plain = report["without_text_read"]
    table.add_row(
        "photos without text: with regions / lines read", "", f"{plain['with_regions']} / {plain['lines_read']}", ""
    )
    table.add_row(
        "character error rate (without spaces)",
        "",
        f"{found['cer']:.1%} ({found['cer_without_spaces']:.1%})",
        "",
    )
    table.add_row(
        "lines found / drawn; read beside them",
        "",
        f"{found['lines_found']} / {found['lines_drawn']}; {found['extra_lines']}",
        "",
    )
    for key, title in (("by_font_px", "font {} px"), ("by_detect_px", "{} px at detection")):
        for size, row in found[key].items():
            table.add_row(
                f"  {title.format(size)}: found / lines, CER",
                "",
                f"{row['found']} / {row['lines']}, {row['cer']:.1%}",
                "",
            )
    if report["requests_from_others"]:
        table.add_row(
            "[yellow]requests from others during the passes[/yellow]", "", str(report["requests_from_others"]), ""
        )
    return table


def _goals_table(report: dict[str, Any]) -> Table:
    table = Table("issue 23's goal", "measured", "at most", "met")
    for goal in report["goals"]:
        met = "[green]yes[/green]" if goal["met"] else "[red]no[/red]"
        table.add_row(goal["goal"], str(goal["measured"]), str(goal["at_most"]), met)
    return table


def _soak(settings: "Settings", pool: list[bytes], events: int, quiet: float, out: Path | None) -> None:
    import asyncio

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
        soaking = run_soak(
            settings, pool, events, worker, triton, on_decided=lambda d: progress.advance(task), quiet_seconds=quiet
        )
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


def _archive(settings: "Settings", decisions: int, out: Path | None) -> None:
    """The archiver against a bare consumer on the same backlog, then the quality report over
    what it wrote (three runs, the median)."""
    import statistics
    import time

    from modstream.archive.bench import run_archive_bench
    from modstream.bench.run import write_report
    from modstream.cli.archive import archive_observers
    from modstream.core.evidence import Period, sampled_verdicts
    from modstream.core.lake import open_archive
    from modstream.quality.report import quality_report

    with progress_bar() as progress:
        task = progress.add_task("records archived", total=None)
        private, report = run_archive_bench(
            settings,
            decisions,
            on_stage=progress.console.print,
            on_progress=lambda done: progress.update(task, completed=done),
            observers=archive_observers,  # as `modstream archive` runs: drift included
        )
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        with open_archive(private) as archived:
            sample = sampled_verdicts(archived, Period())
        quality_report(sample)
        timings.append(time.perf_counter() - started)
    report["quality_report_seconds"] = {"median": round(statistics.median(timings), 3), "runs": timings}
    report["quality_report_decisions"] = len(sample)
    path = write_report(report, "archive-bench", out)
    table = Table("measure", "value")
    for name in ("baseline_read", "archive"):
        drained = report[name]
        table.add_row(
            name.replace("_", " "),
            f"{drained['records']} records in {drained['seconds']:.1f} s: {drained['records_per_second']} records/s",
        )
    table.add_row("archive / bare read (time)", str(report["archive_vs_read"]))
    files = report["files_per_table_day"]
    for when in ("before_maintenance", "after_maintenance"):
        per_table = ", ".join(f"{t} {f['max']}" for t, f in files[when].items())
        table.add_row(f"data files per table and day, most ({when.replace('_', ' ')})", per_table)
    table.add_row("maintenance", f"{report['maintenance_seconds']} s")
    table.add_row(
        f"quality report over {len(sample)} decisions", f"{report['quality_report_seconds']['median']} s (median of 3)"
    )
    console.print(table)
    console.print(f"report: {path}")


def _chaos(settings: "Settings", pool: list[bytes], minutes: float, seed: int, rate: float, out: Path | None) -> None:
    from modstream.bench.chaos import ChaosError, run_chaos
    from modstream.bench.run import write_report
    from modstream.stack import StackError

    # Every broker kill makes the Kafka clients log each failed fetch and reconnect; what the
    # faults cost is in the report.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    with progress_bar() as progress:
        tasks: dict[str, Any] = {}

        def advanced(name: str, done: int, total: int | None) -> None:
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done, total=total)

        try:
            report = run_chaos(
                settings,
                _stack_controls(settings),
                pool,
                minutes,
                seed=seed,
                rate=rate,
                on_stage=progress.console.print,
                on_progress=advanced,
            )
        except (ChaosError, StackError) as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    path = write_report(report, "chaos", out)
    console.print(_chaos_table(report))
    console.print(_faults_table(report))
    console.print(_kinds_table(report))
    console.print(f"report: {path}")
    if not report["sound"]:
        raise typer.Exit(1)


def _stack_controls(settings: "Settings") -> "StackControls":
    """What the chaos run does to the local stack: the stack room's PID files, starts and
    probes, and the review room's jobs (bench imports neither)."""
    import asyncio

    import redis.asyncio as aioredis

    from modstream.bench.chaos import RESTART_TIMEOUT, StackControls
    from modstream.review.queue import ReviewQueues
    from modstream.stack import restart_server, stack_status, start_service
    from modstream.stack.probes import worker_answers

    def running() -> dict[str, int]:
        return {s.name: s.pid for s in stack_status(settings) if s.running and s.pid}

    async def review_jobs(events: Sequence[str]) -> dict[str, str]:
        client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5)
        queues = ReviewQueues.of(client, settings)
        found: dict[str, str] = {}
        try:
            for start in range(0, len(events), 200):
                chunk = events[start : start + 200]
                for event, job in zip(chunk, await asyncio.gather(*(queues.job(e) for e in chunk)), strict=True):
                    if job is not None:
                        found[event] = job[0].queue
        finally:
            await client.aclose()
        return found

    return StackControls(
        running=running,
        start_service=lambda name: start_service(settings, name, RESTART_TIMEOUT),
        # After a SIGKILL nothing runs: `stack restart` only removes its PID file (and Triton's
        # shared memory), then starts it as `stack up` does and waits until it answers.
        restart=lambda name: restart_server(settings, name, RESTART_TIMEOUT),
        worker_answers=worker_answers,
        review_jobs=review_jobs,
    )


def _chaos_table(report: dict[str, Any]) -> Table:
    ledger, review, archive, redis = report["ledger"], report["review"], report["archive"], report["redis_kills"]
    table = Table("measure", "value", title=f"chaos: {report['minutes']:g} min, seed {report['seed']}")
    capacity = f" (capacity {report['capacity']}/s)" if report["capacity"] else ""
    table.add_row("rate", f"{report['rate']} uploads/s{capacity} for {report['publishing_seconds']} s")
    spared = "" if "kafka" in report["kinds"] else " (not the broker: on memory storage a kill empties it)"
    table.add_row("killed in turn", ", ".join(report["kinds"]) + spared)
    table.add_row(
        "uploads published / acknowledged / on the topic",
        f"{report['uploads_published']} / {report['uploads_acknowledged']} / {ledger['uploads']}",
    )
    if ledger["unreadable"]:
        table.add_row("[red]ledger[/red]", ledger["unreadable"])
    table.add_row("acknowledged, then gone from the topic", str(report["acknowledged_then_gone"]))
    table.add_row("never decided (waited for)", str(report["never_decided"]))
    table.add_row("on the topic: decided / lost", f"{ledger['decided']} / {ledger['lost']}")
    table.add_row("decided twice identically", str(ledger["decided_twice_identically"]))
    table.add_row("decided two different ways", str(ledger["decided_two_ways"]))
    table.add_row("commits past an undecided upload", str(ledger["commits_past_a_hole"]))
    table.add_row(
        "review decisions / review jobs",
        f"{review['review_decisions']} / {review['jobs']} (missing {review['missing']}, wrong queue "
        f"{review['wrong_queue']}, without a review decision {review['unexpected']})",
    )
    table.add_row(
        "decisions / archive rows", f"{archive['decisions']} / {archive['rows']} (missing {archive['missing']})"
    )
    table.add_row(
        f"Redis SIGKILLs ({redis['kills']}): lost of what it had",
        f"marks {redis['marks_lost']} of {redis['marks_before']}, leases {redis['leases_lost']} of "
        f"{redis['leases_before']}, review jobs {redis['jobs_lost']} of {redis['jobs_before']}",
    )
    for crash in report["crashes"]:
        back = "-" if crash["answering_seconds"] is None else f"{crash['answering_seconds']:.1f} s"
        table.add_row(
            f"[red]{crash['name']} died unkilled[/red]",
            f"at {crash['at_seconds']:.0f} s; answering again after {back}"
            + (f": {crash['error']}" if crash["error"] else ""),
        )
    latency = report["latency_seconds"]
    table.add_row("upload to decision p50 / p99 / max", f"{latency['p50']} / {latency['p99']} / {latency['max']} s")
    drain = report["drain"]
    stalled = ", no decision came any more" if drain["stalled"] else ""
    table.add_row("drain after publishing", f"{drain['seconds']} s ({drain['undecided']} left{stalled})")
    if report["aborted"]:
        table.add_row("[red]aborted[/red]", report["aborted"])
    return table


def _faults_table(report: dict[str, Any]) -> Table:
    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    table = Table(
        "#",
        "at",
        "killed",
        "answers",
        "decides",
        "all decided",
        "longest gap",
        "waiting",
        title="seconds after each kill until it answers, until the next decision, until all uploads waiting at "
        "the kill are decided; the longest time without a decision; how many waited",
    )
    for number, fault in enumerate(report["faults"], 1):
        table.add_row(
            str(number),
            f"{fault['at_seconds']:.0f}",
            fault["kind"],
            s(fault["answering_seconds"]),
            s(fault["flowing_seconds"]),
            s(fault["caught_up_seconds"]),
            s(fault["longest_gap_seconds"]),
            str(fault["backlog_at_kill"]),
        )
    return table


def _kinds_table(report: dict[str, Any]) -> Table:
    def spread(row: dict[str, Any], name: str) -> str:
        found = row[name]
        text = "-" if found["median"] is None else f"{found['median']:.1f} / {found['max']:.1f}"
        return text + (f" ({found['missing']} never)" if found["missing"] else "")

    table = Table("killed", "times", "recovered", "answers", "decides", "all decided", title="per kind: median / max s")
    for kind, row in report["by_kind"].items():
        table.add_row(
            kind,
            str(row["count"]),
            str(row["recovered"]),
            spread(row, "answering_seconds"),
            spread(row, "flowing_seconds"),
            spread(row, "caught_up_seconds"),
        )
    return table
