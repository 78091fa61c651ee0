"""Where every command writes: the terminal, its error stream, and progress bars; how it reads
times; and the settings, loaded only once a command runs (pydantic-settings is not needed to
parse options or print help)."""

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress

    from modstream.core.settings import Settings

console = Console()
err = Console(stderr=True)


def progress_bar() -> "Progress":
    """A bar per task: its description, done of total, time so far."""
    # rich.progress only for the commands that show a bar: keeps the CLI's start fast
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def get_settings() -> "Settings":
    """The settings (``modstream.core.settings.get_settings``: read once, then the same)."""
    # pydantic-settings only once a command runs: keeps the CLI's start (and --help) fast
    from modstream.core.settings import get_settings as settings

    return settings()


def as_utc(moment: datetime | None) -> datetime | None:
    """A time given on the command line, read as UTC when it names no zone."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
