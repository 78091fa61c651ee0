"""``modstream model …``: the ensemble's components and its taxonomy, changed while traffic flows."""

import getpass
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from modstream.cli.console import as_utc, console, err, get_settings
from modstream.models.compare_at import DEFAULT_AT

# What the commands run (numpy, duckdb, pyarrow, httpx, redis, pydantic) is imported in each
# command, not here: every `modstream` command and --help would pay for it at start.
if TYPE_CHECKING:
    from modstream.core.label_since import CountingFrom
    from modstream.core.settings import Settings
    from modstream.core.stats import Rate
    from modstream.models.compare import Comparison, NewLabel
    from modstream.models.control import TritonControl
    from modstream.models.heads import HeadCard
    from modstream.models.lifecycle import Switch
    from modstream.models.repository import Repository

app = typer.Typer(
    help="The ensemble's components and taxonomy: list, deploy, shadow, compare, roll back, score.",
    no_args_is_help=True,
)
T = TypeVar("T")
ModelName = Annotated[
    str, typer.Option("--name", help="the component: image_safety, nsfwjs, opennsfw, efficientnet_lite0, heads")
]
DEFAULT_MODEL = "image_safety"


def _change(name: str, action: "Callable[[Settings, Repository, TritonControl], T]") -> T:
    """Run a change against the repository and Triton; a refusal ends the command with its reason."""
    from modstream.models.candidate import CandidateRefused
    from modstream.models.lifecycle import DeployFailed
    from modstream.models.workbench import NoSuchModel, open_model

    settings = get_settings()
    try:
        with open_model(settings, name) as (repository, triton):
            return action(settings, repository, triton)
    except (NoSuchModel, CandidateRefused, DeployFailed) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


def _switched(switch: "Switch") -> None:
    undo = f"modstream model rollback --to {switch.previous}"
    console.print(f"[green]version {switch.serving} serves[/green] (was {switch.previous}; undo: {undo})")


@app.command("list")
def list_(name: ModelName = DEFAULT_MODEL) -> None:
    """Every version of a component on disk, its labels, Triton's state of it, and which serves or shadows;
    then the other models Triton knows."""
    from modstream.models.control import TritonControl
    from modstream.models.lifecycle import describe, other_models, state_of
    from modstream.models.repository import Repository

    settings = get_settings()
    repository = Repository(settings.model_repository, name)
    triton = TritonControl(settings.triton_http)
    try:
        index = triton.index()
    except Exception as exc:  # Triton down: still show the repository
        err.print(f"[yellow]Triton at {settings.triton_http} did not answer ({type(exc).__name__}); disk only[/yellow]")
        index = []
    finally:
        triton.close()
    table = Table("version", "labels", "in Triton", "role", title=f"{name} in {settings.model_repository}")
    for row in describe(repository, index):
        role = "serving" if row.serving else "shadow" if row.shadow else ""
        table.add_row(str(row.version), ", ".join(row.labels), row.triton, role)
    console.print(table)
    others = other_models(repository, index)
    if others:
        table = Table("model", "version", "state", title="other models in Triton")
        for entry in others:
            table.add_row(entry.get("name", ""), entry.get("version", ""), state_of(entry))
        console.print(table)


@app.command("deploy")
def deploy(
    onnx_file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the candidate ONNX model")],
    labels: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="labels file, one per output position")],
    shadow: Annotated[bool, typer.Option(help="shadow it beside the serving version instead of serving it")] = False,
    name: ModelName = DEFAULT_MODEL,
) -> None:
    """Check a candidate, add it as the next version and make it serve (or shadow), without stopping traffic."""
    from modstream.models import lifecycle, shadow_run

    if not shadow:
        switch = _change(name, lambda _, repo, triton: lifecycle.deploy(repo, triton, onnx_file, labels, console.print))
        _switched(switch)
        return
    _change(
        name,
        lambda settings, repo, triton: shadow_run.shadow_candidate(
            repo, triton, settings.triton_model, onnx_file, labels, console.print
        ),
    )
    console.print("compare with: modstream model compare; then: modstream model promote, or model shadow --stop")


@app.command("rollback")
def rollback(
    to: Annotated[int | None, typer.Option(help="the version to serve (default: the one before)")] = None,
    name: ModelName = DEFAULT_MODEL,
) -> None:
    """Make the previous (or the given) version serve again."""
    from modstream.models import lifecycle

    _switched(_change(name, lambda _, repo, triton: lifecycle.rollback(repo, triton, console.print, to)))


