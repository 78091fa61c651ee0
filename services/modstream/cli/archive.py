"""``modstream archive``: the decision archiver, its table maintenance and the migration."""

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from modstream.cli.console import console, err, get_settings, progress_bar

if TYPE_CHECKING:
    from rich.progress import TaskID

    from modstream.archive.archiver import Observer
    from modstream.archive.retention import Rules
    from modstream.core.settings import Settings

app = typer.Typer(help="The decision archive: Iceberg tables on the object store.")


@app.callback(invoke_without_command=True)
def archive(
    ctx: typer.Context,
    detach: Annotated[bool, typer.Option(help="run in the background, managed with the stack")] = False,
) -> None:
    """Archive decisions, verdicts and shadow scores into Iceberg tables (the archiver)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    if detach:
        from modstream.stack import start_service

        start_service(settings, "archive", timeout=60.0)
        console.print(f"archiver running in the background; log: {settings.state_dir / 'logs' / 'archive.log'}")
        return
    from modstream.archive.service import run_archiver

    run_archiver(settings, lambda: archive_observers(settings), retention_rules(settings))


@app.command()
def maintain(
    retain_hours: Annotated[
        float | None, typer.Option(help="keep snapshots this many hours (default: the setting)", min=0)
    ] = None,
    grace_minutes: Annotated[
        float, typer.Option(help="leave unreferenced files younger than this (a write about to commit)", min=0)
    ] = 60.0,
) -> None:
    """Compact small files by day, expire old snapshots and delete the files nothing references."""
    from modstream.archive.maintenance import maintain as run

    settings = get_settings()
    retain = settings.archive_snapshot_retention_hours if retain_hours is None else retain_hours
    with console.status("maintaining the archive's tables"):
        done = run(settings, retain=timedelta(hours=retain), grace=timedelta(minutes=grace_minutes))
    if not done:
        console.print("no archive tables yet")
    for table in done:
        console.print(
            f"{table.table}: {table.files_before} → {table.files_after} data files "
            f"({table.days_compacted} days compacted, {table.days_too_large} too large), "
            f"{table.snapshots_expired} snapshots expired, {table.orphans_removed} orphan files removed"
        )


@app.command()
def retain() -> None:
    """Enforce every tenant's `retention` policy section now (the archiver does it every
    MODSTREAM_ARCHIVE_RETENTION_SECONDS): remove what is older than its limits."""
    from modstream.archive.retention import enforce

    settings = get_settings()
    with console.status("enforcing each tenant's retention"):
        done = enforce(settings, retention_rules(settings))
    if not done:
        console.print("no tenant's policy limits how long anything is kept")
    for retained in done:
        held = f", {retained.held} held while appealable" if retained.kind == "images" else ""
        held += f", {retained.derived} occlusion maps with them" if retained.derived else ""
        console.print(
            f"{retained.tenant}: {retained.removed} {retained.kind} from before "
            f"{retained.before:%Y-%m-%d %H:%M} removed{held}"
        )


@app.command()
def migrate(
    delete_source: Annotated[
        bool, typer.Option(help="delete the old Parquet files of each table whose rows all add up")
    ] = False,
) -> None:
    """Move an archive in the Parquet layout before Iceberg (<table>/date=…/*.parquet) into the tables."""
    from modstream.archive.migrate import MigrationError, delete_old_files
    from modstream.archive.migrate import migrate as run

    settings = get_settings()
    with progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def advance(table: str, done: int, files: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(f"{table} files", total=files)
            bar.update(tasks[table], completed=done)

        try:
            migrated = run(settings, advance)
        except MigrationError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    if not migrated:
        console.print(f"no Parquet files in the old layout in bucket {settings.archive_bucket}")
        return
    for m in migrated:
        console.print(
            f"{m.table}: {m.files} files, {m.read} rows read = {m.written} written + "
            f"{m.repeated} repeats of a record read before + {m.already_stored} already in the table"
        )
    if delete_source:
        console.print(f"deleted {delete_old_files(settings, migrated)} old files")


def retention_rules(settings: "Settings") -> "Rules":
    """Each tenant's retention and appeal sections, read leniently (the last valid ones while
    the policy files are invalid, as the dashboard reads appeals), and the occlusion maps made of
    an image, which retention removes with it."""
    from modstream.archive.retention import Rules
    from modstream.core.appeals import AppealRules
    from modstream.core.retention import Retention
    from modstream.core.storage import ObjectStore
    from modstream.explain.store import event_prefix
    from modstream.policy.watcher import Sections

    def maps_of(event_ids: list[str]) -> int:
        # The explain room's occlusion maps of an image go when the image goes.
        store = ObjectStore(settings)
        return sum(store.erase_under(settings.archive_bucket, event_prefix(event_id)) for event_id in event_ids)

    return Rules(
        retention=Sections(settings.policies_dir, lambda policy: policy.retention, Retention()),
        appeals=Sections(settings.policies_dir, lambda policy: policy.appeals, AppealRules()),
        derived=maps_of,
    )


def archive_observers(settings: "Settings") -> "list[Observer]":
    """What watches the archived stream: drift, with its audit-rate changes in the audit log."""
    import redis.asyncio as aioredis

    from modstream.quality.drift_monitor import DriftMonitor
    from modstream.review.audit import AuditLog

    client = aioredis.Redis.from_url(settings.redis_url)
    return [DriftMonitor(client, settings, AuditLog(client).append)]
