"""``modstream erase``: everything the system holds of uploads, removed, with a receipt (GDPR Art. 17)."""

import getpass
from typing import Annotated

import typer

from modstream.cli.console import console, err, get_settings


def erase(
    event: Annotated[list[str] | None, typer.Option("--event", help="an upload's event id (repeatable)")] = None,
    subject: Annotated[
        str | None, typer.Option(help="the uploader's pseudonymous id: every upload of theirs the archive holds")
    ] = None,
    receipt: Annotated[str | None, typer.Option(help="show the stored receipt of an earlier erasure instead")] = None,
    by: Annotated[str | None, typer.Option(help="who asks, for the receipt (default: this account)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="the receipt as JSON")] = False,
) -> None:
    """Remove the image and its versions, the archive's rows and files, review jobs, appeal
    records, bank entries taken from it and the workers' cached scores; print the receipt
    (also stored in the archive bucket under erasures/). Refused, with nothing removed, while an
    appeal on one of the uploads is in progress."""
    if receipt is None and not event and subject is None:
        err.print("name what to erase: --event ID (repeatable) or --subject ID; or --receipt ID to show one")
        raise typer.Exit(2)
    import asyncio

    from modstream.core.events import NotAnId
    from modstream.erasure.run import Erasure, ErasureRefused, ReceiptMissing

    async def run() -> str:
        erasure = Erasure(get_settings())
        try:
            if receipt is not None:
                done = await erasure.receipt(receipt)
            else:
                done = await erasure.erase(
                    event_ids=event or [],
                    subject=subject,
                    requested_by=by or getpass.getuser(),
                    on_stage=lambda stage: err.print(f"[dim]{stage}[/dim]"),
                )
        finally:
            await erasure.close()
        return done.model_dump_json(indent=2) if as_json else done.text()

    try:
        shown = asyncio.run(run())
    except NotAnId as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except (ErasureRefused, ReceiptMissing) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(shown, highlight=False, markup=False, soft_wrap=True)
