"""Model cards from what the project knows: the shipped taxonomy and notices, reviewers'
verdicts, with "not enough verdicts" where they are too few, and the drift monitor's state;
the page's HTML from the card's own Markdown; the archive measured again only when it changed."""

import html as markup
import json
import re
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from modstream.cli.model_cards import covered
from modstream.core.evidence import LabelColumns, Sample
from modstream.core.settings import PROJECT_ROOT
from modstream.core.stats import rate
from modstream.models.card_page import card_html
from modstream.models.cards import (
    NOT_ENOUGH,
    DriftEvidence,
    DriftReading,
    DriftRule,
    LabelDrift,
    LabelEvidence,
    MadeFrom,
    card_for,
    component_versions,
    read_notices,
)
from modstream.models.served_cards import Quality, ServedCards, slug
from modstream.models.taxonomy import read_taxonomy

ROOT = PROJECT_ROOT / "model_repository"
NOW = datetime(2026, 12, 7, tzinfo=UTC)
SERVING = "efficientnet_lite0:1+heads:1+image_safety:1+nsfwjs:1+ocr:1+opennsfw:1+preprocess:1+taxonomy:ab12"


def evidence(label: str, labelled: int, hits: int) -> LabelEvidence:
    found = rate([True] * hits + [False] * (labelled - hits))
    return LabelEvidence(label, labelled, hits, 0.85, found, found)


def test_an_ensembles_card_has_every_section_and_only_its_own_versions_evidence() -> None:
    taxonomy = read_taxonomy(ROOT)
    components = {c: "1" for c in ("efficientnet_lite0", "heads", "image_safety", "nsfwjs", "opennsfw", "preprocess")}
    quality = [
        (SERVING, evidence("sexual.explicit", 40, 36)),
        (SERVING, evidence("violence.gore", 10, 9)),  # too few
        (SERVING.replace("nsfwjs:1", "nsfwjs:2"), evidence("sexual.drawn", 90, 80)),  # another version's
    ]
    card = card_for(
        "moderation",
        "1",
        components=components | {"taxonomy": "1"},
        taxonomy=taxonomy,
        labels=taxonomy.produced_by(set(components)),
        notices=read_notices((PROJECT_ROOT / "THIRD_PARTY_NOTICES").read_text()),
        heads={},
        quality=quality,
        since=datetime(2026, 11, 1, tzinfo=UTC),
        until=None,
        now=NOW,
    )
    text = card.markdown()
    for section in ("Model details", "Intended use", "Out of scope", "Quality from reviewers' verdicts", "Caveats"):
        assert f"## {section}" in text
    assert "Licence: MIT" in text and "Licence: BSD-2-Clause (weights)" in text
    assert "- self-harm" in text and "- harassment (beyond the words the text rules catch)" in text
    assert [e.label for e in card.quality] == ["sexual.explicit", "violence.gore"]
    assert "| sexual.explicit | 40 (36) | 0.85 | 0.900 [" in text
    assert "not enough verdicts (10 of 30)" in text and "2026-11-01 to now" in text
    assert "softmax probabilities" in text and "weapon.firearm: weak proxies" in " ".join(card.caveats).replace(
        "alcohol, attire.revealing, drugs, ", ""
    )
    plain = card.to_dict()
    gore = next(e for e in plain["quality"] if e["label"] == "violence.gore")
    assert gore["enough"] is False and gore["precision"] is None


def test_a_decisions_model_version_names_each_component() -> None:
    assert component_versions(SERVING)["nsfwjs"] == "1" and component_versions(SERVING)["taxonomy"] == "ab12"


def drift_reading(tenant: str, label: str, drifting: bool, psi: float | None, hour: int = 18) -> DriftReading:
    window = None if psi is None else datetime(2026, 12, 6, hour, tzinfo=UTC)
    since = datetime(2026, 12, 6, 14, tzinfo=UTC) if drifting else None
    return DriftReading(tenant, label, drifting, since, psi, window)


