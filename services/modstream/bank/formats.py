"""Bank entries in the files that hash-sharing tools write and read: text in, text out.

Formats (``modstream bank import/export --format``), each as the real tools write it:

``plain``
    One PDQ hash per line (64 hex digits), optionally followed by whitespace or a comma and
    the hash's quality (0-100), then anything (kept as the entry's note): what Meta's
    ``pdq-photo-hasher`` prints (``hash,quality,filename``; pdq/cpp/bin/pdq-photo-hasher.cpp)
    and what ``threatexchange dataset -P -S -s pdq`` prints (bare hashes). Blank lines and
    ``#`` comments are skipped. Written as bare hashes, one per line, which is also what
    ``threatexchange match -H`` reads (python-threatexchange/threatexchange/cli/match_cmd.py).
``te``
    ThreatExchange's ``<signal type> <signal>`` lines: what ``threatexchange hash`` and
    ``threatexchange dataset -P [-S]`` print (the latter may add the collaboration and its
    opinion, kept as the note), and what its local-file exchange reads and appends
    (python-threatexchange/threatexchange/exchanges/impl/file_api.py). HMA 2.0 fetches such
    a file through that same exchange. Written one line per signal: ``pdq`` (ThreatExchange's
    name for the photo hash) and modstream's ``md5`` / ``sha256``, which ThreatExchange
    skips as types it does not know.
``te-csv``
    ``threatexchange dataset -P --csv``: a header ``signal_type,signal_str,collab,category,tags``
    then one row per signal (python-threatexchange/threatexchange/cli/dataset_cmd.py).
``hma``
    HMA 2.0's bank content JSON (hasher-matcher-actioner/src/OpenMediaMatch/schemas/curation.py
    ``BankContentResponse``, as ``GET /c/bank/<bank>/content/<id>?include_signals=true``
    answers): ``{"id", "disable_until_ts", "original_media_uri", "bank", "signals", "metadata",
    "note"}``, in a JSON array (or one object per line). Read also: the body HMA's
    ``POST /c/bank/<bank>/signal`` takes, ``{"pdq": "<hash>", "note": "…"}``.

Signal types are those ``bank/signals`` registers (``pdq``, ``md5``, ``sha256``: exact
hashes of the image's bytes; ``text``: a text bank's phrase), each checked by its own
``validate``; ``plain`` holds PDQ alone, and ``te`` no phrase with spaces in it (``te-csv``
and ``hma`` do). ThreatExchange's other types (``video_md5``, ``url``, ``raw_text`` …) are not
images' hashes and are refused, naming the line. Reading checks the whole text and raises
one ``FormatError`` naming every bad line, so a caller publishes all of a file or nothing.
"""

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

from modstream.bank import signals as types
from modstream.bank.format_names import Format
from modstream.bank.signals.base import shown
from modstream.core.events import Bank, BankAction, BankEntry

PLAIN_SIGNAL = "pdq"  # the one type of the plain format (pdq-photo-hasher's lines)
# ThreatExchange's signal types that modstream banks cannot hold, and why (its get_name()s).
FOREIGN_TYPES = {
    "video_md5": "ThreatExchange's MD5 of video files",
    "video_sha256": "ThreatExchange's SHA-256 of video files",
    "url": "a URL",
    "url_md5": "an MD5 of a URL",
    "raw_text": "text",
    "trend_query": "a text query",
}
ENTRY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")  # it becomes part of a topic key
TE_CSV_HEADER = ("signal_type", "signal_str", "collab", "category", "tags")
# How ThreatExchange would call a bank's entries (its SignalOpinionCategory names).
TE_CATEGORY = {
    BankAction.BLOCK: "POSITIVE_CLASS",
    BankAction.REVIEW: "INVESTIGATION_SEED",
    BankAction.ALLOW: "NEGATIVE_CLASS",
}
SHOWN_PROBLEMS = 5


