"""Model cards from what the project knows: the shipped taxonomy and notices, and reviewers'
verdicts, with "not enough verdicts" where they are too few."""

from datetime import UTC, datetime

from modstream.core.settings import PROJECT_ROOT
from modstream.core.stats import rate
from modstream.models.cards import LabelEvidence, card_for, component_versions, read_notices
from modstream.models.taxonomy import read_taxonomy

ROOT = PROJECT_ROOT / "model_repository"
NOW = datetime(2026, 12, 7, tzinfo=UTC)
SERVING = "efficientnet_lite0:1+heads:1+image_safety:1+nsfwjs:1+opennsfw:1+preprocess:1+taxonomy:ab12"


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
    assert "- self-harm" in text and "text in images" in text
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