@app.command("shadow")
def shadow(
    version: Annotated[int | None, typer.Argument(help="the version to run beside the serving one")] = None,
    stop: Annotated[bool, typer.Option("--stop", help="stop the running shadow")] = False,
    name: ModelName = DEFAULT_MODEL,
) -> None:
    """Score live traffic with another version too, without changing any decision."""
    from modstream.models import shadow_run

    if stop == (version is not None):
        err.print("give either a VERSION to shadow or --stop")
        raise typer.Exit(2)
    ensemble = get_settings().triton_model
    if version is None:
        _change(name, lambda _, repo, triton: shadow_run.stop_shadow(repo, triton, ensemble, console.print))
        return
    _change(name, lambda _, repo, triton: shadow_run.start_shadow(repo, triton, ensemble, version, console.print))


@app.command("promote")
def promote(name: ModelName = DEFAULT_MODEL) -> None:
    """Make the version under shadow serve, and stop the shadow."""
    from modstream.models import shadow_run

    switch = _change(
        name, lambda settings, repo, triton: shadow_run.promote(repo, triton, settings.triton_model, console.print)
    )
    _switched(switch)


@app.command("compare")
def compare(
    as_json: Annotated[bool, typer.Option("--json", help="JSON, one comparison per line")] = False,
    idle: Annotated[float, typer.Option(help="seconds without new shadow records that end the reading")] = 3.0,
    at: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="a label only the shadow scores counts as given from this score")
    ] = DEFAULT_AT,
    since: Annotated[
        datetime | None,
        typer.Option(
            help="verdicts from this time (UTC) count for a label only the shadow scores, when the label "
            "registry does not know when it was defined (both known: the later)"
        ),
    ] = None,
) -> None:
    """Per label score differences and the decision agreement rate over the shadowed traffic; for a
    label only the shadow scores, its score distribution and its agreement with reviewers."""
    from modstream.models.compare import as_plain
    from modstream.models.shadow_scores import shadow_comparisons

    comparisons, starts = shadow_comparisons(
        get_settings(), idle, at=at, since=as_utc(since), warn=lambda note: err.print(f"[yellow]{note}[/yellow]")
    )
    if not comparisons:
        err.print("no shadow records yet (start one with: modstream model shadow VERSION)")
        raise typer.Exit(1)
    for comparison in comparisons:
        if as_json:
            print(json.dumps(as_plain(comparison)))
        else:
            _print_comparison(comparison, starts)


def _print_comparison(c: "Comparison", starts: "dict[str, CountingFrom]") -> None:
    console.print(
        f"[bold]shadow {c.shadow.name}:{c.shadow.version} vs serving {c.serving.name}:{c.serving.version}[/bold]"
        f" — {c.images} images, decisions agree on {c.agreement:.1%}"
    )
    table = Table("label", "images", "mean shadow − serving", "mean |difference|", "max |difference|")
    for d in c.labels:
        table.add_row(
            d.label, str(d.images), f"{d.mean_difference:+.4f}", f"{d.mean_absolute:.4f}", f"{d.max_absolute:.4f}"
        )
    console.print(table)
    if c.only_serving or c.only_shadow:
        console.print(f"labels only in serving: {c.only_serving or '-'}; only in the shadow: {c.only_shadow or '-'}")
    outcomes = ", ".join(f"{a.value}→{b.value}: {n}" for (a, b), n in sorted(c.outcomes.items()))
    console.print(f"decisions (serving→shadow): {outcomes}")
    if c.new_labels:
        _print_new_labels(c.new_labels, starts)


def _print_new_labels(new_labels: "list[NewLabel]", starts: "dict[str, CountingFrom]") -> None:
    from modstream.core.label_since import counting_from
    from modstream.models.compare import bar

    table = Table(
        "new label", "images", "min", "q1", "median", "q3", "p90", "p99", "max", "0 … 1", title="only the shadow scores"
    )
    for new in new_labels:
        s = new.scores
        quantiles = (s.min, s.q1, s.median, s.q3, s.p90, s.p99, s.max)
        table.add_row(new.label, str(s.n), *(f"{q:.3f}" for q in quantiles), bar(s.histogram))
    console.print(table)
    table = Table("new label", "labelled (+)", "at", "precision", "recall", "agreement", title="against reviewers")
    for new in new_labels:
        r = new.reviewers
        table.add_row(
            new.label,
            f"{r.labelled} ({r.positives} +)",
            f"{r.at:.2f}",
            str(r.precision),
            str(r.recall),
            str(r.agreement),
        )
    console.print(table)
    for new in new_labels:
        start = starts.get(new.label, counting_from(None, new.reviewers.since))
        console.print(f"  {new.label}: {start}; the labelled images are reviews and audit samples, not a random sample")


