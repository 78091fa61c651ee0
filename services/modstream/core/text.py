"""Folding text for matching: the one normalisation text rules and text banks both use. Pure.

Evasions this defeats: case, spacing and punctuation between letters ("f r e e", "fr.ee"),
leetspeak digits and symbols ("fr33 cr7pt0"), Unicode compatibility forms (full-width, ligatures)
and repeated letters ("freeeee"). A term and a text are folded the same way, so a term matches
wherever its folded form is a substring of the text's folded form; ``Folded.source_span`` maps
the match back to the characters of the text as it was read.

(A first cut: confusable letters from other scripts are still to come.)
"""

import unicodedata
from dataclasses import dataclass

# Symbols and digits written for the letters they look like. Letters that the symbols could
# stand for in more than one way fold to one of them on both sides (l and 1 and i all to i).
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "l": "i",
        "|": "i",
        "!": "i",
        "3": "e",
        "4": "a",
        "@": "a",
        "5": "s",
        "$": "s",
        "7": "t",
        "+": "t",
        "8": "b",
        "9": "g",
    }
)


@dataclass(frozen=True)
class Folded:
    """A text folded for matching, and where each of its characters came from."""

    text: str
    origin: tuple[int, ...]  # origin[i]: the index in the source of folded character i

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The source characters a match of folded[start:end] covers."""
        return self.origin[start], self.origin[end - 1] + 1


def fold(text: str) -> Folded:
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for piece in unicodedata.normalize("NFKC", char).casefold():
            letter = piece.translate(_LEET)
            if not letter.isalnum():
                continue  # spacing and punctuation between letters
            if folded and folded[-1] == letter:
                continue  # repeated letters
            folded.append(letter)
            origin.append(index)
    return Folded("".join(folded), tuple(origin))


def fold_term(term: str) -> str:
    return fold(term).text
