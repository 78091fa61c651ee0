"""The evidence layer: the same figures as the readers it replaced, and the sampling design's guards.

``tests/data/evidence_before.json`` holds what the archive readers gave before
``core.evidence`` existed (the script beside it, run at b395680) on the deterministic archive of
``tests/evidence_records``; the tables here are built from the real table definitions, as
``core.lake.open_archive`` registers them.
"""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pytest
from modstream.bank import retro
from modstream.core import evidence, lake
from modstream.core.events import ModerationDecision, Outcome, Record, ReviewVerdict
from modstream.core.evidence import Period
from modstream.core.settings import Settings
from modstream.learn.examples import labelled_examples
from modstream.learn.seed import most_alike, vector_of
from modstream.models.compare import as_plain, compare
from modstream.quality.agreement import agreement_report
from modstream.quality.report import quality_report

from tests.evidence_records import EMBEDDERS, NEW_LABEL, START, evidence_archive, memory_archive, verdict_on

BEFORE = json.loads((Path(__file__).parents[1] / "data" / "evidence_before.json").read_text())
PERIODS = {
    "all": Period(),
    "acme": Period(tenant="acme"),
    "day2": Period(since=START + timedelta(days=1), until=START + timedelta(days=2)),
}
NOW = START + timedelta(days=30)


def plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def digest(values: list[Any]) -> dict[str, Any]:
    return {"count": len(values), "sha256": hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()}


@pytest.fixture(scope="module")
def records() -> list[tuple[str, Record]]:
    return evidence_archive()


@pytest.mark.parametrize("name", sorted(PERIODS))
def test_quality_figures_are_those_of_the_readers_before(records: list[tuple[str, Record]], name: str) -> None:
    period, before = PERIODS[name], BEFORE[name]
    archive = memory_archive(records)
    sample = evidence.sampled_verdicts(archive, period, now=NOW)
    scores, days = evidence.automatic_scores(archive, period)
    assert (len(sample), int(sample.labelled.sum())) == (before["decisions"], before["labelled"])
    assert plain(quality_report(sample, by_tenant=period.tenant is not None).to_dict()) == before["report"]
    pairs = evidence.review_pairs(archive, period, now=NOW)
    assert plain(agreement_report(pairs, sorted(sample.labels)).to_dict()) == before["reviewers"]
    assert evidence.labels_in(archive, period) == before["labels"]
    assert (len(scores), round(sum(sum(s.values()) for s in scores), 9), days) == (
        before["scores"],
        before["score_sum"],
        before["days"],
    )
    assert sample.set_aside == dict.fromkeys(evidence.SET_ASIDE_REASONS, 0)


def test_learning_seeding_retro_and_comparison_figures_are_those_before(
    records: list[tuple[str, Record]], monkeypatch: pytest.MonkeyPatch
) -> None:
    since, until = START + timedelta(hours=6), START + timedelta(days=3)
    examples = labelled_examples(memory_archive(records), NEW_LABEL, EMBEDDERS[0], since, until)
    assert {
        "event_ids": digest(examples.event_ids),
        "positive": digest(examples.positive.tolist()),
        "other_models": examples.other_models,
        "without_embedding": examples.without_embedding,
    } == BEFORE["examples"]

    decisions = [r for n, r in records if isinstance(r, ModerationDecision) and r.embedding is not None]
    chosen = [d for d in decisions if d.embedding and d.embedding.model == EMBEDDERS[0]][:3]
    vectors = np.stack([vector_of(d.embedding) for d in chosen if d.embedding])
    alike = most_alike(
        memory_archive(records),
        vectors,
        EMBEDDERS[0],
        count=25,
        queue="q",
        since=START,
        until=until,
        labelled_since=since,
    )
    assert [[a.request.event_id, round(a.similarity, 6)] for a in alike] == BEFORE["seed"]

    monkeypatch.setattr(lake, "open_archive", lambda settings, since=None, until=None: memory_archive(records))
    uploads = retro.archived_uploads(Settings(), START + timedelta(days=1))
    rows = sorted(
        [u.event_id, u.hashes.sha256, u.decision.value, u.by_person, u.decided_at.isoformat()] for u in uploads
    )
    assert digest(rows) == BEFORE["retro"]

    verdicts = [r for n, r in records if isinstance(r, ReviewVerdict)]
    counting = evidence.current_verdicts(verdicts, since)
    assert digest(sorted([e, v.verdict_id] for e, v in counting.items())) == BEFORE["counting"]
    shadows = [r for n, r in records if n == "shadow"]
    compared = [as_plain(c) for c in compare(shadows, verdicts, since={NEW_LABEL: since})]  # type: ignore[arg-type]
    assert plain(compared) == BEFORE["compare"]


