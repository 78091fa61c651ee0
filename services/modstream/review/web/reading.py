"""The text read in an image, as the job page shows it: each line cut into plain and matched
segments, and each line's box in percentages of the picture. Pure.

A line's text is the uploader's (whatever the image says), so it is never markup: it is cut
here by character offsets into plain strings, and the template escapes each piece as it
wraps the matched ones in ``<mark>``. Offsets and boxes come from the worker, and are clamped
rather than trusted, so a bad one shows less, never breaks the page.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from modstream.core.events import Box, TextLine, TextMatch, TextReading


@dataclass(frozen=True)
class Segment:
    """A run of a line's characters, and the matches that cover all of it (none: plain text)."""

    text: str
    matches: tuple[TextMatch, ...] = ()

    @property
    def title(self) -> str:
        """What matched here, for the highlight's tooltip: ``label (rule)``, each once."""
        return "; ".join(dict.fromkeys(f"{m.label} ({m.rule})" for m in self.matches))


@dataclass(frozen=True)
class Placed:
    """A box as percentages of the picture's width (x, width) and height (y, height)."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class ShownLine:
    number: int
    """From 1, as the panel lists it."""
    line: TextLine
    segments: tuple[Segment, ...]
    labels: tuple[str, ...]
    """The labels matched in it, each once, in the order of the matches."""
    box: Placed

    @property
    def matched(self) -> bool:
        return bool(self.labels)


def shown_lines(reading: TextReading | None, matches: Sequence[TextMatch]) -> list[ShownLine]:
    """Every line of ``reading`` with its matches highlighted and its box placed."""
    if reading is None:
        return []
    shown = []
    for index, line in enumerate(reading.lines):
        on_line = [m for m in matches if m.line == index]
        shown.append(
            ShownLine(
                number=index + 1,
                line=line,
                segments=segments(line.text, on_line),
                labels=tuple(dict.fromkeys(m.label for m in on_line)),
                box=placed(line.box),
            )
        )
    return shown


def segments(text: str, matches: Sequence[TextMatch]) -> tuple[Segment, ...]:
    """``text`` cut at every match's start and end: consecutive runs covered by the same
    matches (overlapping matches split each other's runs), the uncovered ones plain."""
    spans = [(m, max(0, min(m.start, len(text))), max(0, min(m.end, len(text)))) for m in matches]
    spans = [(m, start, end) for m, start, end in spans if start < end]
    cuts = sorted({0, len(text), *(s for _, s, _ in spans), *(e for _, _, e in spans)})
    runs: list[Segment] = []
    for start, end in pairwise(cuts):
        covering = tuple(m for m, s, e in spans if s <= start and end <= e)
        if runs and runs[-1].matches == covering:
            runs[-1] = Segment(runs[-1].text + text[start:end], covering)
        else:
            runs.append(Segment(text[start:end], covering))
    return tuple(runs)


def placed(box: Box) -> Placed:
    """``box`` (x0, y0, x1, y1 as fractions of the image) in percentages, inside the picture."""
    x0, x1 = sorted(_percent(v) for v in (box[0], box[2]))
    y0, y1 = sorted(_percent(v) for v in (box[1], box[3]))
    return Placed(x=x0, y=y0, width=x1 - x0, height=y1 - y0)


def _percent(fraction: float) -> float:
    if not math.isfinite(fraction):
        return 0.0
    return round(min(max(fraction, 0.0), 1.0) * 100, 2)
