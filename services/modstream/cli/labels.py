"""``modstream labels …``: review labels that a team defines beyond the taxonomy's.

A defined label is offered on every review job at once (the dashboard reads the registry at
each page, API call and verdict); removing one stops offering it, and verdicts that named it
keep it.
"""

import asyncio
import getpass
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer

from modstream.cli.console import console, err
from modstream.core.labels import LabelError, LabelRegistry, label_definition
from modstream.core.settings import Settings, get_settings

app = typer.Typer(help="Review labels no model knows yet: reviewers tick them, verdicts carry them.")
T = TypeVar("T")


def taxonomy_labels(settings: Settings) -> list[str]:
    """The taxonomy's labels, which no defined label may take; LabelError when the taxonomy
    cannot be read (then nothing is defined: the name could not be checked)."""
    from modstream.models.taxonomy import TaxonomyError, read_taxonomy

    try:
        return list(read_taxonomy(settings.model_repository).labels)
    except TaxonomyError as exc:
        raise LabelError(f"the name cannot be checked against the taxonomy: {exc}") from exc


def _with_registry(work: Callable[[LabelRegistry], Awaitable[T]]) -> T:
    """Run ``work`` on the registry in Redis; a refusal exits 2, an unreachable Redis 1."""
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError, TimeoutError

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
