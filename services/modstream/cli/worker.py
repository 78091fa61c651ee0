"""``modstream worker`` and ``modstream init``: the stream worker, and the servers prepared for it."""

from typing import Annotated

import typer

from modstream.cli.console import console, err, get_settings


def worker(
    loglevel: Annotated[str, typer.Option(help="Faust's own log level")] = "warning",
    detach: Annotated[bool, typer.Option(help="run in the background, managed with the stack")] = False,
) -> None:
    """Run the stream worker: upload events in, decisions out."""
    import asyncio

    settings = get_settings()
    if detach:
        from modstream.stack import start_service

        start_service(settings, "worker", timeout=60.0)
        console.print(f"worker running in the background; log: {settings.state_dir / 'logs' / 'worker.log'}")
        return
    from modstream.core.provision import StorageMisconfigured, check_uploads_bucket
    from modstream.core.storage import StorageUnavailable
    from modstream.core.topics import ensure_topics
    from modstream.worker.app import run_worker

    # A configuration mistake refuses the start; an object store that is down is waited for later.
    try:
        check_uploads_bucket(settings)
    except StorageMisconfigured as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except StorageUnavailable as exc:
        err.print(f"[yellow]the object store does not answer yet ({exc}); the worker will wait for it[/yellow]")
    asyncio.run(ensure_topics(settings))
    run_worker(settings, loglevel)


def init() -> None:
    """Prepare the servers for a first run: topics, the uploads bucket, the default model's weights.

    Safe to run again: what exists is left as it is. The container stack runs it once at start.
    """
    from modstream.core.provision import provision
    from modstream.models.weights import install_default_weights

    settings = get_settings()
    for weights in install_default_weights(settings.model_repository, settings.state_dir / "cache", console.print):
        console.print(f"  installed: {weights}")
    provision(settings)
    console.print(f"topics on {settings.kafka_bootstrap} and bucket s3://{settings.uploads_bucket}: ready")
