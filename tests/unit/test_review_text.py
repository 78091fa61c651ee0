"""The text read in an image, in review: it travels from the review request (or the decision
appealed) into the job and on to a person's decision, its labels are offered to the verdict,
and the job page shows it escaped, with the matched spans highlighted and the boxes placed."""

import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from modstream.core.appeals import AppealRules
from modstream.core.events import AppealLodged, Outcome, ReviewRequest, TextLine, TextMatch, TextReading, Thresholds
from modstream.core.settings import Settings
from modstream.review.appeals import appeal_job
from modstream.review.intake import job_for
from modstream.review.jobs import ReviewJob, Verdict, VerdictInput
from modstream.review.service import ReviewService
from modstream.review.web.app import HERE
from modstream.review.web.pages import Pages
from modstream.review.web.reading import Placed, Segment, placed, segments, shown_lines

from tests.statement_cases import decision

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SCRIPT = "FREE CRYPTO <script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)> call +1 555 0100'
PHONE = IMG.index("+1")
READING = TextReading(
    regions=3,
    lines=[
        TextLine(text=SCRIPT, confidence=0.97, box=(0.1, 0.2, 0.6, 0.3)),
        TextLine(text=IMG, confidence=0.91, box=(0.05, 0.5, 0.95, 0.58)),
        TextLine(text="hello", confidence=0.5, box=(-0.1, 0.5, 1.4, 0.4)),  # out of the picture, reversed
    ],
)
MATCHES = [
    TextMatch(label="text.scam", rule="term:free crypto", line=0, start=0, end=11, confidence=0.97),
    TextMatch(label="text.contact", rule="phone", line=1, start=PHONE, end=len(IMG), confidence=0.91),
    # A rule is the policy's, but the page escapes it too: here one that would close the title.
    TextMatch(label="text.slur", rule='"><b>x', line=0, start=12, end=20, confidence=0.97),
]


def request(**changes: Any) -> ReviewRequest:
    read: dict[str, Any] = {"text": READING, "text_matches": MATCHES}
    return ReviewRequest.of(decision("model", decision=Outcome.REVIEW, review_queue="text", **read | changes))


def test_a_review_job_carries_the_text_read_and_the_matches() -> None:
    job = job_for(request(), NOW)
    assert job.text == READING and job.text_matches == MATCHES
    again = ReviewJob.model_validate_json(job.model_dump_json())  # as Redis keeps it
    assert again.text == READING and again.text_matches == MATCHES


def test_a_persons_decision_keeps_the_text_so_an_appeal_against_it_shows_it() -> None:
    job = job_for(request(), NOW)
    removed = ReviewService(Settings())._decision(job, "lena", VerdictInput(verdict=Verdict.REMOVE, labels=[]), 3.0)
    assert removed.text == READING and removed.text_matches == MATCHES
    lodged = AppealLodged(
        event_id=removed.event_id,
        tenant="acme",
        appellant="uploader",
        appellant_id="u-1",
        reason="a joke",
        occurred_at=NOW,
    )
    appeal = appeal_job(lodged, removed.model_copy(update={"reviewer": "lena"}), AppealRules(), NOW)
    assert appeal.text == READING and appeal.text_matches == MATCHES


def test_the_verdict_offers_the_policys_text_labels_and_every_matched_one() -> None:
    thresholds = {
        "sexual.explicit": Thresholds(review_at=0.5, block_at=0.9),
        "text.scam": Thresholds(review_at=0.5, block_at=1.0),
        "text.url": Thresholds(review_at=0.5, block_at=1.0),
    }
    job = job_for(request(thresholds=thresholds), NOW)
    # The policy's labels (text.url matched nothing) and the matched ones it no longer has.
    assert job.labels_offered == ["sexual.explicit", "text.contact", "text.scam", "text.slur", "text.url"]
    # A text bank's span names a bank: shown on the page, never offered as a label.
    banked = MATCHES[0].model_copy(update={"label": "scam-phrases", "rule": "bank:scam-phrases"})
    with_bank = job.model_copy(update={"text_matches": [*job.text_matches, banked]})
    assert with_bank.labels_offered == job.labels_offered


def test_a_line_is_cut_at_its_matches_and_overlaps_split_each_other() -> None:
    scam, slur = MATCHES[0], MATCHES[2]
    assert segments(SCRIPT, [scam, slur]) == (
        Segment("FREE CRYPTO", (scam,)),
        Segment(" "),
        Segment("<script>", (slur,)),
        Segment("alert(1)</script>"),
    )
    wide = scam.model_copy(update={"label": "text.url", "rule": "url", "start": 5, "end": 15})
    assert segments(SCRIPT, [scam, wide]) == (
        Segment("FREE ", (scam,)),
        Segment("CRYPTO", (scam, wide)),
        Segment(" <sc", (wide,)),
        Segment("ript>alert(1)</script>"),
    )
    assert Segment("CRYPTO", (scam, wide, scam)).title == "text.scam (term:free crypto); text.url (url)"