def test_drift_is_each_labels_over_tenants_of_these_versions_and_names_no_tenant() -> None:
    taxonomy = read_taxonomy(ROOT)
    other = SERVING.replace("image_safety:1", "image_safety:2")
    drift = DriftEvidence(
        rule=DriftRule(alert=0.2, calm=0.1),
        readings=[
            (SERVING, drift_reading("tenant-a", "sexual.any", True, 0.31)),
            (SERVING, drift_reading("tenant-b", "sexual.any", False, 0.04, hour=19)),
            (SERVING, drift_reading("tenant-a", "violence.gore", False, 0.02)),
            (SERVING, drift_reading("tenant-c", "violence.gore", False, None)),  # nothing compared yet
            (other, drift_reading("tenant-d", "violence.gore", True, 0.9)),  # another version's
        ],
    )
    made_from = MadeFrom(snapshots={"decisions": 11, "verdicts": None}, verdicts=0)
    card = card_for(
        "image_safety",
        "1",
        components={"image_safety": "1"},
        taxonomy=taxonomy,
        labels=taxonomy.produced_by({"image_safety"}),
        notices={},
        heads={},
        quality=[],
        since=None,
        until=None,
        now=NOW,
        drift=drift,
        made_from=made_from,
    )
    assert card.drift is not None
    by_label = {d.label: d for d in card.drift}
    assert by_label["sexual.any"] == LabelDrift(
        "sexual.any", 2, 1, datetime(2026, 12, 6, 14, tzinfo=UTC), 0.31, datetime(2026, 12, 6, 18, tzinfo=UTC)
    )
    assert by_label["violence.gore"] == LabelDrift(
        "violence.gore", 1, 0, None, 0.02, datetime(2026, 12, 6, 18, tzinfo=UTC)
    )
    text = card.markdown()
    assert "| sexual.any | drifting for 1 of 2 tenants | 2026-12-06 14:00 UTC | 0.310 (2026-12-06 18:00 UTC) |" in text
    assert "| violence.gore | not drifting (1 tenant) | - | 0.020 (2026-12-06 18:00 UTC) |" in text
    assert "drifts from PSI 0.20 until it is under 0.10" in text
    assert "snapshots (decisions 11, verdicts none), 0 decisions with a verdict" in text
    assert "tenant-" not in text and "tenant-" not in card.to_json()
    plain = json.loads(card.to_json())
    assert plain["drift"][0]["drifting"] == 1 and plain["made_from"]["snapshots"] == {"decisions": 11, "verdicts": None}

    # Not read: said, not left out or guessed.
    unread = card_for(
        "image_safety",
        "1",
        components={"image_safety": "1"},
        taxonomy=taxonomy,
        labels=taxonomy.produced_by({"image_safety"}),
        notices={},
        heads={},
        quality=None,
        since=None,
        until=None,
        now=NOW,
        unavailable=["the archive: down"],
    )
    text = unread.markdown()
    assert "- the archive: down" in text and "Not read (the archive)." in text
    assert "Not read (the drift monitor's state)." in text and NOT_ENOUGH.capitalize() not in text


def test_a_labels_figures_name_the_days_of_the_decisions_they_judged() -> None:
    taxonomy = read_taxonomy(ROOT)
    found = evidence("sexual.any", 40, 30)
    dated = replace(found, first=datetime(2026, 11, 27, 20, tzinfo=UTC), last=datetime(2026, 11, 28, tzinfo=UTC))
    # 40 verdicts, none of them positive: recall has nothing to stand on, and says so.
    no_positives = replace(evidence("violence.gore", 40, 0), recall=rate([]))
    card = card_for(
        "image_safety",
        "1",
        components={"image_safety": "1"},
        taxonomy=taxonomy,
        labels=taxonomy.produced_by({"image_safety"}),
        notices={},
        heads={},
        quality=[(SERVING, dated), (SERVING, no_positives)],
        since=None,
        until=None,
        now=NOW,
    )
    text = card.markdown()
    assert f"| sexual.any | 40 (30) | 0.85 | {found.precision} | {found.recall} | 2026-11-27 to 2026-11-28 |" in text
    assert "| violence.gore | 40 (0) | 0.85 | 0.000 [" in text
    assert "| not enough verdicts (effective n=0 of 30) | - |" in text


