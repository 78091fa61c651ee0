"""Where every command writes: the terminal, its error stream, and progress bars; and how it reads times."""

from datetime import UTC, datetime

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
err = Console(stderr=True)


def progress_bar() -> Progress:
    """A bar per task: its description, done of total, time so far."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console)


def as_utc(moment: datetime | None) -> datetime | None:
    """A time given on the command line, read as UTC when it names no zone."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment
