"""Threshold advice for a label the policy does not trigger on yet: the pure advice against a
hand computation, the quality room's ``suggest`` over an archive held in memory (DuckDB
views over the archive's own Arrow tables) with every refusal, and the command's refusals
of what does not fit the policy."""

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import duckdb
import numpy as np
import pytest
import yaml
from modstream import cli
from modstream.core import label_since
from modstream.core.events import ModelRef, ModerationDecision, Outcome, Record, ReviewVerdict, Thresholds
from modstream.core.evidence import Bools, Floats, LabelColumns, Period, Sample
from modstream.core.label_since import counting_from
from modstream.core.ports import free_port
from modstream.core.settings import Settings, get_settings
from modstream.policy.loader import load_policies
from modstream.policy.proposal import outcome_under, with_thresholds, write_proposal
from modstream.quality.advice import NoAdvice, advise
from modstream.quality.suggest import Policies, Refused, Request, Sources, Suggestion, suggest
from typer.testing import CliRunner

from tests.evidence_records import memory_archive

LABEL = "emblem.red"
DEFINED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
POLICY = """id: default
version: "seeded-1"
ignore: [sfw, emblem.red, ghost]
labels:
  nsfw: {review_at: 0.4, block_at: 0.85, queue: sexual-content}
"""
MODEL = ModelRef(name="moderation", version="heads:2")

# 100 labelled decisions scoring i/100: reviewers gave the label to those from 0.60 on (40)
# and to 0.30, 0.40 and 0.50 (43 positives in all).
SCORES = np.arange(100) / 100
POSITIVE = (SCORES >= 0.6) | np.isin(np.arange(100), [30, 40, 50])


def labelled_sample(score: Floats = SCORES, truth: Bools = POSITIVE) -> Sample:
    """Every decision labelled, in one stratum: each weighs 1."""
    size = len(score)
    return Sample(
        tenant=np.full(size, "t"),
        model_version=np.full(size, "1"),
        outcome=np.full(size, "review"),
        audit_rate=np.zeros(size),
        audit_sample=np.zeros(size, dtype=bool),
        verdict=np.where(truth, "remove", "approve"),
        labels={LABEL: LabelColumns(score, np.full(size, np.nan), np.full(size, np.nan), truth)},
    )


def test_advice_for_a_label_without_thresholds_matches_the_hand_computation() -> None:
    advice = advise(labelled_sample(), LABEL, None, target_precision=0.9, target_recall=0.95)
    # block_at: at 0.60, 40 of 40 predicted are positive: Wilson's lower bound 40 / (40 + 1.96²)
    # = 0.9124 >= 0.9; at 0.59, 40 of 41: lower bound 0.874 (and lower still below), so 0.60.
    # review_at: recall 41/43 = 0.9535 at 0.50, 40/43 = 0.930 from 0.51 on, so 0.50.
    assert advice.proposed == Thresholds(review_at=0.5, block_at=0.6)
    assert (advice.current, advice.before, advice.notes) == (None, None, [])
    assert (advice.labelled, advice.positives) == (100, 43)
    after = advice.after
    assert after.precision_at_block.value == 1.0
    assert after.precision_at_block.low == pytest.approx(40 / (40 + 1.96**2))
    assert after.recall_at_block.value == pytest.approx(40 / 43)
    assert after.recall_at_review.value == pytest.approx(41 / 43)
    assert after.precision_at_review.value == pytest.approx(41 / 50)


def test_without_a_block_at_that_reaches_the_target_a_new_label_never_blocks() -> None:
    # At 0.95 nothing qualifies: the best lower bound, 0.9124 at 0.60, falls short, and above
    # it fewer predicted positives only lower it.
    advice = advise(labelled_sample(), LABEL, None, target_precision=0.95, target_recall=0.95)
    assert advice.proposed == Thresholds(review_at=0.5, block_at=1.0)
    assert advice.notes == [
        "no threshold reaches precision 0.95 with 95 % confidence: block_at 1.0 (only a score of 1.0 blocks)"
    ]