def _first_reviewed(records: list[tuple[str, Record]], outcome: Outcome) -> ModerationDecision:
    reviewed = {r.automatic_decision_id for _, r in records if isinstance(r, ReviewVerdict)}
    return next(
        r
        for _, r in records
        if isinstance(r, ModerationDecision) and r.decision is outcome and r.decision_id in reviewed
    )


def _unsampled_allow(records: list[tuple[str, Record]]) -> ModerationDecision:
    reviewed = {r.automatic_decision_id for _, r in records if isinstance(r, ReviewVerdict)}
    return next(
        r
        for _, r in records
        if isinstance(r, ModerationDecision)
        and r.decision is Outcome.ALLOW
        and not r.audit_sample
        and r.decision_id not in reviewed
    )


def test_a_verdict_from_1970_does_not_replace_the_real_one(records: list[tuple[str, Record]]) -> None:
    import random

    reviewed = _first_reviewed(records, Outcome.REVIEW)
    early = verdict_on(reviewed, random.Random(1), kind="threshold_review", after=timedelta(0), reviewer="x")
    early = early.model_copy(update={"occurred_at": datetime(1970, 1, 1, tzinfo=UTC), "labels": ["nsfw", "nsfl"]})
    future = early.model_copy(update={"verdict_id": "future", "occurred_at": NOW + timedelta(days=1)})
    archive = memory_archive([*records, ("verdicts", early), ("verdicts", future)])
    sample = evidence.sampled_verdicts(archive, Period(), now=NOW)
    assert sample.set_aside == {"implausible_time": 2, "off_design": 0, "orphan": 0}
    figures = plain(quality_report(sample).to_dict())
    assert figures == BEFORE["all"]["report"]  # precision unchanged: the real verdict still counts


def test_a_verdict_on_an_allow_never_audited_is_off_design(records: list[tuple[str, Record]]) -> None:
    import random

    allowed = _unsampled_allow(records)
    stray = verdict_on(allowed, random.Random(2), kind="audit_sample", after=timedelta(minutes=5), reviewer="x")
    sample = evidence.sampled_verdicts(memory_archive([*records, ("verdicts", stray)]), Period(), now=NOW)
    assert sample.set_aside == {"implausible_time": 0, "off_design": 1, "orphan": 0}
    assert int(sample.labelled.sum()) == BEFORE["all"]["labelled"]  # not counted as labelled
    assert plain(quality_report(sample).to_dict()) == BEFORE["all"]["report"]


def test_a_verdict_on_an_unknown_decision_is_an_orphan_per_tenant(records: list[tuple[str, Record]]) -> None:
    import random

    reviewed = _first_reviewed(records, Outcome.REVIEW)
    lost = verdict_on(reviewed, random.Random(3), kind="threshold_review", after=timedelta(minutes=5), reviewer="x")
    lost = lost.model_copy(update={"automatic_decision_id": "no-such-decision", "tenant": "acme"})
    archive = memory_archive([*records, ("verdicts", lost)])
    assert evidence.set_aside(archive, Period(tenant="acme"), now=NOW)["orphan"] == 1
    assert evidence.set_aside(archive, Period(tenant="kids"), now=NOW)["orphan"] == 0


def test_a_verdict_just_after_its_decision_before_the_period_is_not_an_orphan(
    records: list[tuple[str, Record]],
) -> None:
    """Readers open the archive from ``VERDICT_LOOKBACK`` before the period, so a verdict
    given in the period on a decision made just before it finds its decision."""
    period = PERIODS["day2"]
    since, _ = period.days()
    assert since == (START + timedelta(days=1) - evidence.VERDICT_LOOKBACK).date()
    sample = evidence.sampled_verdicts(memory_archive(records), period, now=NOW)
    assert sample.set_aside["orphan"] == 0


def test_rows_are_matched_to_types_by_name_and_a_missing_column_is_an_error() -> None:
    connection = duckdb.connect()
    cursor = connection.execute("SELECT 'e' AS event_id, 'labelling' AS job_kind, now() AS occurred_at")
    with pytest.raises(ValueError, match="labels"):
        evidence._typed(cursor, evidence.VerdictRow, cursor.fetchall())
