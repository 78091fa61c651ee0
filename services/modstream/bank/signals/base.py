"""What a hash bank signal type is, the indexes it can use, and the registry of the types banks hold.

A signal type (as python-threatexchange's ``SignalType``) is everything modstream knows about
one kind of hash, in one place: its name, how a value is checked and written (``validate``),
how an image's bytes hash to it (``hash``), how far apart two values are (``distance``,
``compare``, ``threshold``), and the index that finds an entry's value near a query
(``index``). Banks, the import/export formats, the HTTP API and the pipeline ask the registry
(``get``, ``types``) instead of naming types, so adding one is a module with its
``SignalType`` and one ``register`` line (``bank/signals/__init__.py``).

Values travel as strings. The three types the wire contract names (pdq, sha256, md5) keep
them in fields of their own (``field``); any other type in the ``signals`` mapping of
``BankEntry`` and ``ImageHashes``. A lookup is a ``Query``: the value and how far it can be
trusted (PDQ's quality; 100 for a type that has none), which a bank's ``min_quality`` gates.
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, NamedTuple

from modstream.core.events import Bank, BankEntry, ImageHashes

NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # as core.events.SignalName
_HEX = re.compile(r"[0-9a-f]*")
IndexId = int


class Query(NamedTuple):
    """A value to look up and its quality (0-100): a bank matches it only from its ``min_quality`` up."""

    value: str
    quality: int = 100


class Comparison(NamedTuple):
    match: bool
    distance: int


class SignalIndex(ABC):
    """One signal type's values by index id (an int ``Banks`` gives each entry; never reused)."""

    @abstractmethod
    def add(self, items: Sequence[tuple[IndexId, str]]) -> None:
        """Add validated values; adding many in one call may cost less than one by one."""

    @abstractmethod
    def remove(self, items: Sequence[tuple[IndexId, str]]) -> None:
        """Remove (id, value) pairs as they were added; pairs not held are ignored."""

    @abstractmethod
    def search(self, value: str, max_distance: int) -> list[tuple[IndexId, int]]:
        """Every (id, distance) with distance <= ``max_distance``, nearest first (then by id)."""

    def compact(self) -> None:  # noqa: B027  # optional: most indexes defer nothing
        """Finish any work the index defers (after a bulk load); nothing by default."""


class SignalType(ABC):
    """One kind of hash: subclass it, then ``register`` an instance.

    ``name``: lower_case, as files and the wire name it. ``field``: the ``BankEntry`` and
    ``ImageHashes`` field that holds the value, for the types the contract names; None keeps
    it in their ``signals`` mapping. ``max_distance``: the largest distance that matches
    (``threshold`` may take it from the bank instead). ``preference``: when matches tie on
    action and distance, the higher is named first (a SHA-256 before an MD5 of the same bytes).
    """

    name: str
    field: str | None = None
    max_distance = 0
    preference = 0

    @abstractmethod
    def validate(self, value: str) -> str:
        """The value as banks keep it (normalised), or ``ValueError`` saying what is wrong."""

    def hash(self, data: bytes) -> str | None:
        """An image's value from its bytes; None when the type needs more than the bytes (PDQ
        is hashed by Triton's preprocess from the one decode)."""
        return None

    @abstractmethod
    def distance(self, first: str, second: str) -> int:
        """How far apart two valid values are (0: the same)."""

    def compare(self, first: str, second: str, threshold: int | None = None) -> Comparison:
        """Whether two values match within ``threshold`` (by default ``max_distance``)."""
        distance = self.distance(first, second)
        return Comparison(distance <= (self.max_distance if threshold is None else threshold), distance)

    def threshold(self, bank: Bank) -> int:
        """The largest distance that matches in ``bank``."""
        return self.max_distance

    def index(self) -> SignalIndex:
        """A new, empty index of this type's values: a linear scan by ``distance`` unless the
        type has a better one."""
        return LinearIndex(self.distance)

    def query_of(self, hashes: ImageHashes) -> Query | None:
        """The image's value to look up, if its hashes have one."""
        value = getattr(hashes, self.field) if self.field else hashes.signals.get(self.name)
        return None if value is None else Query(value)

    def query(self, given: object) -> Query:
        """A value a caller hands over (a ``Query`` or a string; a type may take its own
        objects) as a ``Query``."""
        if isinstance(given, Query):
            return given
        if isinstance(given, str):
            return Query(given)
        raise TypeError(f"a {self.name} lookup takes a string, not {type(given).__name__}")

    def examples(self) -> list[str]:
        """Valid values, for tests and demos."""
        return []


# --- indexes any type can use --------------------------------------------------------------