def test_advice_for_a_new_label_refuses_what_it_cannot_tell() -> None:
    with pytest.raises(NoAdvice, match=r"'emblem.red' has no review_at in force to keep: a recall target is needed"):
        advise(labelled_sample(), LABEL, None, target_precision=0.9)
    unscored = labelled_sample(np.full(100, np.nan))
    with pytest.raises(
        NoAdvice, match=r"no verdict on a decision that scores 'emblem.red' in the period \(100 labelled decisions"
    ):
        advise(unscored, LABEL, None, target_precision=0.9, target_recall=0.9)
    with pytest.raises(NoAdvice, match=r"no reviewer gave 'emblem.red' in the period \(100 labelled decisions\)"):
        advise(labelled_sample(truth=np.zeros(100, dtype=bool)), LABEL, None, target_precision=0.9, target_recall=0.9)


# The quality room's suggest, over an archive in memory.


def decided(at: datetime, scores: dict[str, float]) -> ModerationDecision:
    return ModerationDecision(
        event_id=f"e{at:%d%H%M%S}",
        tenant="t",
        bucket="uploads",
        key=f"k/{at:%d%H%M%S}.jpg",
        occurred_at=at,
        decision=Outcome.REVIEW,
        scores={"nsfw": 0.5, "sfw": 0.5} | scores,
        model=MODEL,
        policy_id="default",
        policy_version="seeded-1",
        audit_rate=0.0,
        thresholds={"nsfw": Thresholds(review_at=0.4, block_at=0.85)},
        uploaded_at=at,
        latency_ms=10.0,
    )


def judged(decision: ModerationDecision, named: bool) -> ReviewVerdict:
    verdict: Literal["approve", "remove"] = "remove" if named else "approve"
    return ReviewVerdict(
        **decision.model_dump(include={"event_id", "tenant", "bucket", "key", "scores", "model", "policy_id"}),
        policy_version=decision.policy_version,
        occurred_at=decision.occurred_at + timedelta(minutes=2),
        job_id=decision.event_id,
        job_kind="threshold_review",
        queue="sexual-content",
        verdict=verdict,
        labels=[LABEL] if named else [],
        reviewer="rita",
        review_seconds=3.0,
        automatic_decision_id=decision.decision_id,
        human_decision_id=f"h-{decision.decision_id}",
    )


def archived(*, verdicts: bool = True) -> list[tuple[str, Record]]:
    """From DEFINED on, the hand-computed 100 (each judged) and 5 decisions from before the
    model scored the label (judged too); a day earlier, 50 decisions scoring 0.9 whose
    verdicts, given before anyone could tick the label, do not name it."""
    records: list[tuple[str, Record]] = []
    for i, (score, named) in enumerate(zip(SCORES, POSITIVE, strict=True)):
        scored = decided(DEFINED + timedelta(minutes=i), {LABEL: float(score)})
        records += (
            [("decisions", scored), ("verdicts", judged(scored, bool(named)))] if verdicts else [("decisions", scored)]
        )
    for i in range(5):
        unscored = decided(DEFINED + timedelta(minutes=100 + i), {})
        records += [("decisions", unscored), ("verdicts", judged(unscored, False))]
    for i in range(50):
        early = decided(DEFINED - timedelta(days=1) + timedelta(minutes=i), {LABEL: 0.9})
        records += [("decisions", early), ("verdicts", judged(early, False))]
    return records


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "default.yaml").write_text(POLICY)
    return folder


@pytest.fixture
def suggesting(policies: Path) -> "Suggesting":
    return Suggesting(policies)


