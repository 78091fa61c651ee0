"""``modstream statements``: statements of reasons for restrictions, and their submission."""

from typing import Annotated

import typer

from modstream.cli.console import console, get_settings

app = typer.Typer(help="Statements of reasons (DSA Art. 17) and their submission to the Transparency Database.")


@app.callback(invoke_without_command=True)
def statements(
    ctx: typer.Context,
    detach: Annotated[bool, typer.Option(help="run in the background, managed with the stack")] = False,
) -> None:
    """Write a statement for every restriction of a tenant whose policy has a `statements`
    section, and submit them where the section names an endpoint."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    if detach:
        from modstream.stack import start_service

        start_service(settings, "statements", timeout=60.0)
        console.print(f"statements running in the background; log: {settings.state_dir / 'logs' / 'statements.log'}")
        return
    from modstream.statements.service import run_statements

    run_statements(settings)