class FormatError(ValueError):
    """A file that cannot be imported, with every bad line's number and reason."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        self.problems = problems
        shown = "; ".join(f"line {line}: {reason}" for line, reason in problems[:SHOWN_PROBLEMS])
        more = len(problems) - SHOWN_PROBLEMS
        super().__init__(shown + (f" (and {more} more bad lines)" if more > 0 else ""))


@dataclass(frozen=True)
class Imported:
    """One entry read from a file, and the line it starts on."""

    line: int
    entry_id: str
    signals: Mapping[str, str] = field(default_factory=dict)  # by signal type, validated
    pdq_quality: int | None = None
    note: str | None = None
    source_event_id: str | None = None

    def fields(self) -> dict[str, object]:
        """The entry's fields that the file gave (for ``ops.add``)."""
        given = {
            "entry_id": self.entry_id,
            **types.record_fields(self.signals),
            "pdq_quality": self.pdq_quality,
            "note": self.note,
            "source_event_id": self.source_event_id,
        }
        return {name: value for name, value in given.items() if value is not None}


class Written(NamedTuple):
    entries: int
    skipped: int  # entries the format has no room for (plain: those without a PDQ hash; te: phrases with spaces)


def signal(type_name: str, value: str) -> tuple[str, str]:
    """A signal as (its type's name, the value as that type keeps it); ``ValueError`` says
    what is wrong."""
    kind = type_name.strip().lower()
    if kind not in types.names():
        why = f": {FOREIGN_TYPES[kind]}" if kind in FOREIGN_TYPES else ""
        raise ValueError(f"unknown signal type {shown(type_name)}{why} (modstream banks hold {_held_types()})")
    return kind, types.get(kind).validate(value)


def read(fmt: Format | str, text: str) -> list[Imported]:
    """Every entry in ``text``; ``FormatError`` naming each bad line if any line is bad, or if
    there is no entry at all."""
    readers: dict[Format, Callable[[str, list[tuple[int, str]]], list[Imported]]] = {
        Format.PLAIN: _read_plain,
        Format.TE: _read_te,
        Format.TE_CSV: _read_te_csv,
        Format.HMA: _read_hma,
    }
    problems: list[tuple[int, str]] = []
    items = readers[Format(fmt)](text, problems)
    if problems:
        raise FormatError(problems)
    if not items:
        lines = len(text.splitlines())
        where = "the file is empty" if not text.strip() else "the file ends without a single hash"
        raise FormatError([(max(lines, 1), where)])
    return items


def write(fmt: Format | str, bank: Bank, entries: Iterable[BankEntry], out: TextIO) -> Written:
    """``entries`` of ``bank`` to ``out`` in ``fmt``, oldest first."""
    ordered = sorted(entries, key=lambda e: (e.occurred_at, e.entry_id))
    fmt = Format(fmt)
    if fmt is Format.PLAIN:
        hashes = [value for e in ordered if (value := types.entry_values(e).get(PLAIN_SIGNAL)) is not None]
        out.writelines(f"{value}\n" for value in hashes)
        return Written(len(hashes), len(ordered) - len(hashes))
    if fmt is Format.TE:
        # A line's signal ends at whitespace (what follows is the note): an entry with a phrase
        # that has spaces would be read back as another phrase, so it is left out whole.
        every = [types.entry_values(e) for e in ordered]
        held = [values for values in every if not any(_has_space(value) for value in values.values())]
        out.writelines(f"{kind} {value}\n" for values in held for kind, value in values.items())
        return Written(len(held), len(ordered) - len(held))
    if fmt is Format.TE_CSV:
        rows = csv.writer(out, lineterminator="\n")
        rows.writerow(TE_CSV_HEADER)
        category = TE_CATEGORY[bank.action]
        rows.writerows(
            (kind, value, bank.name, category, "") for e in ordered for kind, value in types.entry_values(e).items()
        )
    else:
        # One object a line inside the array: a diff or a grep of an export stays readable.
        items = ",\n".join(json.dumps(hma_content(bank, e)) for e in ordered)
        out.write(f"[\n{items}\n]\n" if ordered else "[]\n")
    return Written(len(ordered), 0)


