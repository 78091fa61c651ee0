"""Every bank and entry as the banks topic has them so far, and what an image matches.

The compacted banks topic is the source of truth: ``apply`` takes its records one by one,
in order, and keeps the lookups current — an entry's exact hashes in dictionaries, its PDQ
hash in the PDQ index — with no rebuild. The same code serves a worker following the topic,
the CLI listing it, and the HTTP API.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import faiss
import numpy as np
from pydantic import ValidationError

from modstream.bank.index import PdqIndex, pdq_codes
from modstream.core.events import Bank, BankAction, BankEntry, BankMatch, ImageHashes, Outcome, PdqHash, SignalType

T = TypeVar("T", Bank, BankEntry)
EntryKey = tuple[str, str]  # (bank, entry id)
# When several entries match, the strictest action wins: a known-good (allow) list must not
# override a list of known-bad content the same image is on.
PRECEDENCE = {BankAction.BLOCK: 0, BankAction.REVIEW: 1, BankAction.ALLOW: 2}
EXACT_SIGNALS: tuple[SignalType, ...] = ("sha256", "md5")
HASH_MATCH = "hash_match"  # the reason a bank's decision gives
BANK_OUTCOMES = {BankAction.BLOCK: Outcome.BLOCK, BankAction.REVIEW: Outcome.REVIEW, BankAction.ALLOW: Outcome.ALLOW}


class BankRecordInvalid(ValueError):
    """A record on the banks topic that is not a bank or an entry under its own key."""


@dataclass(frozen=True)
class Match:
    bank: Bank
    entry_id: str
    signal: SignalType
    distance: int

    def ref(self) -> BankMatch:
        return BankMatch(
            bank=self.bank.name,
            entry_id=self.entry_id,
            signal=self.signal,
            distance=self.distance,
            action=self.bank.action,
        )


@dataclass(frozen=True, slots=True)
class _Held:
    """What matching keeps of an entry: its exact digests (as ``_exact`` keys) and index id."""

    digests: tuple[bytes, ...]
    index_id: int | None


class Banks:
    """``details``: keep every entry's whole record (who added it, its note) in ``entries``,
    for the CLI and the API; a worker only matches, and keeps a few dozen bytes an entry."""

    def __init__(self, *, details: bool = True) -> None:
        self.banks: dict[str, Bank] = {}
        self.entries: dict[EntryKey, BankEntry] = {}
        self._details = details
        self._held: dict[EntryKey, _Held] = {}
        # A digest (signal letter + raw bytes) -> its entry, or the set of them when several share it.
        self._exact: dict[bytes, EntryKey | set[EntryKey]] = {}
        # One thread per lookup: the worker's cores serve events, not one faiss call.
        faiss.omp_set_num_threads(1)
        self._index = PdqIndex()
        self._index_keys: dict[int, EntryKey] = {}
        self._next_id = 0
        # PDQ codes waiting to go into the index in one add (``apply_all``).
        self._pending: dict[int, str] | None = None

    def apply_all(self, records: Iterable[tuple[str, bytes | None]]) -> list[tuple[int, BankRecordInvalid]]:
        """Apply records in order, the PDQ index changed once at the end (an add costs as
        much for one code as for thousands); returns the refused ones by position."""
        refused = []
        self._pending = {}
        try:
            for position, (key, value) in enumerate(records):
                try:
                    self.apply(key, value)
                except BankRecordInvalid as exc:
                    refused.append((position, exc))
        finally:
            pending, self._pending = self._pending, None
            if pending:
                self._index.add(np.fromiter(pending, np.int64, len(pending)), pdq_codes(list(pending.values())))
        return refused

    def compact(self) -> None:
        """Build the PDQ index's main part now (after a load), rather than in the background."""
        self._index.compact()

    def apply(self, key: str, value: bytes | None) -> None:
        """One record of the banks topic: a bank or an entry, or a null value deleting one."""
        kind, _, rest = key.partition("/")
        if kind == "bank" and rest:
            self._apply_bank(rest, value)
        elif kind == "entry" and rest.count("/") == 1:
            bank, _, entry_id = rest.partition("/")
            self._apply_entry((bank, entry_id), value)
        else:
            raise BankRecordInvalid(f"key {key!r} is neither bank/<name> nor entry/<bank>/<entry id>")

    def _apply_bank(self, name: str, value: bytes | None) -> None:
        if value is None:
            self.banks.pop(name, None)
            for key in [k for k in self._held if k[0] == name]:
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
        entry = _parse(BankEntry, value, f"entry/{key[0]}/{key[1]}")
        if (entry.bank, entry.entry_id) != key:
            raise BankRecordInvalid(f"entry/{key[0]}/{key[1]} holds entry {entry.bank}/{entry.entry_id}")
        if self._details:
            self.entries[key] = entry
        digests = tuple(_digest(signal, digest) for signal in EXACT_SIGNALS if (digest := getattr(entry, signal)))
        for digest in digests:
            held = self._exact.setdefault(digest, key)
            if held != key:
                self._exact[digest] = (held if isinstance(held, set) else {held}) | {key}
        index_id = None
        if entry.pdq is not None:
            self._next_id += 1
            index_id = self._next_id
            self._index_keys[index_id] = key
            if self._pending is not None:
                self._pending[index_id] = entry.pdq
            else:
                self._index.add(np.array([index_id], dtype=np.int64), pdq_codes([entry.pdq]))
        self._held[key] = _Held(digests, index_id)

    def _drop(self, key: EntryKey) -> None:
        held = self._held.pop(key, None)
        if held is None:
            return
        self.entries.pop(key, None)
        for digest in held.digests:
            keys = self._exact[digest]
            if isinstance(keys, set) and len(keys) > 1:
                keys.discard(key)
            else:
                del self._exact[digest]
        if held.index_id is not None:
            del self._index_keys[held.index_id]
            if self._pending is not None and held.index_id in self._pending:
                del self._pending[held.index_id]
            else:
                self._index.remove(np.array([held.index_id], dtype=np.int64))

    def __len__(self) -> int:
        """How many entries."""
        return len(self._held)

    def match(self, hashes: ImageHashes, tenant: str) -> Match | None:
        """The entry that decides for this image, if any."""
        return self.match_signals(tenant, sha256=hashes.sha256, md5=hashes.md5, pdq=hashes.pdq)

    def match_signals(
        self, tenant: str, *, sha256: str | None = None, md5: str | None = None, pdq: PdqHash | None = None
    ) -> Match | None:
        """The match that decides: the strictest action, then the closest."""
        found = self.matches(tenant, sha256=sha256, md5=md5, pdq=pdq)
        return found[0] if found else None

    def matches(
        self, tenant: str, *, sha256: str | None = None, md5: str | None = None, pdq: PdqHash | None = None
    ) -> list[Match]:
        """Every entry that matches, the deciding one first: exact hashes at distance 0, the PDQ
        hash within each bank's own distance when its quality is high enough."""
        found = []
        for signal, digest in (("sha256", sha256), ("md5", md5)):
            held = self._exact.get(_digest(signal, digest)) if digest else None
            for key in (held if isinstance(held, set) else {held}) if held else ():
                bank = self._bank_for(key[0], tenant)
                if bank is not None:
                    found.append(Match(bank, key[1], signal, 0))  # type: ignore[arg-type]
        if pdq is not None:
            found += self._pdq_matches(pdq.hex, pdq.quality, tenant)
        return sorted(found, key=lambda m: (PRECEDENCE[m.bank.action], m.distance, m.signal != "sha256", m.bank.name))

    def _pdq_matches(self, pdq: str, quality: int, tenant: str) -> list[Match]:
        banks = [b for b in self.banks.values() if _applies(b, tenant) and quality >= b.min_quality]
        if not banks or not self._index_keys:
            return []
        radius = max(b.distance for b in banks)
        matches = []
        for index_id, distance in self._index.search(pdq_codes([pdq]), radius)[0]:
            key = self._index_keys[index_id]
            bank = self._bank_for(key[0], tenant)
            if bank is not None and distance <= bank.distance and quality >= bank.min_quality:
                matches.append(Match(bank, key[1], "pdq", distance))
        return matches

    def _bank_for(self, name: str, tenant: str) -> Bank | None:
        bank = self.banks.get(name)
        return bank if bank is not None and _applies(bank, tenant) else None

    def ids_of(self, bank: str) -> list[str]:
        return [entry_id for (name, entry_id) in self._held if name == bank]

    def entries_of(self, bank: str) -> list[BankEntry]:
        """The bank's entries (with ``details``)."""
        return [entry for (name, _), entry in self.entries.items() if name == bank]


def _digest(signal: str, hex_digest: str) -> bytes:
    return signal[0].encode() + bytes.fromhex(hex_digest)


def _applies(bank: Bank, tenant: str) -> bool:
    return bank.enabled and (bank.tenants is None or tenant in bank.tenants)


def _parse(kind: type[T], value: bytes, key: str) -> T:
    try:
        return kind.model_validate_json(value)
    except ValidationError as exc:
        raise BankRecordInvalid(f"{key}: not a valid {kind.__name__}: {exc.errors()[0]['msg']}") from exc