class Suggesting:
    """The quality room's ``suggest`` over records in memory and the default policy of
    ``folder``, composed as ``modstream quality suggest`` composes it; the registry answers
    ``defined`` for the label."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.opened: list[datetime | None] = []
        """The ``since`` of each period whose archive it opened."""
        self.notes: list[str] = []

    def __call__(
        self,
        records: list[tuple[str, Record]],
        label: str = LABEL,
        *,
        target_recall: float | None = 0.95,
        queue: str | None = None,
        since: datetime | None = None,
        defined: datetime | None = None,
    ) -> Suggestion:
        def archive(period: Period) -> duckdb.DuckDBPyConnection:
            self.opened.append(period.since)
            return memory_archive(records)

        def defined_at(name: str) -> datetime | None:
            return defined if name == LABEL else None

        request = Request(label, 0.9, target_recall, queue=queue, period=Period(since=since))
        policy = load_policies(self.folder).default
        policies = Policies(policy, outcome_under, with_thresholds)
        return suggest(request, policies, Sources(archive, defined_at), note=self.notes.append)

    def write(self, found: Suggestion) -> Path:
        """The proposal, as ``--write`` writes it."""
        why = found.why(datetime.now(UTC))
        return write_proposal(self.folder, None, found.request.label, found.advice.proposed, why, queue=found.queue)


def test_suggest_proposes_and_writes_a_rule_for_an_ignored_label(suggesting: Suggesting, policies: Path) -> None:
    found = suggesting(archived(), defined=DEFINED)
    (note,) = suggesting.notes
    assert note == (
        "emblem.red is under ignore in policy default: a new rule in queue emblem-red; "
        "counting verdicts from 2026-11-20 12:00:00 UTC (its definition)"
    )
    assert suggesting.opened == [DEFINED]  # the archive is read from the definition on
    # The 50 decisions from before the definition are left out: the hand computation stands.
    advice = found.advice
    assert (advice.labelled, advice.positives, found.decisions) == (100, 43, 105)
    assert advice.current is None and advice.before is None
    assert advice.proposed == Thresholds(review_at=0.5, block_at=0.6)
    assert str(advice.after.precision_at_block) == "1.000 [0.912, 1.000] n=40"
    # Every decision is a review under nsfw; the proposal blocks the 40 from 0.60 on. The 5
    # decisions without the label's score are left out of the backtest.
    assert found.backtest.decisions == 100
    assert found.backtest.moves == {("review", "block"): 40, ("review", "review"): 60}
    written = suggesting.write(found)
    assert written.parent == policies / "proposed" and written.name.startswith("default-proposed-")
    text = written.read_text()
    assert "# emblem.red moves from ignore to labels (queue emblem-red)\n" in text
    assert "# counting for emblem.red: verdicts from 2026-11-20 12:00:00 UTC (its definition)\n" in text
    assert "--target-precision 0.9 --target-recall 0.95 --queue emblem-red`" in text
    assert "# from 100 labelled decisions (43 with emblem.red); backtest: 40 of 100 decisions change\n" in text
    raw = yaml.safe_load(text)
    assert raw["ignore"] == ["sfw", "ghost"]
    assert raw["labels"][LABEL] == {"review_at": 0.5, "block_at": 0.6, "queue": "emblem-red"}
    shutil.move(written, policies / "default.yaml")
    assert load_policies(policies).default.labels[LABEL].queue == "emblem-red"


def test_without_a_definition_time_since_decides_and_else_every_verdict_counts(suggesting: Suggesting) -> None:
    found = suggesting(archived(), since=DEFINED)
    assert "counting verdicts from 2026-11-20 12:00:00 UTC (--since)" in suggesting.notes[-1]
    assert found.advice.proposed == Thresholds(review_at=0.5, block_at=0.6)
    # Both known: the later counts.
    found = suggesting(archived(), since=DEFINED - timedelta(hours=12), defined=DEFINED)
    assert suggesting.notes[-1].endswith("(its definition)") and found.decisions == 105
    # Neither: the 50 early verdicts count as "not emblem.red", and 0.9 is no longer a sure sign.
    found = suggesting(archived())
    assert suggesting.notes[-1].endswith("counting every verdict (its definition time is unknown: give --since)")
    assert (found.advice.labelled, found.advice.positives, found.decisions) == (150, 43, 155)
    assert found.advice.proposed != Thresholds(review_at=0.5, block_at=0.6)
    assert suggesting.opened == [DEFINED, DEFINED, None]


def test_a_scored_label_the_policy_does_not_name_gets_a_rule_too(suggesting: Suggesting, policies: Path) -> None:
    (policies / "default.yaml").write_text(POLICY.replace("emblem.red, ", ""))
    found = suggesting(archived(), queue="emblems", defined=DEFINED)
    assert suggesting.notes[0].startswith("emblem.red is not named in policy default: a new rule in queue emblems;")
    # In force, the unknown label sends every decision to review already: nothing moves to review.
    assert found.backtest.moves[("review", "block")] == 40
    assert "moves from ignore" not in found.why(DEFINED)
    assert yaml.safe_load(suggesting.write(found).read_text())["labels"][LABEL]["queue"] == "emblems"


def test_an_existing_label_is_advised_as_before(suggesting: Suggesting) -> None:
    # Every nsfw score is 0.5 and no reviewer names nsfw: the refusal it always gave.
    with pytest.raises(NoAdvice, match=re.escape("no reviewer gave 'nsfw' in the period (155 labelled decisions)")):
        suggesting(archived(), "nsfw", target_recall=None)
    assert suggesting.notes == []


@pytest.mark.parametrize(
    ("label", "message"),
    [
        (
            "nope",
            "policy default has no rule for 'nope', and no archived decision of the period scores it (its labels: "
            "nsfw; ignored: sfw, emblem.red, ghost)",
        ),
        ("ghost", "no archived decision of the period scores 'ghost' (ignored by default)"),
    ],
)
def test_a_new_label_nothing_scores_is_refused(suggesting: Suggesting, label: str, message: str) -> None:
    with pytest.raises(Refused, match=re.escape(message)):
        suggesting(archived(), label)


def test_no_verdict_on_the_new_label_is_refused(suggesting: Suggesting) -> None:
    message = "no verdict on a decision that scores 'emblem.red' in the period (5 labelled decisions, none scoring it)"
    with pytest.raises(NoAdvice, match=re.escape(message)):
        suggesting(archived(verdicts=False), defined=DEFINED)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--label", LABEL, "--target-precision", "0.9"],
            "'emblem.red' is not triggered by policy default yet: give --target-recall (there is no review_at in force "
            "to keep)",
        ),
        (
            ["--label", LABEL, "--target-precision", "0.9", "--target-recall", "0.9", "--queue", "Red!"],
            "queue 'Red!' refused: String should match pattern '^[a-z0-9][a-z0-9_-]{0,62}$'",
        ),
        (
            ["--label", "Emblem.Red", "--target-precision", "0.9", "--target-recall", "0.9"],
            "queue 'Emblem-Red' refused: String should match pattern '^[a-z0-9][a-z0-9_-]{0,62}$' (the default from "
            "the label 'Emblem.Red': give one with --queue)",
        ),
        (
            ["--label", "nsfw", "--target-precision", "0.9", "--queue", "elsewhere"],
            "'nsfw' already has a rule in policy default (queue sexual-content): --queue is for a label the policy "
            "does not trigger on yet; edit the policy file to move it",
        ),
    ],
)
def test_the_command_refuses_what_does_not_fit_the_policy(
    policies: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    """Refused before the registry or the archive is asked: the command needs only the policies."""
    monkeypatch.setenv("MODSTREAM_POLICIES_DIR", str(policies))
    monkeypatch.setenv("COLUMNS", "200")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli.app, ["quality", "suggest", *args])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not (policies / "proposed").exists()


def test_the_later_of_the_definition_and_since_counts() -> None:
    earlier, later = DEFINED - timedelta(days=1), DEFINED
    assert counting_from(later, earlier).at == later and counting_from(earlier, later).at == later
    assert str(counting_from(later, earlier)) == "verdicts from 2026-11-20 12:00:00 UTC (its definition)"
    assert str(counting_from(earlier, later)) == "verdicts from 2026-11-20 12:00:00 UTC (--since)"
    assert str(counting_from(None, None)) == "every verdict (its definition time is unknown: give --since)"


async def test_an_unreachable_registry_is_a_warning_not_a_failure() -> None:
    settings = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    notes: list[str] = []
    assert await label_since.definition_times(settings, [LABEL], notes.append) == {}
    assert notes == ["the label registry (Redis) did not answer (ConnectionError): only --since counts"]
