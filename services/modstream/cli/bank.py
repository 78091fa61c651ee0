"""``modstream bank …``: hash banks of known content, their entries, and what an image matches."""

import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from modstream.bank.format_names import Format
from modstream.cli.console import console, err, get_settings, progress_bar
from modstream.core.bank_action import BankAction

if TYPE_CHECKING:
    from collections.abc import Callable

    from modstream.bank.state import Banks
    from modstream.bank.topic import Change
    from modstream.core.events import BankEntry, ImageHashes
    from modstream.core.settings import Settings

app = typer.Typer(
    help="Banks: known images matched by PDQ and exact hashes before the classifier, and phrases matched in the "
    "text read in images."
)
By = Annotated[str, typer.Option("--by", help="who makes the change (default: your user name)")]
IMPORT_CHUNK = 5000  # entries per publish: the progress bar moves per chunk


RetroDays = Annotated[
    float | None,
    typer.Option(help="also match the uploads of this many past days (default MODSTREAM_BANK_RETRO_DAYS; 0: no)"),
]


def _run_changes(make_changes: "Callable[[Banks], Change | list[Change]]", what: str, retro_days: float = 0) -> int:
    """Read the banks, make the changes (refused with the reason), publish them; then match
    the past ``retro_days`` of uploads against the entries added."""
    import asyncio

    from modstream.bank import ops, topic
    from modstream.core.events import BankEntry  # pydantic's models only once a change runs: a fast CLI start

    settings = get_settings()

    async def run() -> int:
        banks = await topic.read_banks(settings)
        try:
            changes = make_changes(banks)
        except ops.BankError as exc:
            err.print(f"refused: {exc}")
            raise typer.Exit(2) from exc
        made = changes if isinstance(changes, list) else [changes]
        await topic.publish(settings, made)
        console.print(f"{what}: {len(made)} change(s) on {settings.topic_banks}")
        if retro_days > 0:
            added = [BankEntry.model_validate_json(value) for key, value in made if value and key.startswith("entry/")]
            await _match_recent(settings, banks, added, retro_days)
        return len(made)

    return asyncio.run(run())


async def _match_recent(settings: "Settings", banks: "Banks", added: "list[BankEntry]", days: float) -> None:
    from modstream.bank.retro import match_recent

    report = await match_recent(settings, banks, added, days)
    console.print(f"uploads of the last {days:g} days: {report.scanned} looked at, {report.matched} newly decided")
    for decision in report.decisions:
        match = decision.bank_match
        assert match is not None
        console.print(
            f"  {decision.event_id} → {decision.decision.value} ({match.bank}/{match.entry_id}, d={match.distance})"
        )


def _hashed(images: list[Path]) -> "list[ImageHashes]":
    """The files' hashes; a file that is not a decodable image stops the command, named."""
    import asyncio

    from modstream.bank.hashing import hash_files
    from modstream.core.inference import ImageRejected

    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        err.print(f"no such file: {', '.join(missing)}")
        raise typer.Exit(2)
    try:
        return asyncio.run(hash_files(get_settings(), images)) if images else []
    except ImageRejected as exc:
        err.print(f"refused: {exc.reason.value}: {exc.message}")
        raise typer.Exit(2) from exc


@app.command()
def create(
    name: str,
    action: Annotated[BankAction, typer.Option(help="what a match does")],
    queue: Annotated[str | None, typer.Option(help="the review queue (review banks only)")] = None,
    distance: Annotated[int, typer.Option(help="the largest PDQ distance that matches")] = 31,
    min_quality: Annotated[int, typer.Option(help="PDQ hashes of lower quality never match")] = 50,
    tenant: Annotated[list[str] | None, typer.Option(help="only for these tenants (repeat; default: all)")] = None,
    description: Annotated[str, typer.Option()] = "",
    by: By = "",
) -> None:
    """Create a bank."""
    from modstream.bank import ops

    fields = {
        "name": name,
        "action": action,
        "review_queue": queue,
        "distance": distance,
        "min_quality": min_quality,
        "tenants": tenant or None,
        "description": description,
        "changed_by": by or getpass.getuser(),
    }
    _run_changes(lambda banks: ops.create(banks, **fields), f"bank {name} created")


@app.command("set")
def set_(
    name: str,
    action: Annotated[BankAction | None, typer.Option(help="what a match does")] = None,
    queue: Annotated[str | None, typer.Option(help="the review queue (review banks only)")] = None,
    distance: Annotated[int | None, typer.Option(help="the largest PDQ distance that matches")] = None,
    min_quality: Annotated[int | None, typer.Option(help="PDQ hashes of lower quality never match")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="switch matching on or off")] = None,
    by: By = "",
) -> None:
    """Change a bank's settings (only those given)."""
    from modstream.bank import ops

    changes = {
        "action": action,
        "review_queue": queue,
        "distance": distance,
        "min_quality": min_quality,
        "enabled": enabled,
        "changed_by": by or getpass.getuser(),
    }
    _run_changes(lambda banks: ops.update(banks, name, **changes), f"bank {name} changed")