def test_offsets_past_the_line_are_clamped_and_empty_spans_dropped() -> None:
    past = MATCHES[0].model_copy(update={"start": 3, "end": 99})
    empty = MATCHES[0].model_copy(update={"start": 4, "end": 4})
    backwards = MATCHES[0].model_copy(update={"start": 4, "end": 2})
    assert segments("hello", [past, empty, backwards]) == (Segment("hel"), Segment("lo", (past,)))
    assert segments("", [past]) == ()


def test_boxes_are_percentages_of_the_picture_clamped_into_it() -> None:
    assert placed((0.1, 0.2, 0.6, 0.3)) == Placed(x=10.0, y=20.0, width=50.0, height=10.0)
    assert placed((-0.1, 0.5, 1.4, 0.4)) == Placed(x=0.0, y=40.0, width=100.0, height=10.0)
    assert placed((float("nan"), 0.0, 0.5, 0.5)) == Placed(x=0.0, y=0.0, width=50.0, height=50.0)


def test_each_line_names_the_labels_matched_in_it() -> None:
    lines = shown_lines(READING, MATCHES)
    assert [(line.number, line.labels, line.matched) for line in lines] == [
        (1, ("text.scam", "text.slur"), True),
        (2, ("text.contact",), True),
        (3, (), False),
    ]
    assert shown_lines(None, MATCHES) == []


class Elements(HTMLParser):
    """Every element of a piece of HTML with its attributes, and the text inside each <mark>."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.marks: list[tuple[str | None, str]] = []
        self._in_mark = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "mark":
            self._in_mark = True
            self.marks.append((dict(attrs)["title"], ""))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self._in_mark = self._in_mark and tag != "mark"

    def handle_data(self, data: str) -> None:
        if self._in_mark:
            title, text = self.marks[-1]
            self.marks[-1] = (title, text + data)


def macros() -> Any:
    return Pages(HERE / "templates").templates.env.get_template("reading.html").module


def test_the_panel_escapes_hostile_lines_and_highlights_the_matched_characters() -> None:
    job = job_for(request(), NOW)
    html = str(macros().text_panel(job, shown_lines(job.text, job.text_matches), "medium"))
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    found = Elements(html)
    # Only the panel's own markup: nothing a line or a rule carried became an element.
    assert {tag for tag, _ in found.tags} == {"section", "h2", "p", "div", "ol", "li", "span", "mark", "ul", "strong"}
    assert found.marks == [
        ("text.scam (term:free crypto)", "FREE CRYPTO"),
        ('text.slur ("><b>x)', "<script>"),
        ("text.contact (phone)", "+1 555 0100"),
    ]
    assert '<mark title="text.scam (term:free crypto)">FREE CRYPTO</mark> <mark' in html
    # Each line names the labels matched in it, and each match is listed with its rule and line.
    assert re.findall(r'<span class="tag">([^<]*)</span>', html) == ["text.scam", "text.slur", "text.contact"]
    assert re.findall(r"<strong>([^<]*)</strong>", html) == ["text.scam", "text.contact", "text.slur"]
    assert "phone · line 2 · 0.91" in html
    # Shielded like the image, at the reviewer's blur level.
    assert ("div", {"class": "text-read shielded blur-medium"}) in found.tags


def test_the_boxes_are_drawn_at_the_lines_percentages_and_matched_lines_stand_out() -> None:
    lines = shown_lines(READING, MATCHES)
    found = Elements(str(macros().text_boxes(lines, "high")))
    (svg,) = [attrs for tag, attrs in found.tags if tag == "svg"]
    assert svg["class"] == "text-boxes shielded blur-high"
    rects = [attrs for tag, attrs in found.tags if tag == "rect"]
    assert [(r["x"], r["y"], r["width"], r["height"], r.get("class")) for r in rects] == [
        ("10.0%", "20.0%", "50.0%", "10.0%", "matched"),
        ("5.0%", "50.0%", "90.0%", "8.0%", "matched"),
        ("0.0%", "40.0%", "100.0%", "10.0%", None),
    ]
    assert str(macros().text_boxes([], "high")).strip() == ""  # no text: no overlay


def test_a_reading_without_lines_says_so_and_a_cut_one_says_how_many_are_shown() -> None:
    nothing = job_for(request(text=TextReading(regions=2), text_matches=[]), NOW)
    html = str(macros().text_panel(nothing, shown_lines(nothing.text, []), "low"))
    assert "No text read (2 text regions found)." in html and "<ol" not in html
    cut = job_for(request(text=READING.model_copy(update={"truncated": True})), NOW)
    html = str(macros().text_panel(cut, shown_lines(cut.text, cut.text_matches), "low"))
    assert "these are the first 3." in html