def hma_content(bank: Bank, entry: BankEntry) -> dict[str, Any]:
    """An entry as HMA 2.0 shows bank content (``BankContentResponse``): its id is the entry
    id (a string here; HMA's are integers), what HMA has no field for goes in ``metadata.json``."""
    about: dict[str, Any] = {"added_by": entry.added_by, "added_at": entry.occurred_at.isoformat()}
    if entry.pdq_quality is not None:
        about["pdq_quality"] = entry.pdq_quality
    metadata: dict[str, Any] = {"json": about}
    if entry.source_event_id is not None:
        metadata["content_id"] = entry.source_event_id
    content: dict[str, Any] = {
        "id": entry.entry_id,
        "disable_until_ts": 1,  # HMA's "enabled"; modstream switches whole banks on and off
        "original_media_uri": None,
        "bank": {"name": bank.name, "matching_enabled_ratio": 1.0 if bank.enabled else 0.0},
        "signals": types.entry_values(entry),
        "metadata": metadata,
    }
    if entry.note is not None:
        content["note"] = entry.note  # HMA leaves a missing note out
    return content


def derived_id(signals: Mapping[str, str]) -> str:
    """An entry id made from its hashes, for files that give none: importing a file again
    rewrites the same entries instead of adding copies."""
    canonical = "|".join(f"{kind}:{signals[kind]}" for kind in types.names() if kind in signals)
    return "import-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


# --- readers -------------------------------------------------------------------------


def _read_plain(text: str, problems: list[tuple[int, str]]) -> list[Imported]:
    items = []
    for number, line in _lines(text):
        first, *rest = re.split(r"[\s,]+", line, maxsplit=2)
        try:
            kind, value = signal(PLAIN_SIGNAL, first)
            quality = _quality(rest[0]) if rest else None
        except ValueError as exc:
            problems.append((number, str(exc)))
            continue
        note = rest[1].strip() if len(rest) > 1 and rest[1].strip() else None
        items.append(_imported(number, {kind: value}, pdq_quality=quality, note=note))
    return items


def _read_te(text: str, problems: list[tuple[int, str]]) -> list[Imported]:
    items = []
    for number, line in _lines(text):
        parts = line.split(maxsplit=2)
        if len(parts) < 2:
            hint = f" (bare {PLAIN_SIGNAL} hashes: --format plain)" if _is_plain(line) else ""
            problems.append((number, f"expected '<signal type> <signal>', got {shown(line)}{hint}"))
            continue
        try:
            kind, value = signal(parts[0], parts[1])
        except ValueError as exc:
            problems.append((number, str(exc)))
            continue
        # `dataset -P` adds "'<collab>' <CATEGORY> [tags]": who said what about it.
        items.append(_imported(number, {kind: value}, note=parts[2].strip() if len(parts) > 2 else None))
    return items


def _read_te_csv(text: str, problems: list[tuple[int, str]]) -> list[Imported]:
    rows = csv.DictReader(io.StringIO(text))
    if not text.strip():
        return []
    header = rows.fieldnames or []
    if "signal_type" not in header or "signal_str" not in header:
        problems.append((1, f"expected the header {','.join(TE_CSV_HEADER)}, got {shown(','.join(header))}"))
        return []
    items = []
    for row in rows:
        number = rows.line_num
        try:
            kind, value = signal(row["signal_type"] or "", row["signal_str"] or "")
        except ValueError as exc:
            problems.append((number, str(exc)))
            continue
        said = " ".join(x for x in (row.get("category"), row.get("tags")) if x)
        collab = row.get("collab") or ""
        note = f"{collab}: {said}" if collab and said else (collab or said or None)
        items.append(_imported(number, {kind: value}, note=note))
    return items


def _read_hma(text: str, problems: list[tuple[int, str]]) -> list[Imported]:
    items = []
    seen: dict[str, int] = {}
    try:
        found = list(_json_items(text))
    except ValueError as exc:
        number, reason = exc.args if len(exc.args) == 2 else (1, str(exc))
        problems.append((number, reason))
        return []
    for index, (number, item) in enumerate(found, 1):
        try:
            imported = _hma_item(number, item)
        except ValueError as exc:
            problems.append((number, f"item {index}: {exc}"))
            continue
        if isinstance(item, dict) and item.get("id") is not None:  # ids HMA gave are unique
            if imported.entry_id in seen:
                problems.append((number, f"id {imported.entry_id} again (first on line {seen[imported.entry_id]})"))
                continue
            seen[imported.entry_id] = number
        items.append(imported)
    return items


