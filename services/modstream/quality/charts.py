"""The quality page's charts as SVG text, drawn on the server. Pure: numbers in, markup out.

The dashboard's Content-Security-Policy allows no script and no ``style`` attribute, so
the charts are static SVG whose colours come from classes (``review/web/static/dashboard.css``)
and whose geometry is attributes. Every text is escaped: labels and tenants come from outside.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

import numpy as np

from modstream.core.stats import PRCurve

WIDTH, HEIGHT = 420, 290


@dataclass(frozen=True)
class Plot:
    """The plotting area inside the chart's margins; ``x`` and ``y`` place shares of its
    width and height (0 left and bottom, 1 right and top)."""

    left: float = 52.0
    top: float = 14.0
    width: float = WIDTH - 52.0 - 20.0
    height: float = HEIGHT - 14.0 - 46.0

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    def x(self, share: float) -> float:
        return self.left + share * self.width

    def y(self, share: float) -> float:
        return self.top + (1.0 - share) * self.height


PLOT = Plot()


def pr_chart(curve: PRCurve, review_at: float | None, block_at: float | None, *, title: str = "") -> str:
    """Precision against recall, one vertex per threshold of ``curve``, with the point each
    of the policy's thresholds gives (everything scoring at least it predicted positive)."""
    parts = [_open("pr", title or "Precision against recall"), *_frame(), *_pr_axes()]
    if curve.thresholds.size == 0:
        parts.append(_text(PLOT.x(0.5), PLOT.y(0.5), "no labelled decision", "empty", anchor="middle"))
    else:
        vertices = zip(curve.recall.tolist(), curve.precision.tolist(), strict=True)
        parts.append(f'<polyline class="curve" points="{_points((PLOT.x(r), PLOT.y(p)) for r, p in vertices)}"/>')
    unreached = 0
    for name, threshold in (("review", review_at), ("block", block_at)):
        if threshold is None or curve.thresholds.size == 0:
            continue
        at = int(np.searchsorted(curve.thresholds, threshold, side="left"))
        caption = f"{name}_at {threshold:.3f}"
        if at == curve.thresholds.size:
            # Nothing labelled scores that high: no point of the curve is this threshold's.
            unreached += 1
            note = f"{caption}: no labelled score reaches it"
            parts.append(_text(PLOT.right - 6, PLOT.top + 14 * unreached, note, "note", anchor="end"))
            continue
        recall, precision = float(curve.recall[at]), float(curve.precision[at])
        x, y = PLOT.x(recall), PLOT.y(precision)
        detail = f"{caption}: precision {precision:.3f}, recall {recall:.3f}"
        parts.append(
            f'<circle class="threshold {name}" cx="{_n(x)}" cy="{_n(y)}" r="5"><title>{escape(detail)}</title></circle>'
        )
        # Captions point into the chart, so that none runs off its edge.
        inward = -8 if recall > 0.6 else 8
        parts.append(_text(x + inward, y - 8, caption, f"caption {name}", anchor="end" if inward < 0 else "start"))
    parts.append("</svg>")
    return "".join(parts)


def drift_chart(
    points: Sequence[tuple[datetime, float]], warn: float = 0.1, alert: float = 0.2, *, title: str = ""
) -> str:
    """PSI of each window against the reference, over time, with the ``warn`` and ``alert`` levels."""
    top = max([alert * 1.5, *(psi * 1.1 for _, psi in points)])
    parts = [_open("drift", title or "Drift: PSI per window"), *_frame()]
    parts.append(_text(PLOT.left - 6, PLOT.bottom + 4, "0", "tick", anchor="end"))
    parts.append(_text(PLOT.left - 6, PLOT.top + 4, f"{top:.2g}", "tick", anchor="end"))
    for name, level in (("warn", warn), ("alert", alert)):
        y = _n(PLOT.y(level / top))
        parts.append(f'<line class="level {name}" x1="{_n(PLOT.left)}" x2="{_n(PLOT.right)}" y1="{y}" y2="{y}"/>')
        parts.append(_text(PLOT.right - 4, PLOT.y(level / top) - 4, f"{name} {level:g}", f"level {name}", anchor="end"))
    parts.append(_text(PLOT.left - 40, PLOT.y(0.5), "PSI", "axis", anchor="middle", turned=True))
    if not points:
        parts.append(_text(PLOT.x(0.5), PLOT.y(0.5), "no window with enough decisions yet", "empty", anchor="middle"))
        parts.append("</svg>")
        return "".join(parts)
    points = sorted(points)
    first, last = points[0][0], points[-1][0]
    span = (last - first).total_seconds()

    def x(moment: datetime) -> float:
        return PLOT.x((moment - first).total_seconds() / span if span > 0 else 0.5)

    placed = [(moment, psi, x(moment), PLOT.y(psi / top)) for moment, psi in points]
    parts.append(f'<polyline class="psi" points="{_points((px, py) for _, _, px, py in placed)}"/>')
    for moment, psi, px, py in placed:
        state = "alert" if psi >= alert else "warn" if psi >= warn else "calm"
        detail = f"{moment:%Y-%m-%d %H:%M} UTC: PSI {psi:.3f}"
        parts.append(
            f'<circle class="point {state}" cx="{_n(px)}" cy="{_n(py)}" r="3"><title>{escape(detail)}</title></circle>'
        )
    parts.append(_text(PLOT.left, PLOT.bottom + 16, f"{first:%m-%d %H:%M}", "tick"))
    if span > 0:
        parts.append(_text(PLOT.right, PLOT.bottom + 16, f"{last:%m-%d %H:%M}", "tick", anchor="end"))
    parts.append(_text(PLOT.x(0.5), PLOT.bottom + 34, "window start (UTC)", "axis", anchor="middle"))
    parts.append("</svg>")
    return "".join(parts)


def _open(kind: str, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">'
        f"<title>{escape(title)}</title>"
    )


def _frame() -> list[str]:
    return [
        f'<rect class="frame" x="{_n(PLOT.left)}" y="{_n(PLOT.top)}" '
        f'width="{_n(PLOT.width)}" height="{_n(PLOT.height)}"/>'
    ]


def _pr_axes() -> list[str]:
    parts = []
    for share in (0.0, 0.5, 1.0):
        if 0 < share < 1:
            x, y = _n(PLOT.x(share)), _n(PLOT.y(share))
            parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{_n(PLOT.top)}" y2="{_n(PLOT.bottom)}"/>')
            parts.append(f'<line class="grid" x1="{_n(PLOT.left)}" x2="{_n(PLOT.right)}" y1="{y}" y2="{y}"/>')
        parts.append(_text(PLOT.x(share), PLOT.bottom + 16, f"{share:g}", "tick", anchor="middle"))
        parts.append(_text(PLOT.left - 6, PLOT.y(share) + 4, f"{share:g}", "tick", anchor="end"))
    parts.append(_text(PLOT.x(0.5), PLOT.bottom + 34, "recall", "axis", anchor="middle"))
    parts.append(_text(PLOT.left - 36, PLOT.y(0.5), "precision", "axis", anchor="middle", turned=True))
    return parts


def _text(x: float, y: float, content: str, kind: str, *, anchor: str = "start", turned: bool = False) -> str:
    """A text at (x, y); ``turned`` reads bottom to top (an axis title beside the y axis)."""
    turn = f' transform="rotate(-90 {_n(x)} {_n(y)})"' if turned else ""
    return f'<text class="{kind}" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{turn}>{escape(content)}</text>'


def _points(pairs: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{_n(x)},{_n(y)}" for x, y in pairs)


def _n(value: float) -> str:
    return f"{value:.2f}"
