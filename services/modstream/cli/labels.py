"""``modstream labels …``: review labels that a team defines beyond the taxonomy's.

A defined label is offered on every review job at once (the dashboard reads the registry at
each page, API call and verdict); removing one stops offering it, and verdicts that named it
keep it.
"""

import getpass
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from modstream.cli.console import console, err, get_settings

if TYPE_CHECKING:
    from modstream.core.labels import LabelRegistry
    from modstream.core.settings import Settings
    from modstream.learn.seed import Alike

app = typer.Typer(help="Review labels no model knows yet: reviewers tick them, verdicts carry them.")
T = TypeVar("T")


def taxonomy_labels(settings: "Settings") -> list[str]:
    """The taxonomy's labels, which no defined label may take; LabelError when the taxonomy
    cannot be read (then nothing is defined: the name could not be checked)."""
    from modstream.core.labels import LabelError
    from modstream.models.taxonomy import TaxonomyError, read_taxonomy

    try:
        taxonomy = read_taxonomy(settings.model_repository)
        return [*taxonomy.labels, *taxonomy.text]
    except TaxonomyError as exc:
        raise LabelError(f"the name cannot be checked against the taxonomy: {exc}") from exc


def _with_registry(work: "Callable[[LabelRegistry], Awaitable[T]]") -> T:
    """Run ``work`` on the registry in Redis; a refusal exits 2, an unreachable Redis 1."""
    import asyncio

    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError, TimeoutError

    from modstream.core.labels import LabelError, LabelRegistry

    async def run() -> T:
        client = aioredis.Redis.from_url(get_settings().redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            return await work(LabelRegistry(client))
        finally:
            await client.aclose()

    try:
        return asyncio.run(run())
    except LabelError as exc:
        err.print(f"refused: {exc}", markup=False)
        raise typer.Exit(2) from exc
    except (ConnectionError, TimeoutError) as exc:
        err.print(f"cannot reach Redis (MODSTREAM_REDIS_URL): {exc}", markup=False)
        raise typer.Exit(1) from exc


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="a dotted lowercase name, e.g. emblem.red")],
    description: Annotated[str, typer.Option(help="what a reviewer ticks it for (shown beside the checkbox)")],
    by: Annotated[str, typer.Option("--by", help="who defines it (default: your user name)")] = "",
) -> None:
    """Define a label: every review job offers it from now on."""
    # the registry's models (pydantic, redis) only for the commands that use them: keeps the CLI's start fast
    from modstream.core.labels import LabelError, label_definition

    try:
        definition = label_definition(
            name, description, by or getpass.getuser(), taxonomy=taxonomy_labels(get_settings())
        )
    except LabelError as exc:
        err.print(f"refused: {exc}", markup=False)
        raise typer.Exit(2) from exc
    _with_registry(lambda registry: registry.define(definition))
    console.print(f"label {definition.name} defined at {definition.defined_at:%Y-%m-%d %H:%M:%S} UTC")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False) -> None:
    """The defined labels: name, when and by whom defined, description."""
    labels = _with_registry(lambda registry: registry.all())
    if as_json:
        print(json.dumps([label.model_dump(mode="json") for label in labels], indent=2))
        return
    if not labels:
        console.print("no labels defined yet: add one with `modstream labels add NAME --description TEXT`")
    for label in labels:
        console.print(
            f"{label.name:24} {label.defined_at:%Y-%m-%d %H:%M:%S} UTC  {label.defined_by:12} {label.description}",
            markup=False,
            highlight=False,
        )


@app.command()
def remove(name: str) -> None:
    """Stop offering a label (verdicts already given keep it)."""
    if not _with_registry(lambda registry: registry.remove(name)):
        err.print(f"refused: no label named {name!r} is defined (see `modstream labels list`)", markup=False)
        raise typer.Exit(2)
    console.print(f"label {name} removed: jobs no longer offer it")


@app.command()
def seed(
    name: Annotated[str, typer.Argument(help="the defined label reviewers should look for")],
    example: Annotated[
        list[Path], typer.Option(exists=True, dir_okay=False, help="an image showing it (repeat for several)")
    ],
    count: Annotated[int, typer.Option(min=1, max=10_000, help="how many jobs to add at most")] = 50,
    days: Annotated[float, typer.Option(min=0.01, help="look this many days back in the archive")] = 30.0,
    tenant: Annotated[str | None, typer.Option(help="only this tenant's images")] = None,
    queue: Annotated[str | None, typer.Option(help="the labelling queue (default: label-<name with dashes>)")] = None,
    by: Annotated[str, typer.Option("--by", help="who asks (default: your user name)")] = "",
) -> None:
    """Fill a labelling queue with the archived images most like the examples (nearest in the
    ensemble's embedding), so reviewers see the rare concept without waiting for it. Images
    labelled since the label's definition are left out; a labelling verdict decides nothing."""
    import asyncio

    from modstream.core.events import QUEUE_NAME
    from modstream.learn.seed import CannotSeed
    from modstream.learn.seed import seed as find
    from modstream.review.intake import labelling_job
    from modstream.review.service import ReviewService

    settings = get_settings()
    target = queue or f"label-{name.replace('.', '-')}"
    if not re.match(QUEUE_NAME, target):
        err.print(f"refused: {target!r} is not a queue name (lowercase letters, digits, - and _)", markup=False)
        raise typer.Exit(2)
    definition = _with_registry(lambda registry: registry.get(name))
    if definition is None:
        err.print(f"refused: no label named {name!r} is defined (see `modstream labels list`)", markup=False)
        raise typer.Exit(2)
    examples = {str(path): path.read_bytes() for path in example}
    until = datetime.now(UTC)

    async def run() -> tuple[list["Alike"], str, int]:
        found, model = await find(
            settings,
            examples,
            count=count,
            queue=target,
            since=until - timedelta(days=days),
            until=until,
            labelled_since=definition.defined_at,
            tenant=tenant,
        )
        service = ReviewService(settings)
        try:
            jobs = [labelling_job(alike.request, name) for alike in found]
            return found, model, await service.enqueue_all(jobs, by or getpass.getuser())
        finally:
            await service.stop()

    try:
        found, model, added = asyncio.run(run())
    except CannotSeed as exc:
        err.print(f"refused: {exc}", markup=False)
        raise typer.Exit(2) from exc
    for alike in found:
        request = alike.request
        console.print(f"{alike.similarity:.3f}  {request.event_id}  {request.tenant}  {request.key}", markup=False)
    console.print(
        f"{len(found)} archived images most like {len(examples)} example(s) by {model}'s embedding: "
        f"{added} new labelling jobs in queue {target} ({len(found) - added} were there already)"
    )