def _hma_item(number: int, item: object) -> Imported:
    if not isinstance(item, dict):
        raise ValueError(f"expected a JSON object, got {type(item).__name__}")
    if "signals" in item:  # bank content, as HMA shows it
        given = item["signals"]
        if not isinstance(given, dict):
            raise ValueError("signals must be an object of signal type to hash")
        if item.get("disable_until_ts") == 0:
            raise ValueError("disabled in HMA (disable_until_ts 0): modstream entries cannot be; leave it out")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValueError("metadata must be an object")
        about = metadata.get("json") or {}
        quality = about.get("pdq_quality") if isinstance(about, dict) else None
        content_id = metadata.get("content_id")
        entry_id = item.get("id")
        note = item.get("note")
    else:  # the body of HMA's POST /c/bank/<bank>/signal: signal types to hashes, and a note
        given = {k: v for k, v in item.items() if k != "note"}
        note, quality, content_id, entry_id = item.get("note"), None, None, None
    signals = {}
    for type_name, value in given.items():
        if not isinstance(value, str):
            raise ValueError(f"the {type_name} signal must be a string")
        kind, digits = signal(type_name, value)
        signals[kind] = digits
    if not signals:
        raise ValueError(f"no signal (give {_held_types(' or ')})")
    if quality is not None and (not isinstance(quality, int) or isinstance(quality, bool) or not 0 <= quality <= 100):
        raise ValueError(f"pdq_quality {shown(str(quality))} is not a number from 0 to 100")
    if note is not None and not isinstance(note, str):
        raise ValueError("note must be a string")
    if content_id is not None and not isinstance(content_id, str):
        raise ValueError("metadata.content_id must be a string")
    if entry_id is not None:
        if isinstance(entry_id, bool) or not isinstance(entry_id, int | str) or not ENTRY_ID.match(str(entry_id)):
            raise ValueError(f"id {shown(str(entry_id))} is not usable as an entry id (letters, digits, _.:-)")
        entry_id = str(entry_id)
    return _imported(
        number,
        signals,
        entry_id=entry_id,
        pdq_quality=quality if "pdq" in signals else None,  # HMA's metadata says how good the PDQ hash is
        note=note or None,
        source_event_id=content_id,
    )


def _json_items(text: str) -> Iterator[tuple[int, object]]:
    """(line, item) for each item of a top-level JSON array, or each line of JSON lines;
    ``ValueError(line, reason)`` where the JSON breaks."""
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if position < len(text) and text[position] == "[":
        position = _skip_space(text, position + 1)
        while position < len(text) and text[position] != "]":
            try:
                item, end = decoder.raw_decode(text, position)
            except json.JSONDecodeError as exc:
                raise ValueError(exc.lineno, f"not JSON: {exc.msg}") from exc
            yield text.count("\n", 0, position) + 1, item
            position = _skip_space(text, end)
            if position < len(text) and text[position] == ",":
                position = _skip_space(text, position + 1)
            elif position < len(text) and text[position] != "]":
                raise ValueError(text.count("\n", 0, position) + 1, "not JSON: expected ',' or ']' between items")
        if position >= len(text):
            raise ValueError(text.count("\n") + 1, "not JSON: the array is not closed with ']'")
        if text[position + 1 :].strip():
            raise ValueError(text.count("\n", 0, position) + 1, "not JSON: something follows the array")
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(number, f"not JSON: {exc.msg} (a JSON array, or one object a line)") from exc


# --- small parts -----------------------------------------------------------------------


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line


def _imported(number: int, signals: dict[str, str], *, entry_id: str | None = None, **about: Any) -> Imported:
    return Imported(line=number, entry_id=entry_id or derived_id(signals), signals=signals, **about)


def _held_types(last: str = ", ") -> str:
    """The registered types' names, listed (``last`` before the last one)."""
    *first, final = types.names()
    return f"{', '.join(first)}{last}{final}" if first else final


def _has_space(text: str) -> bool:
    return any(char.isspace() for char in text)


def _is_plain(text: str) -> bool:
    try:
        types.get(PLAIN_SIGNAL).validate(text)
    except ValueError:
        return False
    return True


def _quality(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 100:
        raise ValueError(f"quality {shown(text)} is not a number from 0 to 100")
    return int(text)


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position
