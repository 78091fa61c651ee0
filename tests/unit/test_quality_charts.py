"""The quality page's SVG charts: well-formed, every point where the numbers put it, every
text escaped, nothing the dashboard's CSP would block."""

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from modstream.core.stats import PRCurve, pr_curve
from modstream.quality.charts import drift_chart, pr_chart

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script> & <b onload="y">'
T0 = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def parsed(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # raises on anything that is not well-formed XML
    assert root.tag == f"{SVG}svg"
    for element in root.iter():
        assert not any(name == "style" or name.startswith("on") for name in element.attrib), element.attrib
        assert element.tag not in (f"{SVG}script", f"{SVG}style", f"{SVG}foreignObject")
    return root


def frame(root: ET.Element) -> tuple[float, float, float, float]:
    """left, top, width, height of the plotting area."""
    rect = root.find(f"{SVG}rect[@class='frame']")
    assert rect is not None
    return tuple(float(rect.attrib[k]) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def vertices(root: ET.Element, kind: str) -> list[tuple[float, float]]:
    line = root.find(f"{SVG}polyline[@class='{kind}']")
    assert line is not None
    return [(float(x), float(y)) for x, y in (pair.split(",") for pair in line.attrib["points"].split())]


def marker(root: ET.Element, name: str) -> tuple[float, float] | None:
    found = root.find(f"{SVG}circle[@class='threshold {name}']")
    return None if found is None else (float(found.attrib["cx"]), float(found.attrib["cy"]))


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


# Scores 0.1 .. 0.9, the label true for 0.3, 0.7 and 0.9.
CURVE = pr_curve([0.1, 0.3, 0.5, 0.7, 0.9], [False, True, False, True, True])


def test_the_pr_curve_has_one_vertex_per_threshold_placed_by_recall_and_precision() -> None:
    root = parsed(pr_chart(CURVE, None, None))
    left, top, width, height = frame(root)
    drawn = vertices(root, "curve")
    assert len(drawn) == CURVE.thresholds.size == 5
    expected = [(left + r * width, top + (1 - p) * height) for r, p in zip(CURVE.recall, CURVE.precision, strict=True)]
    assert np.asarray(drawn) == pytest.approx(np.asarray(expected), abs=0.01)
    assert drawn[0] == pytest.approx((left + width, top + (1 - 0.6) * height), abs=0.01)  # all predicted: 3 of 5
    assert marker(root, "review") is None and marker(root, "block") is None


def test_each_threshold_is_marked_where_reaching_it_puts_the_curve() -> None:
    root = parsed(pr_chart(CURVE, review_at=0.4, block_at=0.7))
    left, top, width, height = frame(root)
    # score >= 0.4: 0.5, 0.7, 0.9 predicted, 2 of them true, of 3 true in all.
    assert marker(root, "review") == pytest.approx((left + 2 / 3 * width, top + (1 - 2 / 3) * height), abs=0.01)
    # score >= 0.7 (a threshold equal to a score reaches it): 0.7 and 0.9, both true.
    assert marker(root, "block") == pytest.approx((left + 2 / 3 * width, top), abs=0.01)
    assert "review_at 0.400" in texts(root) and "block_at 0.700" in texts(root)
    titles = ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]
    assert "review_at 0.400: precision 0.667, recall 0.667" in titles


def test_a_threshold_no_labelled_score_reaches_is_said_not_drawn() -> None:
    root = parsed(pr_chart(CURVE, review_at=0.4, block_at=0.95))
    assert marker(root, "review") is not None and marker(root, "block") is None
    assert "block_at 0.950: no labelled score reaches it" in texts(root)


def test_a_large_weighted_curve_keeps_every_vertex_inside_the_frame() -> None:
    rng = np.random.default_rng(3)
    scores = rng.random(2000)
    curve = pr_curve(scores, rng.random(2000) < scores, rng.choice([1.0, 20.0], 2000))
    root = parsed(pr_chart(curve, 0.4, 0.85))
    left, top, width, height = frame(root)
    drawn = vertices(root, "curve")
    assert len(drawn) == curve.thresholds.size == 2000
    assert all(left <= x <= left + width and top <= y <= top + height for x, y in drawn)


def test_hostile_titles_are_escaped() -> None:
    for svg in (pr_chart(CURVE, 0.4, 0.8, title=HOSTILE), drift_chart([(T0, 0.05)], title=HOSTILE)):
        root = parsed(svg)
        assert "<script" not in svg and "<b " not in svg
        title = root.find(f"{SVG}title")
        assert title is not None and title.text == HOSTILE


def test_an_empty_curve_draws_the_frame_and_says_so() -> None:
    empty = np.zeros(0)
    curve = PRCurve(empty, empty, empty, empty, empty, empty, empty, empty, np.zeros(0, np.int64), 0.0, 0)
    root = parsed(pr_chart(curve, 0.4, 0.8))
    assert root.find(f"{SVG}polyline") is None and root.find(f"{SVG}circle") is None
    assert "no labelled decision" in texts(root)


def test_drift_points_sit_at_their_psi_against_the_threshold_lines() -> None:
    psi = [0.02, 0.05, 0.12, 0.31, 0.08]
    points = [(T0 + timedelta(hours=i), value) for i, value in enumerate(psi)]
    root = parsed(drift_chart(points, warn=0.1, alert=0.2))
    left, top, width, height = frame(root)
    bottom = top + height
    lines = {line.attrib["class"]: float(line.attrib["y1"]) for line in root.iter(f"{SVG}line")}
    assert top < lines["level alert"] < lines["level warn"] < bottom
    unit = (bottom - lines["level alert"]) / 0.2  # pixels per PSI
    assert bottom - lines["level warn"] == pytest.approx(0.1 * unit, abs=0.02)

    circles = list(root.iter(f"{SVG}circle"))
    assert len(circles) == len(vertices(root, "psi")) == len(psi)
    for i, (circle, value) in enumerate(zip(circles, psi, strict=True)):
        assert float(circle.attrib["cx"]) == pytest.approx(left + i / 4 * width, abs=0.01)
        assert bottom - float(circle.attrib["cy"]) == pytest.approx(value * unit, abs=0.02)
    assert top <= min(float(c.attrib["cy"]) for c in circles)  # the highest one still inside
    assert [c.attrib["class"] for c in circles] == [
        "point calm",
        "point calm",
        "point warn",
        "point alert",
        "point calm",
    ]
    assert "2026-11-28 09:00 UTC: PSI 0.310" in ["".join(c.itertext()) for c in circles]


def test_drift_points_out_of_order_are_drawn_in_time_order_and_one_sits_mid_chart() -> None:
    points = [(T0 + timedelta(hours=2), 0.3), (T0, 0.1), (T0 + timedelta(hours=1), 0.2)]
    root = parsed(drift_chart(points))
    xs = [x for x, _ in vertices(root, "psi")]
    assert xs == sorted(xs)
    single = parsed(drift_chart([(T0, 0.05)]))
    left, _, width, _ = frame(single)
    (circle,) = single.iter(f"{SVG}circle")
    assert float(circle.attrib["cx"]) == pytest.approx(left + width / 2, abs=0.01)


def test_no_drift_window_draws_the_levels_and_says_so() -> None:
    root = parsed(drift_chart([], warn=0.1, alert=0.2))
    assert root.find(f"{SVG}polyline") is None and root.find(f"{SVG}circle") is None
    assert len(list(root.iter(f"{SVG}line"))) == 2
    assert "no window with enough decisions yet" in texts(root)