@app.command()
def delete(name: str, yes: Annotated[bool, typer.Option("--yes", help="no question asked")] = False) -> None:
    """Delete a bank and every entry in it."""
    from modstream.bank import ops

    if not yes:
        typer.confirm(f"delete bank {name} and all its entries?", abort=True)
    _run_changes(lambda banks: ops.delete(banks, name), f"bank {name} deleted")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False) -> None:
    """The banks, their settings and how many entries each holds."""
    import asyncio

    from modstream.bank.topic import read_banks

    banks = asyncio.run(read_banks(get_settings()))
    rows = [
        bank.model_dump(mode="json", exclude={"schema_version", "event_type"})
        | {"entries": len(banks.entries_of(bank.name))}
        for bank in sorted(banks.banks.values(), key=lambda b: b.name)
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print("no banks yet: create one with `modstream bank create NAME --action block`")
    for row in rows:
        state = "on" if row["enabled"] else "OFF"
        queue = f" → {row['review_queue']}" if row["review_queue"] else ""
        tenants = ",".join(row["tenants"]) if row["tenants"] else "all tenants"
        console.print(
            f"{row['name']:24} {row['action']}{queue:14} distance ≤{row['distance']:<3} {state:3} "
            f"{row['entries']:>9} entries  {tenants}  {row['description']}"
        )


@app.command()
def add(
    bank: str,
    images: Annotated[list[Path] | None, typer.Argument(help="image files to hash (PDQ through Triton)")] = None,
    pdq: Annotated[list[str] | None, typer.Option(help="a PDQ hash, 64 hex (repeat)")] = None,
    sha256: Annotated[list[str] | None, typer.Option(help="a SHA-256 of an image's bytes (repeat)")] = None,
    md5: Annotated[list[str] | None, typer.Option(help="an MD5 of an image's bytes (repeat)")] = None,
    text: Annotated[list[str] | None, typer.Option(help="a phrase to find in the text read in images (repeat)")] = None,
    note: Annotated[str | None, typer.Option(help="kept with each entry")] = None,
    retro_days: RetroDays = None,
    by: By = "",
) -> None:
    """Add images (hashed here: SHA-256, MD5, and PDQ by the Triton preprocess), bare hashes, or
    phrases; recent uploads that match the hashes are decided again."""
    from modstream.bank import ops

    signals: list[dict[str, object]] = [{"pdq": h.lower(), "pdq_quality": None} for h in pdq or []]
    signals += [{"sha256": h.lower()} for h in sha256 or []]
    signals += [{"md5": h.lower()} for h in md5 or []]
    signals += [{"signals": {"text": phrase}} for phrase in text or []]
    if images:
        signals += [ops.signals(h) for h in _hashed(images)]
    if not signals:
        err.print("nothing to add: give image files, or --pdq / --sha256 / --md5 / --text")
        raise typer.Exit(2)
    about = {"added_by": by or getpass.getuser(), "note": note}
    days = get_settings().bank_retro_days if retro_days is None else retro_days
    _run_changes(lambda banks: ops.add(banks, bank, signals, **about), f"added to {bank}", days)


@app.command()
def retro(
    bank: str,
    days: Annotated[float, typer.Option(help="how many past days of uploads")] = 7.0,
    entry: Annotated[list[str] | None, typer.Option(help="only these entries (repeat; default: all)")] = None,
) -> None:
    """Match the uploads of the last days against a bank's entries, and decide those that match."""
    import asyncio

    from modstream.bank.topic import read_banks

    settings = get_settings()

    async def run() -> None:
        banks = await read_banks(settings)
        entries = [e for e in banks.entries_of(bank) if not entry or e.entry_id in entry]
        if bank not in banks.banks or not entries:
            err.print(f"refused: bank {bank!r} has no such entries")
            raise typer.Exit(2)
        await _match_recent(settings, banks, entries, days)

    asyncio.run(run())


@app.command()
def remove(bank: str, entry_ids: Annotated[list[str], typer.Argument(help="entry ids (see `bank export`)")]) -> None:
    """Remove entries from a bank."""
    from modstream.bank import ops

    _run_changes(lambda banks: ops.remove(banks, bank, entry_ids), f"removed from {bank}")


@app.command()
def match(
    images: Annotated[list[Path] | None, typer.Argument(help="image files to hash and look up")] = None,
    pdq: Annotated[list[str] | None, typer.Option(help="a PDQ hash to look up (repeat)")] = None,
    text: Annotated[list[str] | None, typer.Option(help="a text to find banked phrases in (repeat)")] = None,
    tenant: Annotated[str, typer.Option(help="match as this tenant's upload")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="one JSON document")] = False,
) -> None:
    """What images (or PDQ hashes, or texts) would match, as the worker would decide it."""
    import asyncio

    from modstream.bank.hashing import pdq_of
    from modstream.bank.topic import read_banks

    settings = get_settings()
    try:
        given = [(h, pdq_of(h)) for h in pdq or []]
    except ValueError as exc:
        err.print(f"refused: {exc}")
        raise typer.Exit(2) from exc
    hashed = _hashed(images or [])
    banks = asyncio.run(read_banks(settings))
    found = [(str(path), banks.match(hashes, tenant)) for path, hashes in zip(images or [], hashed, strict=True)]
    found += [(shown, banks.match_signals(tenant, pdq=signal)) for shown, signal in given]
    found += [(phrase, banks.match_signals(tenant, text=phrase)) for phrase in text or []]
    results: list[dict[str, Any]] = [
        {"query": query, "match": None if match is None else match.ref().model_dump(mode="json")}
        for query, match in found
    ]
    if as_json:
        print(json.dumps(results, indent=2))
        return
    for result in results:
        m = result["match"]
        said = (
            "no match"
            if m is None
            else f"{m['action']} by {m['bank']}/{m['entry_id']} ({m['signal']} d={m['distance']})"
        )
        console.print(f"{result['query']}: {said}")


FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        help="plain: PDQ hex lines; te: ThreatExchange '<signal type> <signal>' lines; "
        "te-csv: `threatexchange dataset -P --csv`; hma: HMA 2.0 bank content JSON",
    ),
]


@app.command("import")
def import_(
    bank: str,
    file: Annotated[Path, typer.Argument(help="the file to read ('-': standard input)")],
    fmt: FormatOption = Format.PLAIN,
    note: Annotated[str | None, typer.Option(help="kept with each entry the file gives no note for")] = None,
    by: By = "",
) -> None:
    """Import hashes from a file: the whole file is checked first, and one bad line refuses it all."""
    import asyncio

    from modstream.bank import formats, ops, topic

    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
        items = formats.read(fmt, text)
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"refused: cannot read {file}: {exc}")
        raise typer.Exit(2) from exc
    except formats.FormatError as exc:
        err.print(f"refused: {file} ({fmt.value}): {exc}; nothing was imported")
        raise typer.Exit(2) from exc
    console.print(f"{file}: {len(items)} entries read ({len({i.entry_id for i in items})} distinct ids)")
    settings = get_settings()
    about = {"added_by": by or getpass.getuser(), "note": note}

    async def run() -> int:
        banks = await topic.read_banks(settings)
        try:
            changes = ops.add(banks, bank, [item.fields() for item in items], **about)
        except ops.BankError as exc:
            err.print(f"refused: {exc}; nothing was imported")
            raise typer.Exit(2) from exc
        with progress_bar() as bar:
            task = bar.add_task(f"publishing to {bank}", total=len(changes))
            for start in range(0, len(changes), IMPORT_CHUNK):
                await topic.publish(settings, changes[start : start + IMPORT_CHUNK])
                bar.advance(task, len(changes[start : start + IMPORT_CHUNK]))
        return len(changes)

    count = asyncio.run(run())
    console.print(f"imported into {bank}: {count} entries on {settings.topic_banks}")


@app.command()
def export(
    bank: str,
    fmt: FormatOption = Format.PLAIN,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write here (default: standard output)")] = None,
) -> None:
    """Export a bank's entries (with their ids where the format has room: hma)."""
    import asyncio

    from modstream.bank import formats
    from modstream.bank.topic import read_banks

    banks = asyncio.run(read_banks(get_settings()))
    found = banks.banks.get(bank)
    if found is None:
        err.print(f"no bank named {bank!r} (banks: {', '.join(sorted(banks.banks)) or 'none yet'})")
        raise typer.Exit(2)
    entries = banks.entries_of(bank)
    if output is None:
        counts = formats.write(fmt, found, entries, sys.stdout)
    else:
        with output.open("w", encoding="utf-8", newline="") as out:
            counts = formats.write(fmt, found, entries, out)
    left_out = (
        f"; {counts.skipped} left out, which {fmt.value} has no room for (plain: PDQ hashes only; te: no phrase "
        "with spaces; all of them: --format hma)"
        if counts.skipped
        else ""
    )
    err.print(f"{bank}: {counts.entries} entries written to {output or 'standard output'} ({fmt.value}){left_out}")
