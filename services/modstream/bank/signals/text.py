"""Text banks: phrases matched in the text OCR read in an image.

A value is a phrase as a reviewer or an operator gave it (1-200 characters, as a recognised
line is at most), kept as given: the bank shows what a person wrote, and an entry is folded
when it is indexed, so a better ``core.text.fold`` applies to every entry at the next start.
A phrase matches wherever its folded form (``fold_term``) is a substring of a line's folded
form: the folding defeats case, spacing, punctuation, leetspeak and repeated letters, and
``Folded.source_span`` maps the match back to the characters as read. A phrase that folds to
fewer than ``MIN_FOLDED`` letters and digits is refused: "a" or "ok" would match nearly every
image with text in it.

Not an image hash: ``hash`` is None (``hash_image`` leaves it out), and an image's hashes never
hold a text value; the pipeline matches a reading with ``Banks.match_text``.

The index (``TextIndex``) is Aho-Corasick over the folded phrases (ahocorasick-rs), which finds
every phrase in one pass over a line. Measured on one core, 32 lines of 200 characters and
phrases of one to three random words (2026-12-07): looking up a reading took 0.04 ms among
945 phrases, 0.07 ms among 9,184 and 0.13 ms among 80,125, where checking each folded phrase
with ``in`` took 1.9, 19 and 166 ms (finding each occurrence with ``str.find``: 4.6, 46 and
757 ms). pyahocorasick looked up as fast (0.06, 0.09, 0.28 ms) and took more memory (33 MB
against 23 MB at 80,000). Folding the 32 lines costs more than either lookup: 1.6 ms. Building
an automaton takes 16 ms for 9,000 phrases and 0.3 s for 80,000, so changes go to a recent
part, rebuilt at the next lookup (up to ``MERGE_AT`` phrases: ~2 ms), and the main part is
built again only once ``MERGE_AT`` phrases were added or removed since: a live bank's change
never costs a rebuild of every phrase.
"""

from collections.abc import Iterable, Sequence

import ahocorasick_rs

from modstream.bank.signals.base import IndexId, SignalIndex, SignalType, shown
from modstream.core.events import TEXT_MAX_CHARS
from modstream.core.text import fold, fold_term

TEXT = "text"
MIN_FOLDED = 4  # letters and digits a phrase keeps once folded
# Phrases changed since the main part was built, up to which only the recent part is rebuilt.
MERGE_AT = 1024

Span = tuple[IndexId, int, int]  # an entry, and where its phrase is in the folded text (start, end)


class TextSignal(SignalType):
    name = TEXT

    def validate(self, value: str) -> str:
        phrase = value.strip()
        if not 1 <= len(phrase) <= TEXT_MAX_CHARS:
            raise ValueError(f"a text phrase has 1 to {TEXT_MAX_CHARS} characters, not {len(phrase)}")
        folded = fold_term(phrase)
        if len(folded) < MIN_FOLDED:
            raise ValueError(
                f"the phrase {shown(phrase)} is too short to bank: it matches as {shown(folded)}, "
                f"and a phrase needs at least {MIN_FOLDED} letters or digits once case, spacing, "
                "look-alike digits and repeated letters are folded away"
            )
        return phrase

    def distance(self, first: str, second: str) -> int:
        """0 when the phrase ``first`` is in the text ``second`` (folded), else 1."""
        return 0 if fold_term(first) in fold(second).text else 1

    def index(self) -> "TextIndex":
        return TextIndex()

    def examples(self) -> list[str]:
        return ["free crypto giveaway", "visit scam-coin.example"]


class _Part:
    """An Aho-Corasick automaton over some folded phrases."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self.phrases = tuple(phrases)
        self._automaton = ahocorasick_rs.AhoCorasick(self.phrases)

    def find(self, text: str) -> list[tuple[str, int, int]]:
        """Every occurrence of a phrase in ``text``, overlapping ones too: (phrase, start, end)."""
        found = self._automaton.find_matches_as_indexes(text, overlapping=True)
        return [(self.phrases[number], start, end) for number, start, end in found]


class TextIndex(SignalIndex):
    """Entries' phrases, folded, found in a folded text: a main part and a recent part (the
    phrases added since the main part was built). A phrase removed stays in its part, found
    and ignored, until the part is built again."""

    def __init__(self, merge_at: int = MERGE_AT) -> None:
        self._merge_at = merge_at
        self._ids: dict[str, set[IndexId]] = {}  # folded phrase -> the entries that hold it
        self._main = _Part(())
        self._in_main: frozenset[str] = frozenset()
        self._recent: set[str] = set()  # live phrases not in the main part
        self._recent_part: _Part | None = _Part(())  # None: to be built again
        self._stale = 0  # phrases in the main part that no entry holds any more

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._ids.values())

    def add(self, items: Sequence[tuple[IndexId, str]]) -> None:
        for index_id, value in items:
            phrase = fold_term(value)
            if phrase not in self._ids:
                if phrase in self._in_main:
                    self._stale -= 1
                else:
                    self._recent.add(phrase)
                    self._recent_part = None
            self._ids.setdefault(phrase, set()).add(index_id)

    def remove(self, items: Sequence[tuple[IndexId, str]]) -> None:
        for index_id, value in items:
            phrase = fold_term(value)
            ids = self._ids.get(phrase)
            if ids is None or index_id not in ids:
                continue
            ids.discard(index_id)
            if ids:
                continue
            del self._ids[phrase]
            if phrase in self._recent:
                self._recent.discard(phrase)
                self._recent_part = None
            else:
                self._stale += 1

    def spans(self, text: str) -> list[Span]:
        """Where each entry's phrase occurs in ``text`` (folded already), every occurrence."""
        if len(self._recent) + self._stale >= self._merge_at:
            self.compact()
        if self._recent_part is None:
            self._recent_part = _Part(self._recent)
        return [
            (index_id, start, end)
            for part in (self._main, self._recent_part)
            for phrase, start, end in part.find(text)
            for index_id in sorted(self._ids.get(phrase, ()))
        ]

    def search(self, value: str, max_distance: int) -> list[tuple[IndexId, int]]:
        """The entries whose phrase is in the text ``value`` (distance 0), by id."""
        return [(index_id, 0) for index_id in sorted({index_id for index_id, _, _ in self.spans(fold(value).text)})]

    def compact(self) -> None:
        """Build the main part of every live phrase (after a load, or once enough changed)."""
        if self._recent or self._stale:
            self._main = _Part(self._ids)
            self._in_main = frozenset(self._ids)
            self._recent, self._recent_part, self._stale = set(), _Part(()), 0
