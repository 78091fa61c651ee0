"""``modstream schemas``: the JSON Schema files of the wire contract, written or checked."""

from typing import Annotated

import typer

from modstream.cli.console import console, err


def schemas(check: Annotated[bool, typer.Option(help="fail if a schema file is out of date")] = False) -> None:
    """Write the JSON Schema of every record type to schemas/ (from the event models)."""
    # the event models (pydantic) only for this command: keeps the CLI's start fast
    from modstream.core.schemas import stale_schemas, write_schemas

    if check:
        stale = stale_schemas()
        if stale:
            err.print(f"[red]out of date: {', '.join(stale)}[/red] (run: modstream schemas)")
            raise typer.Exit(1)
        console.print("schemas are up to date")
        return
    for path in write_schemas():
        console.print(f"wrote {path}")