@app.command("train-head")
def train_head(
    label: Annotated[str, typer.Option(help="the defined label to learn (modstream labels add)")],
    since: Annotated[
        datetime | None, typer.Option(help="verdicts from this time (UTC; default: when the label was defined)")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="verdicts up to this time (UTC; default: now)")] = None,
    out: Annotated[
        Path | None, typer.Option(help="where to write the candidate (default: a new folder in the state dir)")
    ] = None,
    embedding_model: Annotated[
        str | None, typer.Option(help="refuse unless this is the serving embedding model (name:version)")
    ] = None,
    by: Annotated[str, typer.Option(help="who trains it, for the head's card")] = getpass.getuser(),
    as_json: Annotated[bool, typer.Option("--json", help="the head's card as JSON")] = False,
) -> None:
    """Learn a defined label from reviewers' verdicts: a logistic head on the archived embeddings,
    measured on a held-out quarter; writes the next heads version as a candidate to deploy."""
    import asyncio

    from modstream.core.label_since import definition_times
    from modstream.core.lake import open_archive
    from modstream.learn.head import WrongEmbeddingModel
    from modstream.learn.head import train_head as train
    from modstream.learn.train import TooFewExamples

    settings = get_settings()
    defined_at = asyncio.run(definition_times(settings, [label], err.print)).get(label)
    if defined_at is None:
        define = f"modstream labels add {label} --description ..."
        err.print(f"[red]no label {label!r} is defined (define it with: {define})[/red]")
        raise typer.Exit(2)
    start = as_utc(since) or defined_at
    end = as_utc(until) or datetime.now(UTC)
    target = out or settings.state_dir / "heads" / f"{label}-{end:%Y%m%dT%H%M%SZ}"
    err.print(f"reading verdicts for {label} from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC from the archive")
    try:
        trained = train(
            open_archive(settings, since=start.date(), until=end.date()),
            settings.model_repository,
            label,
            since=start,
            until=end,
            out=target,
            trained_by=by,
            embedding_model=embedding_model,
        )
    except (TooFewExamples, WrongEmbeddingModel) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        print(trained.card.model_dump_json(indent=2))
    else:
        _print_card(trained.card)
    deploy = f"modstream model deploy {trained.candidate} --labels {trained.candidate.with_name('labels.txt')}"
    say = err.print if as_json else console.print  # --json: the card alone on stdout
    say(f"candidate written: {trained.candidate.parent} (heads: {', '.join(trained.labels)})")
    say(f"shadow it with: {deploy} --name heads --shadow")


def _print_card(card: "HeadCard") -> None:
    console.print(
        f"[bold]{card.label}[/bold] on {card.embedding_model}: trained on {card.train.positives} positive and "
        f"{card.train.negatives} negative examples, held out {card.held_out.positives} and {card.held_out.negatives} "
        f"(verdicts {card.window_start:%Y-%m-%d %H:%M} to {card.window_end:%Y-%m-%d %H:%M}); "
        f"{card.training_seconds:.1f} s"
    )
    console.print(
        f"held out, at {card.threshold}: precision {_interval(card.precision)}, recall {_interval(card.recall)}, "
        f"F1 {_interval(card.f1)}; average precision {card.average_precision:.3f}"
    )
    table = Table("threshold", "precision [95 %]", "recall [95 %]", title="held-out precision-recall curve")
    for point in card.curve:
        table.add_row(f"{point.threshold:.3f}", _interval(point.precision), _interval(point.recall))
    console.print(table)


def _interval(value: "Rate") -> str:
    if value.value is None:
        return "undefined (nothing counted)"
    return f"{value.value:.2f} [{value.low:.2f}, {value.high:.2f}]"


@app.command("taxonomy")
def taxonomy(
    reload: Annotated[
        bool, typer.Option("--reload", help="check the file, then have Triton apply it (no restart)")
    ] = False,
) -> None:
    """The labels of model_repository/taxonomy/taxonomy.yaml: what makes each, and which the
    profile's ensemble produces. Edit the file to rename or regroup labels, then --reload."""
    from modstream.models import taxonomy as taxonomies
    from modstream.models.control import TritonControl

    settings = get_settings()
    root = settings.model_repository
    try:
        if reload:
            triton = TritonControl(settings.triton_http)
            try:
                taxonomies.reload(root, triton, settings.triton_model, console.print)
            finally:
                triton.close()
            return
        found = taxonomies.read_taxonomy(root)
        components = taxonomies.ensemble_components(root, settings.triton_model)
        produced = set(found.produced_by(components))
        learned = found.learned_labels(root, components)
    except taxonomies.TaxonomyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    table = Table(
        "label", "from", "classes", "combine", f"in {settings.triton_model}", title=str(root / taxonomies.FILE)
    )
    for label, rule in found.labels.items():
        table.add_row(label, rule.component, ", ".join(rule.classes), rule.combine, "yes" if label in produced else "-")
    for label in learned:  # the serving heads version's labels: learned, not in the file
        table.add_row(label, "heads (learned)", label, "one", "yes")
    console.print(table)
    problems = taxonomies.missing_classes(found, root)
    for problem in problems:
        err.print(f"[red]{problem}[/red]")
    raise typer.Exit(1 if problems else 0)