class ExactIndex(SignalIndex):
    """Values matched only when equal (distance 0), in a dictionary from ``key(value)``: the
    raw bytes of a hex digest take half the memory of its text."""

    def __init__(self, key: Callable[[str], Hashable] = str) -> None:
        self._key = key
        self._ids: dict[Hashable, IndexId | set[IndexId]] = {}  # a set only when entries share a value

    def __len__(self) -> int:
        return sum(len(ids) if isinstance(ids, set) else 1 for ids in self._ids.values())

    def add(self, items: Sequence[tuple[IndexId, str]]) -> None:
        for index_id, value in items:
            key = self._key(value)
            held = self._ids.setdefault(key, index_id)
            if held != index_id:
                self._ids[key] = (held if isinstance(held, set) else {held}) | {index_id}

    def remove(self, items: Sequence[tuple[IndexId, str]]) -> None:
        for index_id, value in items:
            key = self._key(value)
            held = self._ids.get(key)
            if isinstance(held, set):
                held.discard(index_id)
                if len(held) == 1:
                    self._ids[key] = next(iter(held))
            elif held == index_id:
                del self._ids[key]

    def search(self, value: str, max_distance: int) -> list[tuple[IndexId, int]]:
        held = self._ids.get(self._key(value))
        if held is None:
            return []
        return [(index_id, 0) for index_id in sorted(held if isinstance(held, set) else (held,))]


class LinearIndex(SignalIndex):
    """Every value compared with the query: enough for a small bank or a new type's first
    version, as ThreatExchange's ``TrivialLinearSearchHashIndex``."""

    def __init__(self, distance: Callable[[str, str], int]) -> None:
        self._distance = distance
        self._values: dict[IndexId, str] = {}

    def __len__(self) -> int:
        return len(self._values)

    def add(self, items: Sequence[tuple[IndexId, str]]) -> None:
        self._values.update(items)

    def remove(self, items: Sequence[tuple[IndexId, str]]) -> None:
        for index_id, _ in items:
            self._values.pop(index_id, None)

    def search(self, value: str, max_distance: int) -> list[tuple[IndexId, int]]:
        found = ((index_id, self._distance(value, held)) for index_id, held in self._values.items())
        return sorted(((i, d) for i, d in found if d <= max_distance), key=lambda pair: (pair[1], pair[0]))


# --- the registry --------------------------------------------------------------------------

_TYPES: dict[str, SignalType] = {}


def register(signal: SignalType) -> SignalType:
    """Add a type banks hold (files, answers and ids list types in the order registered)."""
    if not NAME.fullmatch(signal.name):
        raise ValueError(f"signal type name {signal.name!r} is not lower_case letters, digits and _ (at most 32)")
    if signal.name in _TYPES:
        raise ValueError(f"signal type {signal.name} is registered already")
    _TYPES[signal.name] = signal
    return signal


def unregister(name: str) -> None:
    """Forget a type (a test's own); entries already indexed by it keep their values."""
    del _TYPES[name]


def types() -> tuple[SignalType, ...]:
    return tuple(_TYPES.values())


def names() -> tuple[str, ...]:
    return tuple(_TYPES)


def get(name: str) -> SignalType:
    """The type called ``name``; ``ValueError`` naming the types there are if none is."""
    found = _TYPES.get(name)
    if found is None:
        raise ValueError(f"unknown signal type {shown(name)} (modstream banks hold {', '.join(_TYPES)})")
    return found


def entry_values(entry: BankEntry) -> dict[str, str]:
    """An entry's values of the registered types, in their order (a type this process does
    not know is left out: it cannot be matched here)."""
    values = {}
    for t in _TYPES.values():
        value = getattr(entry, t.field) if t.field else entry.signals.get(t.name)
        if value is not None:
            values[t.name] = value
    return values


def queries(hashes: ImageHashes) -> dict[str, Query]:
    """An image's values to look up, by type."""
    return {t.name: query for t in _TYPES.values() if (query := t.query_of(hashes)) is not None}


def record_fields(values: Mapping[str, str]) -> dict[str, Any]:
    """Values by type name as the fields of a ``BankEntry`` (or of an ``ImageHashes``, for
    types whose image value is the string itself)."""
    fields: dict[str, Any] = {}
    for name, value in values.items():
        field = get(name).field
        if field:
            fields[field] = value
        else:
            fields.setdefault("signals", {})[name] = value
    return fields


def hash_image(data: bytes) -> ImageHashes:
    """An image's hashes of every type that hashes bytes (PDQ comes from Triton, added later)."""
    hashed = ((t.name, t.hash(data)) for t in _TYPES.values())
    return ImageHashes(**record_fields({name: value for name, value in hashed if value is not None}))


# --- helpers for types ---------------------------------------------------------------------


def hex_digest(kind: str, value: str, digits: int) -> str:
    """``value`` as ``digits`` lowercase hex digits, or ``ValueError`` saying it is not a ``kind`` hash."""
    normal = value.strip().lower()
    if len(normal) != digits or not _HEX.fullmatch(normal):
        raise ValueError(f"{shown(value)} is not a {kind} hash ({digits} hex digits)")
    return normal


def shown(text: str) -> str:
    """``text`` quoted for a message, shortened when long."""
    quoted = repr(text)
    return quoted if len(quoted) <= 50 else quoted[:47] + "..."
