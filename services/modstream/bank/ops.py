"""What people do to banks, as changes to publish: checked against the banks as they are,
so a mistake is refused with a reason before anything reaches the topic."""

from collections.abc import Collection, Iterable
from typing import TypeVar

from pydantic import ValidationError

from modstream.bank.signals import get as signal_type
from modstream.bank.state import Banks
from modstream.bank.topic import Change, delete_bank, delete_entry, put_bank, put_entry
from modstream.core.events import Bank, BankAction, BankEntry, ImageHashes

T = TypeVar("T", Bank, BankEntry)


class BankError(ValueError):
    """A bank change that cannot be made, with the reason."""


def create(banks: Banks, **fields: object) -> Change:
    if fields.get("name") in banks.banks:
        raise BankError(f"bank {fields['name']} exists already (change it with `modstream bank set`)")
    return put_bank(_valid(Bank, fields))


def update(banks: Banks, name: str, **changes: object) -> Change:
    current = _existing(banks, name)
    given = {k: v for k, v in changes.items() if v is not None}
    if given.get("action") not in (None, BankAction.REVIEW) and "review_queue" not in given:
        given["review_queue"] = None  # leaving review: the queue goes with it
    return put_bank(_valid(Bank, current.model_dump(exclude={"occurred_at"}) | given))


def delete(banks: Banks, name: str) -> list[Change]:
    _existing(banks, name)
    return delete_bank(banks, name)


def add(banks: Banks, bank: str, hashes: Iterable[ImageHashes | dict[str, object]], **about: object) -> list[Change]:
    """Entries for each image's hashes (an ``ImageHashes``, or the fields of an entry)."""
    _existing(banks, bank)
    changes = []
    for item in hashes:
        fields = item if isinstance(item, dict) else signals(item)
        changes.append(put_entry(_held_signals(_valid(BankEntry, {"bank": bank, **about, **fields}))))
    return changes


def remove(banks: Banks, bank: str, entry_ids: Iterable[str]) -> list[Change]:
    _existing(banks, bank)
    missing = [e for e in entry_ids if e not in set(banks.ids_of(bank))]
    if missing:
        raise BankError(f"bank {bank} has no entry {', '.join(missing)}")
    return [delete_entry(bank, e) for e in entry_ids]


def erase_taken_from(banks: Banks, event_ids: Collection[str]) -> list[Change]:
    """Tombstones for every entry taken from one of these uploads (a reviewer's remove banked
    it): the upload is erased, and its hashes with it."""
    uploads = set(event_ids)
    return [delete_entry(e.bank, e.entry_id) for e in banks.entries.values() if e.source_event_id in uploads]


def signals(hashes: ImageHashes) -> dict[str, object]:
    """An image's hashes as an entry's fields."""
    return hashes.entry_fields()


def _held_signals(entry: BankEntry) -> BankEntry:
    """The entry, its further signal types' values as those types keep them: refused for a
    type banks do not hold or a value that type refuses."""
    try:
        normal = {name: signal_type(name).validate(value) for name, value in entry.signals.items()}
    except ValueError as exc:
        raise BankError(f"signals: {exc}") from exc
    return entry if normal == entry.signals else entry.model_copy(update={"signals": normal})


def _existing(banks: Banks, name: str) -> Bank:
    bank = banks.banks.get(name)
    if bank is None:
        known = ", ".join(sorted(banks.banks)) or "none yet"
        raise BankError(f"no bank named {name!r} (banks: {known})")
    return bank


def _valid(kind: type[T], fields: dict[str, object]) -> T:
    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise BankError(f"{where + ': ' if where else ''}{problem['msg']}") from exc
