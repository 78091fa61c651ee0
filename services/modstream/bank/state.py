"""Every bank and entry as the banks topic has them so far, and what an image matches.

The compacted banks topic is the source of truth: ``apply`` takes its records one by one,
in order, and keeps the lookups current — an entry's value of each signal type in that
type's index (``bank/signals``: exact hashes in dictionaries, PDQ in the PDQ index, text
banks' phrases in an Aho-Corasick automaton) — with no rebuild of the whole. The same code
serves a worker following the topic, the CLI listing it, and the HTTP API.

One kind of ``Banks`` for all of them: an entry costs its index id, its values in the
indexes and its record as the topic gave it (bytes, ~430 for an entry with three hashes and
a short note), parsed again only when ``entries`` is read: by the CLI and the API, which
show entries; a worker, which only matches, never reads them.
"""

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from pydantic import ValidationError

from modstream.bank import signals
from modstream.bank.signals import TEXT, Query, SignalIndex, SignalType, TextIndex
from modstream.core.events import (
    Bank,
    BankAction,
    BankEntry,
    BankMatch,
    ImageHashes,
    Outcome,
    PdqHash,
    TextMatch,
    TextReading,
)
from modstream.core.text import fold

T = TypeVar("T", Bank, BankEntry)
EntryKey = tuple[str, str]  # (bank, entry id)
Given = Query | PdqHash | str | None  # a value to look up, as a signal type takes it
# When several entries match, the strictest action wins: a known-good (allow) list must not
# override a list of known-bad content the same image is on.
PRECEDENCE = {BankAction.BLOCK: 0, BankAction.REVIEW: 1, BankAction.ALLOW: 2}
BANK_OUTCOMES = {BankAction.BLOCK: Outcome.BLOCK, BankAction.REVIEW: Outcome.REVIEW, BankAction.ALLOW: Outcome.ALLOW}


class BankRecordInvalid(ValueError):
    """A record on the banks topic that is not a bank or an entry under its own key."""


@dataclass(frozen=True)
class Match:
    bank: Bank
    entry_id: str
    signal: str  # the signal type's name
    distance: int

    def ref(self) -> BankMatch:
        return BankMatch(
            bank=self.bank.name,
            entry_id=self.entry_id,
            signal=self.signal,
            distance=self.distance,
            action=self.bank.action,
        )


class TextMatches(NamedTuple):
    """What a reading matched in text banks: the entry that decides (as ``Banks.match``
    chooses among matches), and every span of a line that a bank's phrase matched."""

    decides: Match | None
    spans: list[TextMatch]


class _Held(NamedTuple):
    key: EntryKey
    record: bytes  # the entry as the topic holds it


class _Entries(Mapping[EntryKey, BankEntry]):
    """The entries' records by (bank, entry id), parsed when read."""

    def __init__(self, ids: dict[EntryKey, int], held: list[_Held | None]) -> None:
        self._ids = ids
        self._held = held

    def __getitem__(self, key: EntryKey) -> BankEntry:
        held = self._held[self._ids[key]]
        assert held is not None
        return BankEntry.model_validate_json(held.record)

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def __iter__(self) -> Iterator[EntryKey]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)


