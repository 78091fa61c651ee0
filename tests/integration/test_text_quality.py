"""Text labels in the quality loop: decisions that scored text.scam from what OCR read, and
reviewers' verdicts naming it, archived by the real archiver, give text.scam a row of the
quality report like any label; the reading is kept in the archive's decisions."""

import random

import pytest
from modstream.core.events import (
    ModerationDecision,
    Record,
    ReviewVerdict,
    TextLine,
    TextMatch,
    TextReading,
    Thresholds,
)
from modstream.core.evidence import Period, sampled_verdicts
from modstream.core.lake import open_archive
from modstream.core.settings import Settings
from modstream.quality.report import quality_report

from tests.archive import Produce, archive_in_process, private_archive, rows_in_files, traffic

pytestmark = pytest.mark.integration
LABEL = "text.scam"


def with_text(records: list[tuple[str, Record]], seed: int) -> list[tuple[str, Record]]:
    """Half the decisions read a line with a scam term (text.scam scores its confidence), the
    rest read nothing (0); a reviewer names text.scam with the probability of that score."""
    rng = random.Random(seed)
    scored: dict[str, float] = {}
    out: list[tuple[str, Record]] = []
    for table, record in records:
        if isinstance(record, ModerationDecision):
            score = rng.uniform(0.3, 1.0) if rng.random() < 0.5 else 0.0
            scored[record.decision_id] = score
            line = TextLine(text="FREE CRYPTO GIVEAWAY" if score else "", confidence=score, box=(0.1, 0.1, 0.6, 0.2))
            matches = [TextMatch(label=LABEL, rule="term:free crypto", line=0, start=0, end=11, confidence=score)]
            record = record.model_copy(
                update={
                    "scores": record.scores | {LABEL: score},
                    "thresholds": record.thresholds | {LABEL: Thresholds(review_at=0.5, block_at=1.0)},
                    "text": TextReading(regions=1, lines=[line]) if score else TextReading(regions=0),
                    "text_matches": matches if score else [],
                }
            )
        elif isinstance(record, ReviewVerdict) and rng.random() < scored[record.automatic_decision_id]:
            record = record.model_copy(update={"labels": [*record.labels, LABEL], "verdict": "remove"})
        out.append((table, record))
    return out


async def test_a_text_label_has_its_quality_row_from_archived_decisions_and_verdicts(stack_settings: Settings) -> None:
    settings = (await private_archive(stack_settings)).model_copy(update={"archive_flush_seconds": 1.0})
    records = with_text(list(traffic(300, seed=4)), seed=5)
    producer = Produce(settings)
    for table, record in records:
        producer.record(table, record)
    producer.flush()
    await archive_in_process(settings)

    with open_archive(settings) as archive:
        sample = sampled_verdicts(archive, Period())
    assert LABEL in sample.labels and len(sample) == 300
    named = sum(1 for t, r in records if t == "verdicts" and isinstance(r, ReviewVerdict) and LABEL in r.labels)
    assert named >= 30 and int(sample.labels[LABEL].truth.sum()) > 0
    # Its row counts what was archived, as any label's does (300 decisions are too few for the
    # report to give a rate: it says so with value None, as for any label).
    firsts = {
        r.automatic_decision_id: r
        for t, r in records
        if t == "verdicts" and isinstance(r, ReviewVerdict) and r.job_kind != "second_review"
    }
    scores = {r.decision_id: r.scores[LABEL] for t, r in records if isinstance(r, ModerationDecision)}
    row = next(row for row in quality_report(sample).labels if row.label == LABEL)
    assert (row.decisions, row.labelled) == (300, len(firsts))
    assert row.positives == sum(1 for v in firsts.values() if LABEL in v.labels)
    assert row.at_review.threshold == 0.5
    assert row.at_review.precision.count == sum(1 for d in firsts if scores[d] >= 0.5)

    texts = {
        r.decision_id: r.text for t, r in records if t == "decisions" and isinstance(r, ModerationDecision) and r.text
    }
    rows = rows_in_files(settings, "decisions", ["decision_id", "text_regions", "text_lines", "text_matches"])
    assert len(rows) == 300
    for row_ in rows:
        reading = texts[str(row_["decision_id"])]
        assert row_["text_regions"] == reading.regions
        assert [line["text"] for line in row_["text_lines"]] == [line.text for line in reading.lines]  # type: ignore[attr-defined]
