"""``modstream demo``: the guided first run, shown in the terminal."""

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.live import Live

from modstream.cli import stack
from modstream.cli.console import console, err, get_settings
from modstream.cli.uploads import upload_with_progress

if TYPE_CHECKING:
    from modstream.core.events import ModerationDecision


def demo(
    images: Annotated[int, typer.Option(min=1, help="how many sample images to upload")] = 24,
    timeout: Annotated[float, typer.Option(help="seconds to wait for all decisions")] = 300.0,
) -> None:
    """The guided first run: stack, worker, sample uploads, their decisions as they arrive, the review queue."""
    import asyncio

    from modstream.decisions.follow import read_decisions
    from modstream.demo.run import Operations, Show, run_demo
    from modstream.review.service import ReviewService
    from modstream.review.web.server import users_file
    from modstream.review.web.users import add_user

    settings = get_settings()
    users = users_file(settings)
    operations = Operations(
        users_file=users,
        add_admin=lambda name, password: add_user(users, name, "admin", password),
        start_stack=lambda: stack.up(timeout=300.0, worker=True, dashboard=True),
        upload=lambda files, tenant: asyncio.run(upload_with_progress(files, tenant, concurrency=8)),
        decisions=lambda event_ids: read_decisions(settings, follow=True, event_ids=event_ids),
        review=lambda: ReviewService(settings),
        reviewer_token=lambda name: _reviewer_token(users, name),
        dashboard_url=f"http://127.0.0.1:{settings.dashboard_port}/",
    )
    tally, closing = run_demo(operations, Show(console.rule, _live_decisions), settings.state_dir, images, timeout)
    for line in closing:
        console.print(line)
    if not tally.complete:
        err.print(f"[red]only {len(tally.seen)} of {tally.expected} decisions within {timeout:.0f}s[/red]")
        raise typer.Exit(1)


@contextmanager
def _live_decisions(names: Mapping[str, str]) -> "Iterator[Callable[[ModerationDecision], None]]":
    """A table that grows by each decision it is shown; ``names`` maps event ids to image names."""
    from modstream.decisions.render import decision_cells, decisions_table

    table = decisions_table()
    with Live(table, console=console, auto_refresh=False) as live:

        def show(decision: "ModerationDecision") -> None:
            table.add_row(*decision_cells(decision, names[decision.event_id]))
            live.refresh()

        yield show


def _reviewer_token(users: Path, name: str) -> str:
    """An API token for ``name``, a reviewer (made one, with a random password, if new)."""
    import secrets

    from modstream.review.web.users import add_user, load_users, mint_token

    if name not in load_users(users):
        add_user(users, name, "reviewer", secrets.token_urlsafe(16))
    return mint_token(users, name)