class Banks:
    """Banks and their entries, matched by every registered signal type."""

    def __init__(self) -> None:
        self.banks: dict[str, Bank] = {}
        self._ids: dict[EntryKey, int] = {}  # entry -> its id in every signal type's index
        # By index id, the entry and its record; None once it is gone (ids are never reused:
        # a list slot costs 8 bytes where a dictionary's costs ten times that).
        self._held: list[_Held | None] = [None]
        self.entries: Mapping[EntryKey, BankEntry] = _Entries(self._ids, self._held)
        self._indexes: dict[str, SignalIndex] = {}  # by signal type, made at its first value
        # Values waiting to go into their index in one add at the end of ``apply_all``, by
        # type, then index id.
        self._pending: dict[str, dict[int, str]] = {}

    def apply_all(self, records: Iterable[tuple[str, bytes | None]]) -> list[tuple[int, BankRecordInvalid]]:
        """Apply records in order, each index changed once at the end (a PDQ add costs as
        much for one code as for thousands); returns the refused ones by position."""
        refused = []
        try:
            for position, (key, value) in enumerate(records):
                try:
                    self._apply(key, value)
                except BankRecordInvalid as exc:
                    refused.append((position, exc))
        finally:
            pending, self._pending = self._pending, {}
            for name, values in pending.items():
                if values:
                    self._index(name).add(list(values.items()))
        return refused

    def apply(self, key: str, value: bytes | None) -> None:
        """One record of the banks topic: a bank or an entry, or a null value deleting one;
        ``BankRecordInvalid`` when it is neither."""
        for _, problem in self.apply_all([(key, value)]):
            raise problem

    def compact(self) -> None:
        """Finish what the indexes defer (the PDQ index's main part) now, after a load."""
        for index in self._indexes.values():
            index.compact()

    def _apply(self, key: str, value: bytes | None) -> None:
        kind, _, rest = key.partition("/")
        if kind == "bank" and rest:
            self._apply_bank(rest, value)
        elif kind == "entry" and rest.count("/") == 1:
            bank, _, entry_id = rest.partition("/")
            self._apply_entry((sys.intern(bank), entry_id), value)
        else:
            raise BankRecordInvalid(f"key {key!r} is neither bank/<name> nor entry/<bank>/<entry id>")

    def _apply_bank(self, name: str, value: bytes | None) -> None:
        if value is None:
            self.banks.pop(name, None)
            for key in [k for k in self._ids if k[0] == name]:
                self._drop(key)
            return
        bank = _parse(Bank, value, f"bank/{name}")
        if bank.name != name:
            raise BankRecordInvalid(f"bank/{name} holds the bank {bank.name!r}")
        self.banks[name] = bank

    def _apply_entry(self, key: EntryKey, value: bytes | None) -> None:
        self._drop(key)
        if value is None:
            return
        where = f"entry/{key[0]}/{key[1]}"
        entry = _parse(BankEntry, value, where)
        if (entry.bank, entry.entry_id) != key:
            raise BankRecordInvalid(f"{where} holds entry {entry.bank}/{entry.entry_id}")
        values = _values(entry)
        index_id = self._ids[key] = len(self._held)
        self._held.append(_Held(key, value))
        for name, valid in values.items():
            self._pending.setdefault(name, {})[index_id] = valid

    def _drop(self, key: EntryKey) -> None:
        index_id = self._ids.pop(key, None)
        if index_id is None:
            return
        held, self._held[index_id] = self._held[index_id], None
        assert held is not None
        # (A value a type registered since refuses was never indexed: left out.)
        for name, value in _values(BankEntry.model_validate_json(held.record), refused=None).items():
            pending = self._pending.get(name, {})
            if index_id in pending:
                del pending[index_id]
            elif name in self._indexes:
                self._indexes[name].remove([(index_id, value)])

    def _index(self, name: str) -> SignalIndex:
        index = self._indexes.get(name)
        if index is None:
            index = self._indexes[name] = signals.get(name).index()
        return index

    def __len__(self) -> int:
        """How many entries."""
        return len(self._ids)

    def match(self, hashes: ImageHashes, tenant: str) -> Match | None:
        """The entry that decides for this image, if any."""
        return self.match_signals(tenant, **signals.queries(hashes))

    def match_signals(self, tenant: str, **given: Given) -> Match | None:
        """The match that decides: the strictest action, then the closest."""
        found = self.matches(tenant, **given)
        return found[0] if found else None

    def matches(self, tenant: str, **given: Given) -> list[Match]:
        """Every entry that matches a ``given`` value (by signal type name: ``pdq=``,
        ``sha256=`` …), the deciding one first: the strictest action, then the closest, then
        the type preferred (sha256, md5, then the rest). A value matches within each bank's
        threshold for its type (exact hashes: 0; PDQ: the bank's distance) when its quality
        reaches the bank's ``min_quality``."""
        found = []
        for name, value in given.items():
            if value is not None:
                signal = signals.get(name)
                found += self._matches_of(signal, signal.query(value), tenant)
        return _deciding_first(found)

    def match_text(self, reading: TextReading, tenant: str) -> TextMatches:
        """What the text read in an upload of ``tenant`` matches in text banks: the entry that
        decides (chosen as among hash matches, so a text bank and a hash bank compare alike),
        and every span a phrase of a block or review bank matched, each once per bank: ``label`` the bank's name,
        ``rule`` ``bank:<name>``, ``start``/``end`` in the line as read, with its confidence."""
        index = self._indexes.get(TEXT)
        if not isinstance(index, TextIndex) or not any(_applies(b, tenant) for b in self.banks.values()):
            return TextMatches(None, [])  # no phrase banked yet, or no bank for this tenant: no folding
        decides: dict[EntryKey, Match] = {}
        spans: dict[tuple[str, int, int, int], TextMatch] = {}
        for number, line in enumerate(reading.lines):
            folded = fold(line.text)
            for index_id, start, end in index.spans(folded.text):
                held = self._held[index_id]
                assert held is not None
                bank = self._bank_for(held.key[0], tenant)
                # An allow bank vouches for an image, not for words: a harmless phrase in a
                # picture says nothing about the rest of it, so it neither decides nor shows.
                if bank is None or bank.action is BankAction.ALLOW:
                    continue
                if held.key not in decides:
                    decides[held.key] = Match(bank, held.key[1], TEXT, 0)
                first, last = folded.source_span(start, end)
                if (bank.name, number, first, last) not in spans:  # made once: a model costs microseconds
                    spans[bank.name, number, first, last] = TextMatch(
                        label=bank.name,
                        rule=f"bank:{bank.name}",
                        line=number,
                        start=first,
                        end=last,
                        confidence=line.confidence,
                    )
        deciding = _deciding_first(decides.values())
        return TextMatches(deciding[0] if deciding else None, [spans[key] for key in sorted(spans, key=_span_order)])

    def _matches_of(self, signal: SignalType, query: Query, tenant: str) -> list[Match]:
        index = self._indexes.get(signal.name)
        banks = [b for b in self.banks.values() if _applies(b, tenant) and query.quality >= b.min_quality]
        if index is None or not banks:
            return []
        matches = []
        for index_id, distance in index.search(query.value, max(signal.threshold(b) for b in banks)):
            held = self._held[index_id]
            assert held is not None
            bank = self._bank_for(held.key[0], tenant)
            if bank is not None and query.quality >= bank.min_quality and distance <= signal.threshold(bank):
                matches.append(Match(bank, held.key[1], signal.name, distance))
        return matches

    def _bank_for(self, name: str, tenant: str) -> Bank | None:
        bank = self.banks.get(name)
        return bank if bank is not None and _applies(bank, tenant) else None

    def ids_of(self, bank: str) -> list[str]:
        return [entry_id for (name, entry_id) in self._ids if name == bank]

    def entries_of(self, bank: str) -> list[BankEntry]:
        """The bank's entries, parsed from their records."""
        return [self.entries[key] for key in self._ids if key[0] == bank]