def test_the_page_shows_the_cards_markdown_as_html_escaped_and_without_style() -> None:
    taxonomy = read_taxonomy(ROOT)
    card = card_for(
        "moderation",
        "1",
        components={"image_safety": "1", "nsfwjs": "1"},
        taxonomy=taxonomy,
        labels=taxonomy.produced_by({"image_safety", "nsfwjs"}),
        notices=read_notices((PROJECT_ROOT / "THIRD_PARTY_NOTICES").read_text()),
        heads={},
        quality=[(SERVING, evidence("sexual.any", 40, 36)), (SERVING, evidence("violence.gore", 10, 9))],
        since=None,
        until=None,
        now=NOW,
    )
    hostile = replace(card, out_of_scope=[*card.out_of_scope, '<script>alert(1)</script><b style="x">'])
    page = card_html(hostile)
    assert "<h2>Model card: moderation version 1</h2>" in page and "<h3>Caveats</h3>" in page and "<h1>" not in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert re.search(r"<[^>]*\sstyle\s*=", page) is None  # the CSP allows no style attribute
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>", page)
    assert ("sexual.any", "40 (36)", "0.85", str(card.quality[0].precision)) in rows
    # Every line (every table cell) of the Markdown is in the page's text: one text, two forms.
    text = markup.unescape(re.sub(r"<[^>]+>", "", page))
    for line in hostile.markdown().splitlines():
        if set(line) <= set("|- "):
            continue
        for cell in line.strip("|").split("|") if line.startswith("|") else [line]:
            plain = re.sub(r"^(#+|-) ", "", cell.strip()).replace("**", "").replace("`", "")
            assert plain in text, plain


def test_the_period_a_label_covers_is_its_judged_decisions_of_that_version() -> None:
    def column(scores: list[float]) -> LabelColumns:
        return LabelColumns(np.asarray(scores), np.full(4, 0.4), np.full(4, 0.8), np.zeros(4, dtype=bool))

    sample = Sample(
        tenant=np.asarray(["t"] * 4),
        model_version=np.asarray(["a", "a", "a", "b"]),
        outcome=np.asarray(["review"] * 4),
        audit_rate=np.zeros(4),
        audit_sample=np.zeros(4, dtype=bool),
        verdict=np.asarray(["approve", "", "remove", "remove"]),
        labels={"x": column([0.5, 0.5, np.nan, 0.5])},
        occurred_at=np.asarray([100_000_001, 50_000_000, 300_000_000, 10_000_000]),
    )
    # The second is not judged, the third does not score x, the fourth is another version's.
    judged = datetime(1970, 1, 1, 0, 1, 40, 1, tzinfo=UTC)
    assert covered(sample, "x", "a") == (judged, judged)
    assert covered(sample, "x", "c") == (None, None) and covered(sample, "y", "a") == (None, None)


class Source:
    """An evidence source whose archive changes when the test says (the servers' is the integration test's)."""

    def __init__(self) -> None:
        self.snapshot = 1
        self.down = False

    def snapshots(self) -> dict[str, int | None]:
        return {"decisions": self.snapshot, "verdicts": self.snapshot}

    def quality(self) -> Quality:
        if self.down:
            return Quality(rows=[], unavailable=["the archive: down"])
        made_from = MadeFrom(self.snapshots(), verdicts=40 * self.snapshot)
        return Quality(rows=[(SERVING, evidence("sexual.any", 40 * self.snapshot, 30))], made_from=made_from)

    async def drift(self) -> DriftEvidence | str:
        return "the drift monitor's state in Redis: down"


async def test_served_cards_are_measured_again_only_after_a_new_snapshot() -> None:
    source = Source()
    cards = ServedCards(ROOT, "moderation", source, PROJECT_ROOT / "THIRD_PARTY_NOTICES")
    first = await cards.cards(NOW)
    assert [slug(c) for c in first] == [
        "moderation-1",
        "efficientnet_lite0-1",
        "heads-1",
        "image_safety-1",
        "nsfwjs-1",
        "ocr-1",
        "opennsfw-1",
    ]
    assert (await cards.cards(NOW))[0].markdown() == first[0].markdown() and cards.measured == 1
    source.snapshot = 2
    changed = await cards.cards(NOW)
    assert cards.measured == 2 and changed[0].quality[0].labelled == 80
    source.down, source.snapshot = True, 3
    assert (await cards.cards(NOW))[0].quality_read is False  # said, and not kept
    source.down = False
    assert (await cards.cards(NOW))[0].quality[0].labelled == 120 and cards.measured == 4
    assert "the drift monitor's state in Redis: down" in changed[0].markdown()

    missing = ServedCards(ROOT, "moderation", source, PROJECT_ROOT / "no-such-notices")
    card = (await missing.cards(NOW))[0]
    assert card.details == {} and "THIRD_PARTY_NOTICES (No such file or directory" in card.markdown()