@app.command("score")
def score(
    files: Annotated[
        list[Path] | None, typer.Argument(exists=True, dir_okay=False, help="images (default: the sample photos)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON: one object per image")] = False,
) -> None:
    """Every label's score for some images, from the serving ensemble (nothing is decided or stored)."""
    import asyncio

    from modstream.core.inference import ImageRejected, InferenceUnavailable
    from modstream.models.scoring import score_images

    settings = get_settings()
    if files:
        images = {path.name: path.read_bytes() for path in files}
    else:
        from modstream.demo.samples import source_photos

        images = source_photos(settings.state_dir / "cache")
    try:
        scored = asyncio.run(score_images(settings, images))
    except InferenceUnavailable as exc:
        err.print(f"[red]{settings.triton_model} at {settings.triton_grpc} did not answer: {exc}[/red]")
        raise typer.Exit(1) from exc
    if as_json:
        for name, result in scored.items():
            failed = isinstance(result, ImageRejected)
            print(json.dumps({"image": name} | ({"error": str(result)} if failed else {"scores": result})))
        return
    for name, result in scored.items():
        if isinstance(result, ImageRejected):
            err.print(f"[red]{name}: {result}[/red]")
    scores = {name: result for name, result in scored.items() if not isinstance(result, ImageRejected)}
    labels = next((list(r) for r in scores.values()), [])
    # A label per row, an image per column: the labels are many and long, the names cut short.
    table = Table("label", *(Path(name).stem[:8] for name in scores), title=f"{settings.triton_model} scores")
    for label in labels:
        table.add_row(label, *(f"{result[label]:.3f}" for result in scores.values()))
    console.print(table)
    raise typer.Exit(1 if len(scores) < len(scored) else 0)


@app.command("perf", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def perf(
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


@app.command("card")
def card(
    name: Annotated[
        str, typer.Option("--name", help="a component, or an ensemble (moderation, moderation_light)")
    ] = "moderation",
    version: Annotated[int | None, typer.Option(help="the version (default: the serving one)")] = None,
    since: Annotated[datetime | None, typer.Option(help="verdicts from this time (UTC)")] = None,
    until: Annotated[datetime | None, typer.Option(help="verdicts until this time (UTC)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of Markdown")] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="write it to this file instead of printing it; to a folder: both <name>-<version>.md and .json"
        ),
    ] = None,
) -> None:
    """A model card: details and licence, intended use, out of scope, training data, quality from
    reviewers' verdicts with intervals, drift, caveats; and the archive's snapshots it was made from."""
    import asyncio

    from modstream.cli.model_cards import ArchiveEvidence, notices_path
    from modstream.core.evidence import Period
    from modstream.models.served_cards import card_of, notices_in, slug
    from modstream.models.taxonomy import TaxonomyError

    settings = get_settings()
    root = settings.model_repository
    config = root / name / "config.pbtxt"
    if not config.is_file():
        err.print(f"[red]no model {name!r} in {root}[/red]")
        raise typer.Exit(2)
    chosen = version if version is not None else _serving(root, name)
    if not (root / name / str(chosen)).is_dir():
        err.print(f"[red]{name} has no version {chosen}[/red]")
        raise typer.Exit(2)
    evidence = ArchiveEvidence(settings, Period(since=as_utc(since), until=as_utc(until)))
    with console.status("reading reviewers' verdicts from the archive and the drift monitor's state…"):
        quality = evidence.quality()
        drift = asyncio.run(evidence.drift())
    for problem in [*quality.unavailable, *([drift] if isinstance(drift, str) else [])]:
        err.print(f"[yellow]not read: {problem}; the card says so[/yellow]")
    try:
        made = card_of(
            root,
            name,
            str(chosen),
            notices=notices_in(notices_path(settings)),
            quality=quality,
            drift=drift,
            now=datetime.now(UTC),
        )
    except TaxonomyError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if out is not None and out.is_dir():
        for suffix, text in ((".md", made.markdown()), (".json", made.to_json())):
            (out / f"{slug(made)}{suffix}").write_text(text)
        console.print(f"{name} version {chosen}: {slug(made)}.md and .json written to {out}")
    elif out is not None:
        out.write_text(made.to_json() if as_json else made.markdown())
        console.print(f"{name} version {chosen}: card written to {out}")
    else:
        print(made.to_json() if as_json else made.markdown(), end="")


def _serving(root: Path, model: str) -> int:
    from modstream.models.served_cards import serving_version

    return serving_version(root, model)