def _deciding_first(found: Iterable[Match]) -> list[Match]:
    """Matches, the deciding one first: the strictest action, then the closest, then the type
    preferred (sha256, md5, then the rest), then the bank's name."""
    preference = {t.name: t.preference for t in signals.types()}
    return sorted(
        found, key=lambda m: (PRECEDENCE[m.bank.action], m.distance, -preference.get(m.signal, 0), m.bank.name)
    )


def _span_order(key: tuple[str, int, int, int]) -> tuple[int, int, int, str]:
    bank, line, start, end = key
    return line, start, end, bank


def _values(entry: BankEntry, refused: type[Exception] | None = BankRecordInvalid) -> dict[str, str]:
    """The entry's values of every registered signal type, as each type keeps them; a type
    this process does not know is left out. The record's model has checked the values in
    fields of their own (pdq, sha256, md5); those in its ``signals`` mapping, their types
    check here: one refused raises ``refused`` (None: it is left out)."""
    values = signals.entry_values(entry)
    for name in values.keys() & entry.signals.keys() if entry.signals else ():
        try:
            values[name] = signals.get(name).validate(values[name])
        except ValueError as exc:
            if refused is not None:
                raise refused(f"entry/{entry.bank}/{entry.entry_id}: {exc}") from exc
            del values[name]
    return values


def _applies(bank: Bank, tenant: str) -> bool:
    return bank.enabled and (bank.tenants is None or tenant in bank.tenants)


def _parse(kind: type[T], value: bytes, key: str) -> T:
    try:
        return kind.model_validate_json(value)
    except ValidationError as exc:
        raise BankRecordInvalid(f"{key}: not a valid {kind.__name__}: {exc.errors()[0]['msg']}") from exc
