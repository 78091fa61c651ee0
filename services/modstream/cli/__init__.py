"""``modstream``: one command for everything a person runs.

One module per command group; each parses its options and calls into the rooms below.
"""

import typer

from modstream.cli import (
    archive,
    bank,
    bench,
    dashboard,
    demo,
    erase,
    labels,
    model,
    quality,
    schemas,
    stack,
    statements,
    uploads,
    worker,
)

app = typer.Typer(help="Streaming image moderation: Kafka, Faust, S3 and Triton.", no_args_is_help=True)
for command in (
    worker.worker,
    worker.init,
    uploads.upload,
    uploads.decisions,
    schemas.schemas,
    demo.demo,
    bench.bench,
    erase.erase,
):
    app.command()(command)
app.add_typer(stack.app, name="stack")
app.add_typer(archive.app, name="archive")
app.add_typer(statements.app, name="statements")
app.add_typer(model.app, name="model")
app.add_typer(dashboard.app, name="dashboard")
app.add_typer(quality.app, name="quality")
app.add_typer(bank.app, name="bank")
app.add_typer(labels.app, name="labels")
